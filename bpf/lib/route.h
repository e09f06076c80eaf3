/* SPDX-License-Identifier: Apache-2.0 */
/* Local endpoints and peer pod-CIDR routes, and delivery into a local pod. */
#ifndef PODNET_ROUTE_H
#define PODNET_ROUTE_H

#include "common.h"
#include "eth.h"
#include "ipv4.h"

#define PODNET_MAX_ENDPOINTS 131072
#define PODNET_MAX_ROUTES 16384

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PODNET_MAX_ENDPOINTS);
	__type(key, __u32);
	__type(value, struct podnet_endpoint);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} podnet_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, PODNET_MAX_ROUTES);
	__type(key, struct podnet_route_key);
	__type(value, struct podnet_route);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} podnet_routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PODNET_MAX_ROUTES);
	__type(key, __u32);
	__type(value, struct podnet_peer);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} podnet_peers SEC(".maps");

static __always_inline int pn_in_pod_cidr(__u32 addr)
{
	return CONFIG.pod_mask && (addr & CONFIG.pod_mask) == CONFIG.pod_net;
}

/* Endpoints all live in this node's pod CIDR (the control plane enforces
 * it), so other addresses skip the hash lookup: node and overlay traffic on
 * the NIC, and cross-node pod traffic, stay cheap. */
static __always_inline struct podnet_endpoint *pn_endpoint_lookup(__u32 addr)
{
	if ((addr & CONFIG.pod_mask) != CONFIG.pod_net)
		return 0;
	return bpf_map_lookup_elem(&podnet_endpoints, &addr);
}

static __always_inline struct podnet_route *pn_route_lookup(__u32 addr)
{
	struct podnet_route_key key = { .prefixlen = 32, .addr = addr };

	return bpf_map_lookup_elem(&podnet_routes, &key);
}

/* VXLAN from outer source peer carrying inner source inner: the peer must be
 * a node of the routes map, and the inner source one of its pods (its routed
 * CIDR) or the peer node itself (node -> pod). Anything else would let a
 * pod (or anyone on the underlay) walk around per-pod anti-spoofing. */
static __always_inline int pn_vxlan_peer_check(__be32 peer, __be32 inner)
{
	/* The common case first: a route names the peer as the node of the
	 * inner source, so the peer is a node of the routes map and the peers
	 * lookup would only say so again (one hash lookup per packet saved). */
	if (inner != peer) {
		struct podnet_route *rt = pn_route_lookup(inner);

		if (rt && rt->node_ip == peer)
			return 0;
	}
	if (!bpf_map_lookup_elem(&podnet_peers, &peer))
		return -DROP_UNKNOWN_PEER;
	return inner == peer ? 0 : -DROP_PEER_SPOOFED;
}

/* Into a local pod: MACs rewritten, TTL - 1, straight to the pod's netns.
 * TTL <= 1 goes to the stack, which answers with ICMP time exceeded.
 * redirect_peer (no backlog trip) is refused outside tc ingress; from a
 * netkit pod's transmit hook the packet goes out the target's host-side
 * device instead. At tc ingress skb_iif is the device itself; netkit's
 * transmit scrubs it to 0 before its programs run. */
static __always_inline int pn_deliver_local(struct __sk_buff *skb, const struct podnet_endpoint *ep,
					 struct pn_trace *t)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;

	if ((void *)(ip + 1) > data_end)
		return -DROP_INVALID;
	if (ip->ttl <= 1) {
		t->reason = FWD_STACK_TTL;
		return TC_ACT_OK;
	}
	pn_ipv4_dec_ttl(ip);
	pn_eth_set_macs(eth, ep->pod_mac, ep->host_mac);
	/* Before 6.15 redirect_peer keeps pkt_type: a frame the kernel's VXLAN
	 * device decapsulated (its inner MAC is not that device's) arrives as
	 * PACKET_OTHERHOST and the pod's stack drops it. */
	if (skb->pkt_type != 0 /* PACKET_HOST */)
		bpf_skb_change_type(skb, 0);
	t->reason = FWD_LOCAL;
	t->target = ep->ifindex;
	if (skb->ingress_ifindex == skb->ifindex)
		return bpf_redirect_peer(ep->ifindex, 0);
	return bpf_redirect(ep->ifindex, 0);
}

#endif
