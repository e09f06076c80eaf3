// SPDX-License-Identifier: Apache-2.0
/* tc ingress of the VXLAN device (podnet_vxlan, collect_md): decapsulated
 * packets. For a local pod → redirect_peer; anything else is dropped with a
 * counted reason (nothing else is ever sent to us through the overlay).
 */
#include "lib/common.h"
#include "lib/eth.h"
#include "lib/ipv4.h"
#include "lib/route.h"
#include "lib/encap.h"
#include "lib/exit.h"

static __always_inline int pn_handle(struct __sk_buff *skb, struct pn_trace *t)
{
	struct bpf_tunnel_key key = {};

	if (pn_encap_get_key(skb, &key) < 0) {
		/* BPF_PROG_TEST_RUN cannot attach a received tunnel key: in
		 * explain mode the caller may pass one in its request */
		if (!pn_is_explain(skb) ||
		    skb->cb[PN_CB_WORD(podnet_explain_request, tunnel_flags)] != PODNET_EXPLAIN_F_TUNNEL)
			return -DROP_TUNNEL_KEY;
		key.remote_ipv4 = bpf_ntohl(skb->cb[PN_CB_WORD(podnet_explain_request, tunnel_remote)]);
		key.tunnel_id = skb->cb[PN_CB_WORD(podnet_explain_request, tunnel_vni)];
	}
	__be32 peer = bpf_htonl(key.remote_ipv4);

	t->node_ip = peer;
	t->vni = key.tunnel_id;
	if (!bpf_map_lookup_elem(&podnet_peers, &peer))
		return -DROP_UNKNOWN_PEER;
	if (key.tunnel_id != CONFIG.vni)
		return -DROP_WRONG_VNI;

	int hlen = pn_eth_ipv4_parse(skb, t);

	if (hlen < 0)
		return hlen;

	int err = pn_vxlan_peer_check(peer, t->saddr);

	if (err < 0)
		return err;

	struct podnet_endpoint *ep = pn_endpoint_lookup(t->daddr);

	if (!ep)
		return -DROP_NOT_LOCAL;
	return pn_deliver_local(skb, ep, t);
}

SEC("tc")
int pn_from_overlay(struct __sk_buff *skb)
{
	struct pn_trace t = {};
	int ret = pn_handle(skb, &t);

	/* The inner frame is addressed to the sender's gateway MAC, not to this
	 * device: without this the stack drops it as PACKET_OTHERHOST instead
	 * of answering ICMP time exceeded. */
	if (ret == TC_ACT_OK && t.reason == FWD_STACK_TTL)
		bpf_skb_change_type(skb, 0 /* PACKET_HOST */);
	return pn_finish(skb, DIR_FROM_OVERLAY, ret, &t);
}

char LICENSE[] SEC("license") = "GPL";
