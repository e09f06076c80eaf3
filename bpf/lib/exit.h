/* SPDX-License-Identifier: Apache-2.0 */
/* The one exit of every program, pn_finish: a worker's verdict or negative
 * DROP_* code becomes a tc verdict (TC_ACT_OK leaving as TC_ACT_UNSPEC, see
 * the end), counted (metrics.h) and reported (events.h) in this single place. In explain mode (BPF_PROG_TEST_RUN with
 * the magic words in cb[]) it only writes the decision back into cb[]. */
#ifndef PODNET_EXIT_H
#define PODNET_EXIT_H

#include "common.h"
#include "metrics.h"
#include "events.h"

/* The cb[] word that holds field f of struct s: explain mode lays the
 * request (struct podnet_explain_request) and the decision (struct
 * podnet_decision) over cb[0..4], so both sides index by the same structs. */
#define PN_CB_WORD(s, f) (__builtin_offsetof(struct s, f) / sizeof(__u32))
_Static_assert(sizeof(struct podnet_explain_request) <= sizeof(((struct __sk_buff *)0)->cb), "request fits cb[]");
_Static_assert(sizeof(struct podnet_decision) <= sizeof(((struct __sk_buff *)0)->cb), "decision fits cb[]");

static __always_inline int pn_is_explain(struct __sk_buff *skb)
{
	return skb->cb[PN_CB_WORD(podnet_explain_request, magic0)] == PODNET_EXPLAIN_MAGIC0 &&
	       skb->cb[PN_CB_WORD(podnet_explain_request, magic1)] == PODNET_EXPLAIN_MAGIC1;
}

/* ret: a TC_ACT_* verdict or a negative DROP_* code from the worker. */
static __always_inline int pn_finish(struct __sk_buff *skb, __u8 dir, int ret, struct pn_trace *t)
{
	int verdict = ret;

	if (ret < 0) {
		t->reason = -ret;
		verdict = TC_ACT_SHOT;
	}

	if (pn_is_explain(skb)) {
		skb->cb[PN_CB_WORD(podnet_decision, verdict)] = verdict;
		skb->cb[PN_CB_WORD(podnet_decision, reason)] = t->reason;
		skb->cb[PN_CB_WORD(podnet_decision, target)] = t->target;
		skb->cb[PN_CB_WORD(podnet_decision, node_ip)] = t->node_ip;
		skb->cb[PN_CB_WORD(podnet_decision, vni)] = t->vni;
		return verdict;
	}

	__u32 idx = (__u32)dir * PODNET_REASON_MAX + (t->reason & (PODNET_REASON_MAX - 1));
	struct podnet_metric *m = bpf_map_lookup_elem(&podnet_metrics, &idx);

	if (m) {
		m->packets++;
		m->bytes += skb->len;
	}

	if (ret < 0) {
		if (pn_drop_event_allowed(t->reason & (PODNET_REASON_MAX - 1), bpf_ktime_get_ns()))
			pn_emit_event(skb, EVENT_DROP, dir, t);
	} else {
		__u32 zero = 0;
		struct podnet_settings *s = bpf_map_lookup_elem(&podnet_settings, &zero);

		if (s && (s->monitor_flags & MONITOR_F_TRACE))
			pn_emit_event(skb, EVENT_TRACE, dir, t);
	}
	/* A packet for the stack leaves as "next" (TC_ACT_UNSPEC == TCX_NEXT), not
	 * TC_ACT_OK, which would end the hook: other tools' tcx programs after ours
	 * and their tc filters (tcx runs before the clsact qdisc; with tc filters,
	 * ours at priority 1 runs first) still see it, and with none left it goes
	 * up the stack as before. Explain mode reports the decision, TC_ACT_OK. */
	return verdict == TC_ACT_OK ? TC_ACT_UNSPEC : verdict;
}

#endif
