/* SPDX-License-Identifier: Apache-2.0 */
/* Drop and trace events for `monitor`: the podnet_events ring buffer, the
 * tracing switch in podnet_settings, and the per-CPU budget that keeps a pod
 * spraying bad packets from flooding the ring. pn_finish (exit.h) emits them. */
#ifndef PODNET_EVENTS_H
#define PODNET_EVENTS_H

#include "common.h"

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
static __always_inline int pn_drop_event_allowed(__u32 reason, __u64 now)
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

static __always_inline void pn_emit_event(struct __sk_buff *skb, __u8 type, __u8 dir,
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

#endif
