/* SPDX-License-Identifier: Apache-2.0 */
/* IPv4 parsing, TTL and MTU checks. */
#ifndef PODNET_IPV4_H
#define PODNET_IPV4_H

#include "common.h"

#define IP_DF_ 0x4000
#define IP_MF_ 0x2000
#define IP_OFFSET_ 0x1fff
/* ECN codepoints, the low two bits of the TOS byte */
#define ECN_MASK_ 3
#define ECN_ECT1_ 1
#define ECN_ECT0_ 2
#define ECN_CE_ 3

static __always_inline __u16 pn_csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* Checksum of an option-less header as it stands: 0 when its check field is right. */
static __always_inline __u16 pn_ipv4_csum(const struct iphdr *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < (int)(sizeof(*ip) / 2); i++)
		sum += w[i];
	return pn_csum_fold(sum);
}

/* Sets the ECN bits with an incremental checksum update (RFC 1624). */
static __always_inline void pn_ipv4_set_ecn(struct iphdr *ip, __u8 ecn)
{
	__u16 *w = (__u16 *)ip;
	__u16 old = w[0];

	ip->tos = (ip->tos & ~ECN_MASK_) | ecn;
	__u32 sum = (__u16)~ip->check + (__u16)~old + w[0];

	ip->check = pn_csum_fold(sum);
}

/* Validates the Ethernet + IPv4 header at the start of the packet and fills
 * the trace's addresses and ports. Returns the IP header length or a negative
 * DROP_* code. Ports are read only from first fragments that carry them. */
static __always_inline int pn_ipv4_parse(struct __sk_buff *skb, struct pn_trace *t)
{
	pn_pull(skb, ETH_HLEN + sizeof(struct iphdr));

	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + ETH_HLEN;

	if ((void *)(ip + 1) > data_end)
		return -DROP_INVALID;
	if (ip->version != 4 || ip->ihl < 5)
		return -DROP_INVALID;

	__u32 hlen = ip->ihl * 4;
	__u32 tot = bpf_ntohs(ip->tot_len);

	if (tot < hlen || tot > skb->len - ETH_HLEN)
		return -DROP_INVALID;
	if (hlen > sizeof(struct iphdr)) {
		pn_pull(skb, ETH_HLEN + hlen);
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		ip = data + ETH_HLEN;
		if ((void *)(ip + 1) > data_end || (void *)ip + hlen > data_end)
			return -DROP_INVALID;
	}

	t->saddr = ip->saddr;
	t->daddr = ip->daddr;
	t->proto = ip->protocol;

	if (!(ip->frag_off & bpf_htons(IP_OFFSET_))) {
		void *l4 = (void *)ip + hlen;

		if (ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP) {
			__be16 *ports = l4;

			if ((void *)(ports + 2) <= data_end) {
				t->sport = ports[0];
				t->dport = ports[1];
			}
		} else if (ip->protocol == IPPROTO_ICMP) {
			__u8 *tc = l4;

			if ((void *)(tc + 2) <= data_end) {
				/* type/code stand in for the ports: network order too */
				t->sport = bpf_htons(tc[0]);
				t->dport = bpf_htons(tc[1]);
			}
		}
	}
	return hlen;
}

/* Ethernet + IPv4: other ethertypes are DROP_UNSUPPORTED_L3. */
static __always_inline int pn_eth_ipv4_parse(struct __sk_buff *skb, struct pn_trace *t)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return -DROP_INVALID;
	t->ethertype = eth->h_proto;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return -DROP_UNSUPPORTED_L3;
	return pn_ipv4_parse(skb, t);
}

static __always_inline struct iphdr *pn_ipv4_hdr(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + ETH_HLEN;

	if ((void *)(ip + 1) > data_end)
		return 0;
	return ip;
}

/* TTL - 1 with an incremental checksum update (RFC 1624): the TTL is the
 * high byte of its 16-bit word, so the sum grows by 0x0100. */
static __always_inline void pn_ipv4_dec_ttl(struct iphdr *ip)
{
	__u32 sum = (__u32)ip->check + (__u32)bpf_htons(0x0100);

	ip->check = (__sum16)(sum + (sum >= 0xffff));
	ip->ttl--;
}

/* Network-layer length of the largest packet this skb will become on the
 * wire: a GSO skb is cut into segments of gso_size payload. */
static __always_inline __u32 pn_ipv4_wire_len(struct __sk_buff *skb, struct iphdr *ip, __u32 hlen)
{
	if (!skb->gso_size)
		return skb->len - ETH_HLEN;

	void *data_end = (void *)(long)skb->data_end;
	void *l4 = (void *)ip + hlen;
	__u32 l4len = 0;

	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = l4;

		if ((void *)(tcp + 1) > data_end)
			return skb->len - ETH_HLEN;
		l4len = tcp->doff * 4;
	} else if (ip->protocol == IPPROTO_UDP) {
		l4len = sizeof(struct udphdr);
	}
	return hlen + l4len + skb->gso_size;
}

#endif
