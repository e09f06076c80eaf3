// SPDX-License-Identifier: Apache-2.0
/* tc ingress of the node NIC: directly routed packets for a local pod go
 * straight into it (redirect_peer); everything else (VXLAN UDP, node
 * traffic) passes to the stack untouched.
 */
#include "lib/common.h"
#include "lib/eth.h"
#include "lib/ipv4.h"
#include "lib/route.h"
#include "lib/metrics.h"

static __always_inline int handle(struct __sk_buff *skb, struct pn_trace *t)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	t->reason = FWD_PASS;
	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	t->ethertype = eth->h_proto;
	/* Frames not addressed to us (promiscuous NIC) are not ours to route. */
	if (eth->h_proto != bpf_htons(ETH_P_IP) || skb->pkt_type != 0 /* PACKET_HOST */)
		return TC_ACT_OK;

	struct iphdr *ip = ipv4_hdr(skb);

	if (!ip)
		return TC_ACT_OK;

	struct podnet_endpoint *ep = endpoint_lookup(ip->daddr);

	if (!ep)
		return TC_ACT_OK;

	/* Only now is the packet ours: validate it fully before routing. */
	int hlen = ipv4_parse(skb, t);

	if (hlen < 0)
		return hlen;
	return deliver_local(skb, ep, t);
}

SEC("tc")
int pn_from_netdev(struct __sk_buff *skb)
{
	struct pn_trace t = {};
	int ret = handle(skb, &t);

	return pn_finish(skb, DIR_FROM_NETDEV, ret, &t);
}

char LICENSE[] SEC("license") = "GPL";
