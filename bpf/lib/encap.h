/* SPDX-License-Identifier: Apache-2.0 */
/* VXLAN. Pod traffic is encapsulated and decapsulated here, in the programs
 * (bpf_skb_adjust_room + our own outer headers), so it never enters the
 * kernel's VXLAN device, its UDP socket or a second routing pass. The
 * collect_md device podnet_vxlan stays for what the stack itself sends
 * (node → remote pod, TTL/MTU hand-offs) and for what we decline to
 * decapsulate; the tunnel-key helpers below serve that path.
 */
#ifndef PODNET_ENCAP_H
#define PODNET_ENCAP_H

#include "common.h"
#include "ipv4.h"

/* Kernels before 6.0 lack local_ipv4; every kernel accepts this size. */
#define PN_TUNNEL_KEY_SIZE __builtin_offsetof(struct bpf_tunnel_key, local_ipv4)

struct pn_vxlanhdr {
	__be32 flags;
	__be32 vni;         /* VNI << 8 */
};

#define VXLAN_F_VNI_ 0x08000000U
/* outer IPv4 + UDP + VXLAN + inner Ethernet: what a pod packet grows by */
#define VXLAN_ENCAP_LEN (sizeof(struct iphdr) + sizeof(struct udphdr) + sizeof(struct pn_vxlanhdr) + ETH_HLEN)
/* from the frame start to the end of the inner IPv4 header (no options) */
#define VXLAN_PARSE_LEN (ETH_HLEN + VXLAN_ENCAP_LEN + sizeof(struct iphdr))
/* UDP source ports carry the flow hash, in the kernel's default ephemeral
 * range, as Linux VXLAN does: ECMP and RSS on the underlay spread flows. */
#define VXLAN_SPORT_MIN 32768U
#define VXLAN_SPORT_RANGE 28232U

/* Wraps the frame for peer node_ip: [eth][IP][UDP][VXLAN][inner eth][pod IP…].
 * The outer Ethernet header is filled in by the redirect (neighbour table).
 * The inner packet keeps its GSO segment size (FIXED_GSO): from_pod checked
 * that each segment fits the overlay MTU, so outer segments fit the device.
 * Returns 0, or a negative errno with the frame left as it was. */
static __always_inline int pn_vxlan_encap(struct __sk_buff *skb, __be32 node_ip, __u8 inner_tos)
{
	__u32 hash = bpf_get_hash_recalc(skb);
	__u64 flags = BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP |
		      BPF_F_ADJ_ROOM_ENCAP_L2_ETH | BPF_F_ADJ_ROOM_ENCAP_L2(ETH_HLEN);
	int err = bpf_skb_adjust_room(skb, VXLAN_ENCAP_LEN, BPF_ADJ_ROOM_MAC, flags);

	if (err)
		return err;

	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;
	struct udphdr *udp = (void *)(ip + 1);
	struct pn_vxlanhdr *vx = (void *)(udp + 1);
	struct ethhdr *inner = (void *)(vx + 1);

	/* the grown room is in the linear head */
	if ((void *)(inner + 1) > data_end)
		return -1;
	__builtin_memcpy(inner, eth, ETH_HLEN);

	/* A GSO skb's lengths are rewritten per segment; the cap only keeps a
	 * super-packet's header well-formed. */
	__u32 len = skb->len - ETH_HLEN;

	if (len > 0xffff)
		len = 0xffff;
	__u8 ecn = inner_tos & ECN_MASK_;

	ip->version = 4;
	ip->ihl = 5;
	/* RFC 6040 normal mode, as Linux tunnels: the outer copies ECT, CE → ECT(0) */
	ip->tos = ecn == ECN_CE_ ? ECN_ECT0_ : ecn;
	ip->tot_len = bpf_htons(len);
	ip->id = 0;
	/* DF: the overlay MTU is ours to keep; nobody fragments the tunnel */
	ip->frag_off = bpf_htons(IP_DF_);
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->check = 0;
	ip->saddr = CONFIG.node_ip;
	ip->daddr = node_ip;
	ip->check = pn_ipv4_csum(ip);

	udp->source = bpf_htons(VXLAN_SPORT_MIN + (__u16)(((__u64)hash * VXLAN_SPORT_RANGE) >> 32));
	udp->dest = bpf_htons((__u16)CONFIG.vxlan_port);
	udp->len = bpf_htons(len - sizeof(struct iphdr));
	/* zero UDP checksum, as Linux VXLAN sends over IPv4 by default */
	udp->check = 0;

	vx->flags = bpf_htonl(VXLAN_F_VNI_);
	vx->vni = bpf_htonl(CONFIG.vni << 8);
	return 0;
}

