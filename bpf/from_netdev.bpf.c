// SPDX-License-Identifier: Apache-2.0
/* tc ingress of the node NIC: directly routed packets for a local pod go
 * straight into it (redirect_peer); VXLAN from a peer node for a local pod is
 * decapsulated here and goes the same way. Everything else (node traffic,
 * VXLAN we leave to the kernel's device) passes to the stack untouched.
 */
#include "lib/common.h"
#include "lib/eth.h"
#include "lib/ipv4.h"
#include "lib/route.h"
#include "lib/encap.h"
#include "lib/exit.h"

/* Only packets for a local pod are decapsulated; the rest keep their outer
 * headers and take the kernel path, whose from_overlay counts and drops what
 * is wrong (foreign VNI, no such pod). */
static __always_inline int pn_handle_vxlan(struct __sk_buff *skb, struct pn_trace *t)
{
	struct pn_vxlan_rx rx;

	pn_pull(skb, VXLAN_PARSE_LEN);
	if (pn_vxlan_rx_parse(skb, &rx) < 0)
		return TC_ACT_OK;

	int err = pn_vxlan_peer_check(rx.outer->saddr, rx.inner->saddr);

	if (err < 0) {
		t->saddr = rx.outer->saddr;
		t->daddr = rx.outer->daddr;
		t->proto = IPPROTO_UDP;
		t->node_ip = rx.outer->saddr;
		return err;
	}
	/* a tagged frame goes to a VLAN device of the node, never into a pod */
	if (skb->vlan_present)
		return -DROP_VLAN;

	struct podnet_endpoint *ep = pn_endpoint_lookup(rx.inner->daddr);

	if (!ep)
		return TC_ACT_OK;

	__u8 outer_ecn = rx.outer->tos & ECN_MASK_;
	__u8 inner_ecn = rx.inner->tos & ECN_MASK_;
	__be32 peer = rx.outer->saddr;

	/* CE on a not-ECT packet: RFC 6040 says drop, the kernel decides */
	if (outer_ecn == ECN_CE_ && !inner_ecn)
		return TC_ACT_OK;
	if (pn_vxlan_decap(skb) < 0)
		return TC_ACT_OK;
	t->node_ip = peer;
	t->vni = CONFIG.vni;

	int hlen = pn_ipv4_parse(skb, t);

	if (hlen < 0)
		return hlen;

	__u8 ecn = pn_ecn_decap(outer_ecn, inner_ecn);

	if (ecn) {
		struct iphdr *ip = pn_ipv4_hdr(skb);

		if (!ip)
			return -DROP_INVALID;
		pn_ipv4_set_ecn(ip, ecn);
	}

	/* TTL <= 1: the decapsulated packet goes to the stack (the frame is
	 * addressed to this NIC), which answers ICMP time exceeded */
	int ret = pn_deliver_local(skb, ep, t);

	if (t->reason == FWD_LOCAL)
		t->reason = FWD_DECAP;
	return ret;
}

static __always_inline int pn_handle(struct __sk_buff *skb, struct pn_trace *t)
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

	struct iphdr *ip = pn_ipv4_hdr(skb);

	if (!ip)
		return TC_ACT_OK;
	if (CONFIG.vxlan_ifindex && ip->daddr == CONFIG.node_ip) {
		if (ip->protocol != IPPROTO_UDP)
			return TC_ACT_OK;
		return pn_handle_vxlan(skb, t);
	}

	struct podnet_endpoint *ep = pn_endpoint_lookup(ip->daddr);

	if (!ep) {
		if (!pn_in_pod_cidr(ip->daddr))
			return TC_ACT_OK;
		/* our pod CIDR with no pod behind the address: the default
		 * route would send it back out (a loop through the router) */
		int plen = pn_ipv4_parse(skb, t);

		return plen < 0 ? plen : -DROP_UNASSIGNED;
	}

	/* Only now is the packet ours: validate it fully before routing. */
	int hlen = pn_ipv4_parse(skb, t);

	if (hlen < 0)
		return hlen;
	if (skb->vlan_present)
		return -DROP_VLAN;
	return pn_deliver_local(skb, ep, t);
}

SEC("tc")
int pn_from_netdev(struct __sk_buff *skb)
{
	struct pn_trace t = {};
	int ret = pn_handle(skb, &t);

	return pn_finish(skb, DIR_FROM_NETDEV, ret, &t);
}

char LICENSE[] SEC("license") = "GPL";
