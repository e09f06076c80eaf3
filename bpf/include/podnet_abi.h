/* SPDX-License-Identifier: Apache-2.0 */
/* Types shared between the BPF programs and the TypeScript control plane.
 * TypeScript mirror: src/datapath/abi.ts. A test reads the BTF of the built
 * objects and checks every size and offset of the mirror against it, so
 * change both together. Reason numbers are never reused.
 */
#ifndef PODNET_ABI_H
#define PODNET_ABI_H

#include <linux/types.h>

#define PODNET_ABI_VERSION 1

/* Why a packet went where it went. Forward reasons < 128, drops >= 128. */
enum podnet_reason {
	REASON_UNSPEC = 0,
	/* forwarded */
	FWD_LOCAL = 1,          /* redirected into a pod on this node */
	FWD_DIRECT = 2,         /* sent to a peer node's underlay IP, unencapsulated */
	FWD_VXLAN = 3,          /* VXLAN-encapsulated here, sent out the NIC to a peer node */
	FWD_STACK = 4,          /* handed to the host stack (node IP, other addresses) */
	FWD_ARP_REPLY = 5,      /* ARP request from a pod answered with the host veth MAC */
	FWD_STACK_TTL = 6,      /* TTL <= 1: the stack sends ICMP time exceeded */
	FWD_STACK_MTU = 7,      /* larger than the path MTU: the stack sends ICMP frag-needed */
	FWD_ENCAP_STACK = 8,    /* node-originated packet to a remote pod, tunnel key set on egress */
	FWD_PASS = 9,           /* not for a local pod: passed on (from-netdev) */
	FWD_DECAP = 10,         /* VXLAN for a local pod: decapsulated on the NIC, redirected into the pod */
	FWD_STACK_ENCAP = 11,   /* could not encapsulate here: the stack sends it via the VXLAN device */
	/* dropped */
	DROP_INVALID = 128,     /* truncated or malformed header */
	DROP_SPOOFED_SRC = 129, /* source IP is not the pod's own */
	DROP_UNSUPPORTED_L3 = 130, /* not IPv4 or ARP */
	DROP_NO_TUNNEL = 131,   /* VXLAN route but no VXLAN device configured */
	DROP_NOT_LOCAL = 132,   /* decapsulated packet not for a local pod */
	DROP_WRONG_VNI = 133,   /* decapsulated packet with a foreign VNI */
	DROP_NO_ROUTE = 134,    /* egress to overlay without a route */
	DROP_ARP_SPOOFED = 135, /* ARP whose sender IP is not the pod's own */
	DROP_REDIRECT = 136,    /* a redirect helper failed */
	DROP_TUNNEL_KEY = 137,  /* bpf_skb_{set,get}_tunnel_key failed */
	DROP_ARP_INVALID = 138, /* ARP that is not an Ethernet/IPv4 request */
	DROP_CSUM = 139,        /* checksum rewrite failed */
	DROP_UNKNOWN_PEER = 140, /* VXLAN whose outer source is not a peer node (podnet_peers) */
	DROP_PEER_SPOOFED = 141, /* decapsulated packet whose source is neither its peer's pod CIDR nor the peer itself */
	DROP_POD_TO_VXLAN = 142, /* pod traffic to the VXLAN UDP port of a node (or any host) */
	DROP_VLAN = 143,        /* 802.1Q/802.1ad-tagged frame from a pod, or for a pod from the NIC */
	DROP_UNASSIGNED = 144,  /* address in this node's pod CIDR that is no endpoint */
	PODNET_REASON_MAX = 256,
};

/* The hook a packet was seen at. */
enum podnet_dir {
	DIR_FROM_POD = 0,
	DIR_FROM_OVERLAY = 1,
	DIR_FROM_NETDEV = 2,
	DIR_TO_OVERLAY = 3,
	PODNET_DIR_MAX = 4,
};

/* podnet_endpoints: key is the pod IPv4 address (network byte order). */
struct podnet_endpoint {
	__u32 ifindex;      /* host-side veth */
	__u32 flags;        /* reserved, 0 */
	__u8 pod_mac[6];    /* the pod's eth0 */
	__u8 host_mac[6];   /* the host-side veth */
};
_Static_assert(sizeof(struct podnet_endpoint) == 20, "podnet_endpoint size");

/* podnet_routes: LPM trie key. */
struct podnet_route_key {
	__u32 prefixlen;
	__u32 addr;         /* network byte order */
};
_Static_assert(sizeof(struct podnet_route_key) == 8, "podnet_route_key size");

#define ROUTE_F_VXLAN (1U << 0)

struct podnet_route {
	__u32 node_ip;      /* peer node underlay IP, network byte order */
	__u32 flags;        /* ROUTE_F_* */
};
_Static_assert(sizeof(struct podnet_route) == 8, "podnet_route size");

/* podnet_peers: key is a peer node's underlay IPv4 (network byte order), one
 * entry per node IP of the routes map, kept in step with it by the control
 * plane. VXLAN is decapsulated only from these. */