/* A VXLAN frame on the NIC that is ours to decapsulate: for this node's IP
 * and port, our VNI, unfragmented, no outer IP options, an IPv4 inner packet.
 * Anything else is left to the kernel's VXLAN device (and from_overlay), which
 * reassembles, counts and drops as before. Needs VXLAN_PARSE_LEN linear bytes. */
struct pn_vxlan_rx {
	struct iphdr *outer;
	struct iphdr *inner;
};

static __always_inline int pn_vxlan_rx_parse(struct __sk_buff *skb, struct pn_vxlan_rx *rx)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + ETH_HLEN;
	struct udphdr *udp = (void *)(ip + 1);
	struct pn_vxlanhdr *vx = (void *)(udp + 1);
	struct ethhdr *ieth = (void *)(vx + 1);
	struct iphdr *iip = (void *)(ieth + 1);

	if ((void *)(iip + 1) > data_end)
		return -1;
	if (ip->ihl != 5 || ip->version != 4 || ip->protocol != IPPROTO_UDP || ip->daddr != CONFIG.node_ip)
		return -1;
	if (ip->frag_off & bpf_htons(IP_MF_ | IP_OFFSET_))
		return -1;
	/* ip_rcv is bypassed: its header checksum check is ours to do */
	if (pn_ipv4_csum(ip))
		return -1;
	if (udp->dest != bpf_htons((__u16)CONFIG.vxlan_port))
		return -1;
	/* only the I flag: Linux drops reserved bits (no GBP/GPE here) */
	if (vx->flags != bpf_htonl(VXLAN_F_VNI_) || vx->vni != bpf_htonl(CONFIG.vni << 8))
		return -1;
	if (ieth->h_proto != bpf_htons(ETH_P_IP) || iip->version != 4 || iip->ihl < 5)
		return -1;
	/* Lengths nest: inner within UDP within outer IP within the frame, as
	 * ip_rcv and udp_rcv would demand; and what pn_ipv4_parse demands after
	 * decapsulation, so nothing we decapsulate is dropped as malformed. */
	__u32 tot = bpf_ntohs(iip->tot_len);
	__u32 otot = bpf_ntohs(ip->tot_len);
	__u32 ulen = bpf_ntohs(udp->len);
	__u32 over = sizeof(struct udphdr) + sizeof(struct pn_vxlanhdr) + ETH_HLEN;

	if (tot < iip->ihl * 4U || otot > skb->len - ETH_HLEN || otot < sizeof(struct iphdr) ||
	    ulen > otot - sizeof(struct iphdr))
		return -1;
	if (ulen < over || tot > ulen - over)
		return -1;
	rx->outer = ip;
	rx->inner = iip;
	return 0;
}

/* Removes outer IP, UDP, VXLAN and inner Ethernet: the outer Ethernet header
 * is kept and now fronts the pod's packet. */
static __always_inline int pn_vxlan_decap(struct __sk_buff *skb)
{
	return bpf_skb_adjust_room(skb, -(__s32)VXLAN_ENCAP_LEN, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_FIXED_GSO);
}

/* RFC 6040 decapsulation, as Linux does it: an outer CE marks an
 * ECN-capable inner packet CE, an outer ECT(1) turns inner ECT(0) into ECT(1)
 * (L4S); returns the ECN codepoint to set, or 0 for none. The caller has
 * already declined CE over Not-ECT, which Linux drops. */
static __always_inline __u8 pn_ecn_decap(__u8 outer, __u8 inner)
{
	if (outer == ECN_CE_ && inner != ECN_CE_)
		return ECN_CE_;
	if (outer == ECN_ECT1_ && inner == ECN_ECT0_)
		return ECN_ECT1_;
	return 0;
}

static __always_inline int pn_encap_set_key(struct __sk_buff *skb, __u32 node_ip, struct pn_trace *t)
{
	struct bpf_tunnel_key key = {};

	key.tunnel_id = CONFIG.vni;
	key.remote_ipv4 = bpf_ntohl(node_ip);
	key.tunnel_ttl = 64;
	/* Zero UDP checksum, as the kernel's VXLAN does by default for IPv4. */
	if (bpf_skb_set_tunnel_key(skb, &key, PN_TUNNEL_KEY_SIZE, BPF_F_ZERO_CSUM_TX) < 0)
		return -DROP_TUNNEL_KEY;
	t->node_ip = node_ip;
	t->vni = CONFIG.vni;
	return 0;
}

/* The received packet's tunnel key (ingress of the VXLAN device). */
static __always_inline int pn_encap_get_key(struct __sk_buff *skb, struct bpf_tunnel_key *key)
{
	return bpf_skb_get_tunnel_key(skb, key, PN_TUNNEL_KEY_SIZE, 0);
}

#endif
