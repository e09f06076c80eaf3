/* SPDX-License-Identifier: Apache-2.0 */
/* Counters, drop/trace events and explain mode: the one exit of every program. */
#ifndef PODNET_METRICS_H
#define PODNET_METRICS_H

#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PODNET_METRICS_ENTRIES);
	__type(key, __u32);
	__type(value, struct podnet_metric);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} podnet_metrics SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} podnet_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct podnet_settings);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} podnet_settings SEC(".maps");

/* Drop-event budget of this CPU for one reason: the second it started in and
 * what it has spent. Per object, not pinned: one budget per program. */
struct pn_event_budget {
	__u64 window_ns;
	__u32 spent;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PODNET_REASON_MAX);
	__type(key, __u32);
	__type(value, struct pn_event_budget);
} podnet_event_budget SEC(".maps");

/* At most PODNET_DROP_EVENTS_PER_SEC drop events per CPU and reason in each
 * one-second window; the counters are written before and stay exact. */
static __always_inline int drop_event_allowed(__u32 reason, __u64 now)
{
	struct pn_event_budget *b = bpf_map_lookup_elem(&podnet_event_budget, &reason);

	if (!b)
		return 0;
	if (now - b->window_ns >= 1000000000ULL) {
		b->window_ns = now;
		b->spent = 0;
	}
	if (b->spent >= PODNET_DROP_EVENTS_PER_SEC)
		return 0;
	b->spent++;
	return 1;
}

static __always_inline void emit_event(struct __sk_buff *skb, __u8 type, __u8 dir,
				       const struct pn_trace *t)
{
	struct podnet_event *e = bpf_ringbuf_reserve(&podnet_events, sizeof(*e), 0);

	if (!e)
		return;
	e->ts_ns = bpf_ktime_get_ns();
	e->type = type;
	e->reason = t->reason;
	e->dir = dir;
	e->proto = t->proto;
	e->ifindex = skb->ifindex;
	e->saddr = t->saddr;
	e->daddr = t->daddr;
	e->target = t->target;
	e->node_ip = t->node_ip;
	e->pad2 = 0;
	e->len = skb->len;
	e->sport = t->sport;
	e->dport = t->dport;
	e->ethertype = t->ethertype;
	e->pad = 0;
	bpf_ringbuf_submit(e, 0);
}

static __always_inline int is_explain(struct __sk_buff *skb)
{
	return skb->cb[0] == PODNET_EXPLAIN_MAGIC0 && skb->cb[1] == PODNET_EXPLAIN_MAGIC1;
}

/* ret: a TC_ACT_* verdict or a negative DROP_* code from the worker. */
static __always_inline int pn_finish(struct __sk_buff *skb, __u8 dir, int ret, struct pn_trace *t)
{
	int verdict = ret;

	if (ret < 0) {
		t->reason = -ret;
		verdict = TC_ACT_SHOT;
	}

	if (is_explain(skb)) {
		skb->cb[0] = verdict;
		skb->cb[1] = t->reason;
		skb->cb[2] = t->target;
		skb->cb[3] = t->node_ip;
		skb->cb[4] = t->vni;
		return verdict;
	}

	__u32 idx = (__u32)dir * PODNET_REASON_MAX + (t->reason & (PODNET_REASON_MAX - 1));
	struct podnet_metric *m = bpf_map_lookup_elem(&podnet_metrics, &idx);

	if (m) {
		m->packets++;
		m->bytes += skb->len;
	}

	if (ret < 0) {
		if (drop_event_allowed(t->reason & (PODNET_REASON_MAX - 1), bpf_ktime_get_ns()))
			emit_event(skb, EVENT_DROP, dir, t);
	} else {
		__u32 zero = 0;
		struct podnet_settings *s = bpf_map_lookup_elem(&podnet_settings, &zero);

		if (s && (s->monitor_flags & MONITOR_F_TRACE))
			emit_event(skb, EVENT_TRACE, dir, t);
	}
	return verdict;
}

#endif
