// SPDX-License-Identifier: Apache-2.0
/* tc egress of the VXLAN device: packets the host stack routes to a remote
 * pod CIDR (node → remote pod, or pod traffic the stack forwarded after a
 * TTL/MTU/encap hand-off) get their tunnel key from the routes map. from_pod
 * encapsulates pod traffic itself and never sends it here; a packet that
 * already carries a key (set by someone else) passes untouched, uncounted.
 */
#include "lib/common.h"
#include "lib/eth.h"
#include "lib/ipv4.h"
#include "lib/route.h"
#include "lib/encap.h"
#include "lib/exit.h"

#define PN_ALREADY_ENCAPPED 1

static __always_inline int pn_handle(struct __sk_buff *skb, struct pn_trace *t)
{
	struct bpf_tunnel_key key = {};

	if (pn_encap_get_key(skb, &key) == 0)
		return PN_ALREADY_ENCAPPED;

	int hlen = pn_eth_ipv4_parse(skb, t);

	if (hlen < 0)
		return hlen;

	struct podnet_route *rt = pn_route_lookup(t->daddr);

	if (!rt || !(rt->flags & ROUTE_F_VXLAN))
		return -DROP_NO_ROUTE;

	int err = pn_encap_set_key(skb, rt->node_ip, t);

	if (err < 0)
		return err;
	t->reason = FWD_ENCAP_STACK;
	t->target = skb->ifindex;
	return TC_ACT_OK;
}

SEC("tc")
int pn_to_overlay(struct __sk_buff *skb)
{
	struct pn_trace t = {};
	int ret = pn_handle(skb, &t);

	if (ret == PN_ALREADY_ENCAPPED)
		return TC_ACT_UNSPEC; /* on to the next program, as pn_finish hands packets on */
	return pn_finish(skb, DIR_TO_OVERLAY, ret, &t);
}

char LICENSE[] SEC("license") = "GPL";