struct podnet_peer {
	__u32 flags;        /* reserved, 0 */
};
_Static_assert(sizeof(struct podnet_peer) == 4, "podnet_peer size");

/* podnet_metrics: per-CPU array indexed by dir * PODNET_REASON_MAX + reason. */
struct podnet_metric {
	__u64 packets;
	__u64 bytes;
};
_Static_assert(sizeof(struct podnet_metric) == 16, "podnet_metric size");

#define PODNET_METRICS_ENTRIES (PODNET_DIR_MAX * PODNET_REASON_MAX)

/* podnet_settings[0] */
#define MONITOR_F_TRACE (1U << 0)

struct podnet_settings {
	__u32 monitor_flags;
	__u32 trace_owner;  /* pid of a tracing monitor (control plane only: the
			     * datapath cannot check it, `monitor`/`status` clear
			     * MONITOR_F_TRACE once no tracing monitor is alive) */
};
_Static_assert(sizeof(struct podnet_settings) == 8, "podnet_settings size");

/* Drop events per CPU, per program and per reason in one second at most;
 * counters stay exact. A pod spraying bad packets cannot flood the ring. */
#define PODNET_DROP_EVENTS_PER_SEC 64

/* podnet_events ring buffer record. */
enum podnet_event_type {
	EVENT_DROP = 1,
	EVENT_TRACE = 2,
};

struct podnet_event {
	__u64 ts_ns;        /* bpf_ktime_get_ns */
	__u8 type;          /* enum podnet_event_type */
	__u8 reason;        /* enum podnet_reason */
	__u8 dir;           /* enum podnet_dir */
	__u8 proto;         /* IP protocol, 0 for non-IP */
	__u32 ifindex;      /* where the packet was seen */
	__u32 saddr;        /* network byte order, 0 for non-IP */
	__u32 daddr;
	__u32 target;       /* ifindex the packet was sent to, 0 for the stack */
	__u32 len;          /* skb->len */
	__u16 sport;        /* network byte order; ICMP: type/code */
	__u16 dport;
	__u16 ethertype;    /* network byte order */
	__u16 pad;
	__u32 node_ip;      /* peer node of a direct/VXLAN route, network byte order */
	__u32 pad2;
};
_Static_assert(sizeof(struct podnet_event) == 48, "podnet_event size");

/* Load-time configuration, `const volatile struct podnet_config CONFIG` in
 * every object's .rodata, written by the control plane before load. */
struct podnet_config {
	__u32 node_ip;          /* network byte order */
	__u32 device_ifindex;   /* node NIC (direct routes go out here) */
	__u32 vxlan_ifindex;    /* 0: no overlay */
	__u32 vni;
	__u32 device_mtu;       /* path MTU for direct routes */
	__u32 overlay_mtu;      /* path MTU for VXLAN routes (device MTU - 50) */
	__u32 pod_net;          /* this node's pod CIDR, network byte order; */
	__u32 pod_mask;         /* mask 0: not configured */
	__u32 vxlan_port;       /* UDP destination port of VXLAN, host byte order */
	__u32 node_mask;        /* mask of node_ip's subnet on the device, network order; 0: unknown */
};
_Static_assert(sizeof(struct podnet_config) == 40, "podnet_config size");

/* Explain mode (BPF_PROG_TEST_RUN only): ctx_in cb[0..4] carries a struct
 * podnet_explain_request whose magic words switch it on; the program then
 * skips counters and events and writes a struct podnet_decision over cb[0..4]
 * of ctx_out. The programs index cb[] by these structs' offsets (PN_CB_WORD,
 * lib/exit.h), and TypeScript by their layouts: the BTF test checks both. */
#define PODNET_EXPLAIN_MAGIC0 0x706f646eU /* "podn" */
#define PODNET_EXPLAIN_MAGIC1 0x65787031U /* "exp1" */
/* from_overlay only: tunnel_flags == this → tunnel_remote and tunnel_vni
 * are the key of a VXLAN packet as received */
#define PODNET_EXPLAIN_F_TUNNEL 1U

struct podnet_explain_request {
	__u32 magic0;        /* PODNET_EXPLAIN_MAGIC0 */
	__u32 magic1;        /* PODNET_EXPLAIN_MAGIC1 */
	__u32 tunnel_remote; /* outer source IPv4, network byte order */
	__u32 tunnel_vni;
	__u32 tunnel_flags;  /* PODNET_EXPLAIN_F_TUNNEL */
};
_Static_assert(sizeof(struct podnet_explain_request) == 20, "podnet_explain_request size");

struct podnet_decision {
	__u32 verdict;      /* TC_ACT_* returned */
	__u32 reason;       /* enum podnet_reason */
	__u32 target;       /* ifindex (local, direct: device) or 0 */
	__u32 node_ip;      /* peer node IP for direct/VXLAN, network byte order */
	__u32 vni;          /* tunnel id set for VXLAN */
};
_Static_assert(sizeof(struct podnet_decision) == 20, "podnet_decision size");

#endif /* PODNET_ABI_H */
