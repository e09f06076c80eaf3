// SPDX-License-Identifier: Apache-2.0
/* Every packet leaving a pod: tc ingress of its host-side veth, or the peer
 * hook of its netkit pair (runs in the pod's transmit, one backlog trip less;
 * skb->ifindex is then the host-side netkit device, as for a veth).
 * ARP → answered here; foreign source → dropped; local pod → straight into
 * it (redirect_peer from tc ingress, a redirect to its host side from netkit);
 * peer pod CIDR → direct (redirect_neigh out the NIC) or VXLAN (encapsulated
 * here, then out the NIC the same way); anything else → host stack. No NAT.
 */
#include "lib/common.h"
#include "lib/eth.h"
#include "lib/ipv4.h"
#include "lib/route.h"
#include "lib/encap.h"
#include "lib/nexthop.h"
#include "lib/exit.h"

/* Answer an ARP request from the pod with the host veth's MAC, so the pod's
 * gateway (whatever address it is) resolves without proxy_arp or a bridge. */
static __always_inline int pn_handle_arp(struct __sk_buff *skb, struct pn_trace *t)
{
	pn_pull(skb, ETH_HLEN + sizeof(struct pn_arp));

	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct pn_arp *arp = data + ETH_HLEN;

	if ((void *)(arp + 1) > data_end)
		return -DROP_INVALID;
	if (arp->hrd != bpf_htons(ARPHRD_ETHER_) || arp->pro != bpf_htons(ETH_P_IP) ||
	    arp->hln != ETH_ALEN || arp->pln != 4)
		return -DROP_ARP_INVALID;

	t->saddr = arp->spa;
	t->daddr = arp->tpa;

	/* Replies (to the node's own ARP for the pod), gratuitous ARP and
	 * duplicate-address probes are the host's business. */
	if (arp->op != bpf_htons(ARPOP_REQUEST_) || arp->spa == 0 || arp->spa == arp->tpa) {
		t->reason = FWD_STACK;
		return TC_ACT_OK;
	}

	struct podnet_endpoint *ep = pn_endpoint_lookup(arp->spa);

	if (!ep || ep->ifindex != skb->ifindex)
		return -DROP_ARP_SPOOFED;

	__u8 pod_mac[ETH_ALEN];
	__be32 target = arp->tpa;

	__builtin_memcpy(pod_mac, arp->sha, ETH_ALEN);
	arp->op = bpf_htons(ARPOP_REPLY_);
	__builtin_memcpy(arp->tha, pod_mac, ETH_ALEN);
	arp->tpa = arp->spa;
	__builtin_memcpy(arp->sha, ep->host_mac, ETH_ALEN);
	arp->spa = target;
	pn_eth_set_macs(eth, pod_mac, ep->host_mac);

	t->reason = FWD_ARP_REPLY;
	t->target = skb->ifindex;
	return bpf_redirect(skb->ifindex, 0);
}

/* UDP to the VXLAN port of anything but a pod (a node: this one, a peer,
 * or one we do not know) is a hand-made tunnel frame: a node that
 * decapsulated it would deliver whatever inner source it carries. Later
 * fragments carry no ports; without their first they never reassemble. */
static __always_inline int pn_not_to_vxlan_port(struct __sk_buff *skb, int hlen)
{
	struct iphdr *ip = pn_ipv4_hdr(skb);

	if (!ip)
		return -DROP_INVALID;
	if (ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(IP_OFFSET_)))
		return 0;
	if (hlen < (int)sizeof(struct iphdr) || hlen > 60)
		return -DROP_INVALID;
	pn_pull(skb, ETH_HLEN + hlen + sizeof(struct udphdr));

	struct udphdr *udp = pn_ptr(skb, ETH_HLEN + hlen, sizeof(struct udphdr));

	if (!udp)
		return -DROP_INVALID;
	if (udp->dest == bpf_htons((__u16)CONFIG.vxlan_port))
		return -DROP_POD_TO_VXLAN;
	return 0;
}

