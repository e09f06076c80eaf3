/* SPDX-License-Identifier: Apache-2.0 */
/* Out the NIC to a next hop, with the next hop's MAC cached per CPU.
 *
 * bpf_redirect_neigh looks the neighbour up for every packet, and once the
 * entry has gone stale (nothing on this node confirms a peer it only
 * forwards to) builds the Ethernet header the slow way, under the entry's
 * lock. Here each CPU keeps the MACs of the next hops it sends to, read from
 * the kernel's own tables with bpf_fib_lookup, and writes them itself. An
 * entry lives PN_NH_TTL_JIFFIES; the packet that finds it expired takes
 * bpf_redirect_neigh as before, so the kernel keeps using, probing and
 * updating its neighbour entry, and a changed or vanished peer MAC is seen
 * within that time. No neighbour (not resolved yet, or failed): nothing is
 * cached and every packet takes bpf_redirect_neigh, which resolves it.
 */
#ifndef PODNET_NEXTHOP_H
#define PODNET_NEXTHOP_H

#include "common.h"
#include "eth.h"

#ifndef AF_INET
#define AF_INET 2
#endif

/* direct-mapped: a next hop lives in slot hash(ip) % PN_NH_SLOTS */
#define PN_NH_SLOTS 256
/* jiffies64 counts at CONFIG_HZ (100..1000): 250 is 0.25 s to 2.5 s */
#define PN_NH_TTL_JIFFIES 250

struct pn_nexthop {
	__be32 ip;
	__u8 dmac[ETH_ALEN];
	__u8 smac[ETH_ALEN];
	__u64 expires;
};

/* Per CPU, so a reader never sees another CPU's half-written entry. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PN_NH_SLOTS);
	__type(key, __u32);
	__type(value, struct pn_nexthop);
} podnet_nexthop_cache SEC(".maps");

static __always_inline __u32 pn_nh_slot(__be32 ip)
{
	return ((__u32)ip * 2654435761U) >> 24; /* Fibonacci hashing, 8 bits */
}

/* Fill the slot for ip from the kernel's FIB and neighbour table, if ip is on
 * link through ifindex and its MAC is known; else leave it expired. */
static __always_inline void pn_nh_refresh(struct __sk_buff *skb, struct pn_nexthop *e, __be32 ip, __u32 ifindex, __u64 now)
{
	struct bpf_fib_lookup fib = {};

	e->expires = 0;
	fib.family = AF_INET;
	fib.ifindex = ifindex;
	fib.ipv4_dst = ip;
	if (bpf_fib_lookup(skb, &fib, sizeof(fib), BPF_FIB_LOOKUP_DIRECT | BPF_FIB_LOOKUP_OUTPUT) != BPF_FIB_LKUP_RET_SUCCESS)
		return;
	/* only a next hop the kernel would reach on link through ifindex, as
	 * bpf_redirect_neigh(ifindex, ip) does (a gateway replaces ipv4_dst) */
	if (fib.ifindex != ifindex || fib.ipv4_dst != ip)
		return;
	e->ip = ip;
	__builtin_memcpy(e->dmac, fib.dmac, ETH_ALEN);
	__builtin_memcpy(e->smac, fib.smac, ETH_ALEN);
	e->expires = now + PN_NH_TTL_JIFFIES;
}

/* Redirect the frame (Ethernet header first) out ifindex to on-link next hop ip. */
static __always_inline int pn_redirect_nexthop(struct __sk_buff *skb, __u32 ifindex, __be32 ip)
{
	__u32 slot = pn_nh_slot(ip);
	struct pn_nexthop *e = bpf_map_lookup_elem(&podnet_nexthop_cache, &slot);
	struct bpf_redir_neigh nh = { .nh_family = AF_INET, .ipv4_nh = ip };

	if (!e)
		return bpf_redirect_neigh(ifindex, &nh, sizeof(nh), 0);

	__u64 now = bpf_jiffies64();

	if (e->ip == ip && now < e->expires) {
		struct ethhdr *eth = pn_ptr(skb, 0, ETH_HLEN);

		if (!eth)
			return TC_ACT_SHOT;
		pn_eth_set_macs(eth, e->dmac, e->smac);
		return bpf_redirect(ifindex, 0);
	}
	pn_nh_refresh(skb, e, ip, ifindex, now);
	return bpf_redirect_neigh(ifindex, &nh, sizeof(nh), 0);
}

#endif
