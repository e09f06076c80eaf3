/* SPDX-License-Identifier: Apache-2.0 */
/* Ethernet and ARP. */
#ifndef PODNET_ETH_H
#define PODNET_ETH_H

#include "common.h"

#define ARPHRD_ETHER_ 1
#define ARPOP_REQUEST_ 1
#define ARPOP_REPLY_ 2

/* Ethernet/IPv4 ARP body after the 8-byte struct arphdr. */
struct pn_arp {
	__be16 hrd;
	__be16 pro;
	__u8 hln;
	__u8 pln;
	__be16 op;
	__u8 sha[6];
	__be32 spa;
	__u8 tha[6];
	__be32 tpa;
} __attribute__((packed));

static __always_inline void pn_eth_set_macs(struct ethhdr *eth, const __u8 *dst, const __u8 *src)
{
	__builtin_memcpy(eth->h_dest, dst, ETH_ALEN);
	__builtin_memcpy(eth->h_source, src, ETH_ALEN);
}

#endif