static __always_inline int pn_handle_ipv4(struct __sk_buff *skb, struct pn_trace *t)
{
	int hlen = pn_ipv4_parse(skb, t);

	if (hlen < 0)
		return hlen;

	/* Anti-spoofing: the source must be the pod behind this very veth. */
	struct podnet_endpoint *src = pn_endpoint_lookup(t->saddr);

	if (!src || src->ifindex != skb->ifindex)
		return -DROP_SPOOFED_SRC;

	struct podnet_endpoint *dst = pn_endpoint_lookup(t->daddr);

	if (dst)
		return pn_deliver_local(skb, dst, t);

	/* an unassigned address of our own pod CIDR must not follow the
	 * default route out with a pod source (a router may send it back) */
	if (pn_in_pod_cidr(t->daddr))
		return -DROP_UNASSIGNED;

	struct podnet_route *rt = pn_route_lookup(t->daddr);

	if (!rt) {
		int err = pn_not_to_vxlan_port(skb, hlen);

		if (err < 0)
			return err;
		t->reason = FWD_STACK;
		return TC_ACT_OK;
	}

	struct iphdr *ip = pn_ipv4_hdr(skb);

	if (!ip)
		return -DROP_INVALID;

	int vxlan = rt->flags & ROUTE_F_VXLAN;
	__u32 node_ip = rt->node_ip;

	t->node_ip = node_ip;
	if (ip->ttl <= 1) {
		t->reason = FWD_STACK_TTL;
		return TC_ACT_OK;
	}
	/* Too big for the path: the stack has a route with the right MTU and
	 * sends ICMP frag-needed (DF) or fragments, never a silent drop. */
	if (pn_ipv4_wire_len(skb, ip, hlen) > (vxlan ? CONFIG.overlay_mtu : CONFIG.device_mtu)) {
		t->reason = FWD_STACK_MTU;
		return TC_ACT_OK;
	}

	if (vxlan) {
		if (!CONFIG.vxlan_ifindex)
			return -DROP_NO_TUNNEL;
		if (pn_vxlan_encap(skb, node_ip, ip->tos) < 0) {
			/* e.g. a GSO type adjust_room refuses: untouched, the
			 * stack sends it through podnet_vxlan (to_overlay) */
			t->reason = FWD_STACK_ENCAP;
			return TC_ACT_OK;
		}
		ip = pn_ptr(skb, ETH_HLEN + VXLAN_ENCAP_LEN, sizeof(*ip));
		if (!ip)
			return -DROP_INVALID;
		pn_ipv4_dec_ttl(ip);
		t->reason = FWD_VXLAN;
		t->target = CONFIG.device_ifindex;
		t->vni = CONFIG.vni;
		/* A peer in the node's own subnet is its own next hop; one behind
		 * an underlay router needs the FIB (a route lookup per packet). */
		if (CONFIG.node_mask && !((node_ip ^ CONFIG.node_ip) & CONFIG.node_mask))
			return pn_redirect_nexthop(skb, CONFIG.device_ifindex, node_ip);
		return bpf_redirect_neigh(CONFIG.device_ifindex, NULL, 0, 0);
	}

	pn_ipv4_dec_ttl(ip);
	t->reason = FWD_DIRECT;
	t->target = CONFIG.device_ifindex;
	return pn_redirect_nexthop(skb, CONFIG.device_ifindex, node_ip);
}

SEC("tc")
int pn_from_pod(struct __sk_buff *skb)
{
	struct pn_trace t = {};
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	int ret;

	if ((void *)(eth + 1) > data_end) {
		ret = -DROP_INVALID;
		goto out;
	}
	t.ethertype = eth->h_proto;
	/* A tag the kernel stripped into metadata (veth receive) or one still in
	 * the frame (netkit transmit, QinQ): a pod picks no underlay VLAN. */
	if (skb->vlan_present || eth->h_proto == bpf_htons(ETH_P_8021Q) || eth->h_proto == bpf_htons(ETH_P_8021AD))
		ret = -DROP_VLAN;
	else if (eth->h_proto == bpf_htons(ETH_P_IP))
		ret = pn_handle_ipv4(skb, &t);
	else if (eth->h_proto == bpf_htons(ETH_P_ARP))
		ret = pn_handle_arp(skb, &t);
	else
		ret = -DROP_UNSUPPORTED_L3;
out:
	return pn_finish(skb, DIR_FROM_POD, ret, &t);
}

char LICENSE[] SEC("license") = "GPL";
