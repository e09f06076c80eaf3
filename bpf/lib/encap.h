/* SPDX-License-Identifier: Apache-2.0 */
/* VXLAN through one collect_md device: the tunnel key carries peer and VNI. */
#ifndef PODNET_ENCAP_H
#define PODNET_ENCAP_H

#include "common.h"

/* Kernels before 6.0 lack local_ipv4; every kernel accepts this size. */
#define PN_TUNNEL_KEY_SIZE __builtin_offsetof(struct bpf_tunnel_key, local_ipv4)

static __always_inline int encap_set_key(struct __sk_buff *skb, __u32 node_ip, struct pn_trace *t)
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
static __always_inline int encap_get_key(struct __sk_buff *skb, struct bpf_tunnel_key *key)
{
	return bpf_skb_get_tunnel_key(skb, key, PN_TUNNEL_KEY_SIZE, 0);
}

#endif
