/* SPDX-License-Identifier: Apache-2.0 */
/* Includes, load-time config and small helpers shared by every program. */
#ifndef PODNET_COMMON_H
#define PODNET_COMMON_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "podnet_abi.h"

#ifndef AF_INET
#define AF_INET 2
#endif

/* Written by the control plane before load; the verifier sees constants and
 * prunes what a node does not use (e.g. the overlay in direct mode). */
const volatile struct podnet_config CONFIG = {};

/* Never read: keeps the ABI enums and structs in every object's BTF, where a
 * test checks the TypeScript mirror against them. */
struct podnet_abi_types {
	enum podnet_reason reason;
	enum podnet_dir dir;
	enum podnet_event_type event_type;
	struct podnet_explain_request explain_request;
	struct podnet_decision decision;
	struct podnet_event event;
};
const volatile struct podnet_abi_types PODNET_ABI_TYPES __attribute__((used)) = {};

/* What a worker decided, for counters, events and explain mode. */
struct pn_trace {
	__u32 reason;
	__u32 target;
	__u32 node_ip;
	__u32 vni;
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u16 ethertype;
	__u8 proto;
};

/* Make at least len bytes linear; callers re-derive data/data_end. */
static __always_inline void pn_pull(struct __sk_buff *skb, __u32 len)
{
	if ((void *)(long)skb->data + len > (void *)(long)skb->data_end && skb->len >= len)
		bpf_skb_pull_data(skb, len);
}

/* A bounds-checked pointer to len bytes at off, or NULL. */
static __always_inline void *pn_ptr(struct __sk_buff *skb, __u32 off, __u32 len)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	if (data + off + len > data_end)
		return 0;
	return data + off;
}

#endif
