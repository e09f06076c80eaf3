// TypeScript mirror of bpf/include/podnet_abi.h. test/datapath/abi.test.ts
// checks every size and offset here against the BTF of the built objects.

import { maskOf, parseCidr } from '../util/ipv4.js'

export const ABI_VERSION = 1

/** enum podnet_reason — numbers are never reused. */
export const Reason = {
  UNSPEC: 0,
  FWD_LOCAL: 1,
  FWD_DIRECT: 2,
  FWD_VXLAN: 3,
  FWD_STACK: 4,
  FWD_ARP_REPLY: 5,
  FWD_STACK_TTL: 6,
  FWD_STACK_MTU: 7,
  FWD_ENCAP_STACK: 8,
  FWD_PASS: 9,
  FWD_DECAP: 10,
  FWD_STACK_ENCAP: 11,
  DROP_INVALID: 128,
  DROP_SPOOFED_SRC: 129,
  DROP_UNSUPPORTED_L3: 130,
  DROP_NO_TUNNEL: 131,
  DROP_NOT_LOCAL: 132,
  DROP_WRONG_VNI: 133,
  DROP_NO_ROUTE: 134,
  DROP_ARP_SPOOFED: 135,
  DROP_REDIRECT: 136,
  DROP_TUNNEL_KEY: 137,
  DROP_ARP_INVALID: 138,
  DROP_CSUM: 139,
  DROP_UNKNOWN_PEER: 140,
  DROP_PEER_SPOOFED: 141,
  DROP_POD_TO_VXLAN: 142,
  DROP_VLAN: 143,
  DROP_UNASSIGNED: 144,
} as const
export type ReasonName = keyof typeof Reason
export const REASON_MAX = 256
export const DROP_BASE = 128

const reasonNames = new Map<number, ReasonName>(Object.entries(Reason).map(([k, v]) => [v, k as ReasonName]))

/** 'FWD_LOCAL' → 'local', 'DROP_SPOOFED_SRC' → 'spoofed-src' (labels for humans and Prometheus). */
export function reasonLabel(code: number): string {
  const name = reasonNames.get(code)
  if (!name) return `unknown-${code}`
  return name
    .replace(/^(FWD|DROP)_/, '')
    .toLowerCase()
    .replace(/_/g, '-')
}
export function isDrop(code: number): boolean {
  return code >= DROP_BASE
}

/** enum podnet_dir: the hook a packet was seen at. */
export const Dir = { FROM_POD: 0, FROM_OVERLAY: 1, FROM_NETDEV: 2, TO_OVERLAY: 3 } as const
export const DIR_MAX = 4
export const dirLabels = ['from-pod', 'from-overlay', 'from-netdev', 'to-overlay'] as const

export const METRICS_ENTRIES = DIR_MAX * REASON_MAX
export const ROUTE_F_VXLAN = 1
export const MONITOR_F_TRACE = 1
/** Drop events per CPU, per program and per reason in one second at most (counters stay exact). */
export const DROP_EVENTS_PER_SEC = 64
export const EVENT_DROP = 1
export const EVENT_TRACE = 2
export const EXPLAIN_MAGIC0 = 0x706f646e
export const EXPLAIN_MAGIC1 = 0x65787031
/** from_overlay explain runs: cb[4] = this, cb[2] = outer source IP (network order), cb[3] = VNI. */
export const EXPLAIN_F_TUNNEL = 1

/** Map and program names as declared in bpf/. */
export const MapName = {
  endpoints: 'podnet_endpoints',
  routes: 'podnet_routes',
  peers: 'podnet_peers',
  metrics: 'podnet_metrics',
  events: 'podnet_events',
  settings: 'podnet_settings',
} as const
export const Programs = {
  fromPod: { object: 'from_pod.bpf.o', program: 'pn_from_pod' },
  fromOverlay: { object: 'from_overlay.bpf.o', program: 'pn_from_overlay' },
  fromNetdev: { object: 'from_netdev.bpf.o', program: 'pn_from_netdev' },
  toOverlay: { object: 'to_overlay.bpf.o', program: 'pn_to_overlay' },
} as const
export type ProgramKey = keyof typeof Programs

// ---- IPv4 / MAC helpers (addresses travel in network byte order) ----

export function ipToBuf(ip: string, buf: Buffer = Buffer.alloc(4), off = 0): Buffer {
  const parts = ip.split('.').map(Number)
  for (let i = 0; i < 4; i++) buf[off + i] = parts[i]!
  return buf
}
export function bufToIp(buf: Buffer, off = 0): string {
  return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`
}
export function macToBytes(mac: string, buf: Buffer, off: number): void {
  const parts = mac.split(':')
  for (let i = 0; i < 6; i++) buf[off + i] = parseInt(parts[i]!, 16)
}
export function bytesToMac(buf: Buffer, off: number): string {
  const out: string[] = []
  for (let i = 0; i < 6; i++) out.push(buf[off + i]!.toString(16).padStart(2, '0'))
  return out.join(':')
}

// ---- struct codecs: layout { field: [offset, size] } checked against BTF ----

export interface Layout {
  cName: string
  size: number
  fields: Record<string, readonly [offset: number, size: number]>
}

export const EndpointLayout = {
  cName: 'podnet_endpoint',
  size: 20,
  fields: { ifindex: [0, 4], flags: [4, 4], pod_mac: [8, 6], host_mac: [14, 6] },
} as const satisfies Layout
export interface Endpoint {
  ip: string
  ifindex: number
  flags: number
  podMac: string
  hostMac: string
}
export const endpointCodec = {
  encodeKey(ip: string): Buffer {
    return ipToBuf(ip)
  },
  decodeKey(b: Buffer, off = 0): string {
    return bufToIp(b, off)
  },
  encodeValue(e: Omit<Endpoint, 'ip'>, b: Buffer = Buffer.alloc(20), off = 0): Buffer {
    b.writeUInt32LE(e.ifindex, off)
    b.writeUInt32LE(e.flags, off + 4)
    macToBytes(e.podMac, b, off + 8)
    macToBytes(e.hostMac, b, off + 14)
    return b
  },
  decodeValue(b: Buffer, off = 0): Omit<Endpoint, 'ip'> {
    return {
      ifindex: b.readUInt32LE(off),
      flags: b.readUInt32LE(off + 4),
      podMac: bytesToMac(b, off + 8),
      hostMac: bytesToMac(b, off + 14),
    }
  },
}

export const RouteKeyLayout = {
  cName: 'podnet_route_key',
  size: 8,
  fields: { prefixlen: [0, 4], addr: [4, 4] },
} as const satisfies Layout
export const RouteLayout = {
  cName: 'podnet_route',
  size: 8,
  fields: { node_ip: [0, 4], flags: [4, 4] },
} as const satisfies Layout
export interface Route {
  cidr: string
  nodeIp: string
  vxlan: boolean
}
export const routeCodec = {
  encodeKey(cidr: string, b: Buffer = Buffer.alloc(8), off = 0): Buffer {
    const [ip, len] = cidr.split('/')
    b.writeUInt32LE(Number(len), off)
    ipToBuf(ip!, b, off + 4)
    return b
  },
  decodeKey(b: Buffer, off = 0): string {
    return `${bufToIp(b, off + 4)}/${b.readUInt32LE(off)}`
  },
  encodeValue(r: { nodeIp: string; vxlan: boolean }, b: Buffer = Buffer.alloc(8), off = 0): Buffer {
    ipToBuf(r.nodeIp, b, off)
    b.writeUInt32LE(r.vxlan ? ROUTE_F_VXLAN : 0, off + 4)
    return b
  },
  decodeValue(b: Buffer, off = 0): { nodeIp: string; vxlan: boolean } {
    return { nodeIp: bufToIp(b, off), vxlan: (b.readUInt32LE(off + 4) & ROUTE_F_VXLAN) !== 0 }
  },
}

export const PeerLayout = {
  cName: 'podnet_peer',
  size: 4,
  fields: { flags: [0, 4] },
} as const satisfies Layout
/** podnet_peers: a peer node's underlay IP → flags (reserved, 0). */
export const peerCodec = {
  encodeKey(ip: string, b: Buffer = Buffer.alloc(4), off = 0): Buffer {
    return ipToBuf(ip, b, off)
  },
  decodeKey(b: Buffer, off = 0): string {
    return bufToIp(b, off)
  },
  encodeValue(b: Buffer = Buffer.alloc(4), off = 0): Buffer {
    b.writeUInt32LE(0, off)
    return b
  },
}

export const MetricLayout = {
  cName: 'podnet_metric',
  size: 16,
  fields: { packets: [0, 8], bytes: [8, 8] },
} as const satisfies Layout

export const SettingsLayout = {
  cName: 'podnet_settings',
  size: 8,
  fields: { monitor_flags: [0, 4], trace_owner: [4, 4] },
} as const satisfies Layout

export const EventLayout = {
  cName: 'podnet_event',
  size: 48,
  fields: {
    ts_ns: [0, 8],
    type: [8, 1],
    reason: [9, 1],
    dir: [10, 1],
    proto: [11, 1],
    ifindex: [12, 4],
    saddr: [16, 4],
    daddr: [20, 4],
    target: [24, 4],
    len: [28, 4],
    sport: [32, 2],
    dport: [34, 2],
    ethertype: [36, 2],
    pad: [38, 2],
    node_ip: [40, 4],
    pad2: [44, 4],
  },
} as const satisfies Layout
export interface PodnetEvent {
  tsNs: bigint
  type: 'drop' | 'trace'
  reason: number
  dir: number
  proto: number
  ifindex: number
  saddr: string
  daddr: string
  target: number
  len: number
  sport: number
  dport: number
  ethertype: number
  /** peer node of a direct/VXLAN route ('0.0.0.0' otherwise) */
  nodeIp: string
}
export function decodeEvent(b: Buffer): PodnetEvent {
  return {
    tsNs: b.readBigUInt64LE(0),
    type: b[8] === EVENT_DROP ? 'drop' : 'trace',
    reason: b[9]!,
    dir: b[10]!,
    proto: b[11]!,
    ifindex: b.readUInt32LE(12),
    saddr: bufToIp(b, 16),
    daddr: bufToIp(b, 20),
    target: b.readUInt32LE(24),
    len: b.readUInt32LE(28),
    sport: b.readUInt16BE(32),
    dport: b.readUInt16BE(34),
    ethertype: b.readUInt16BE(36),
    nodeIp: bufToIp(b, 40),
  }
}

export const ConfigLayout = {
  cName: 'podnet_config',
  size: 40,
  fields: {
    node_ip: [0, 4],
    device_ifindex: [4, 4],
    vxlan_ifindex: [8, 4],
    vni: [12, 4],
    device_mtu: [16, 4],
    overlay_mtu: [20, 4],
    pod_net: [24, 4],
    pod_mask: [28, 4],
    vxlan_port: [32, 4],
    node_mask: [36, 4],
  },
} as const satisfies Layout
export interface DatapathConfig {
  nodeIp: string
  deviceIfindex: number
  vxlanIfindex: number
  vni: number
  deviceMtu: number
  overlayMtu: number
  /** this node's pod CIDR: addresses outside it are never looked up as endpoints */
  podCidr?: string
  /** UDP port of VXLAN (default 8472) */
  vxlanPort?: number
  /** prefix length of the node IP's subnet on the device: peers inside it are their own next hop */
  nodePrefixLen?: number
}
export const DEFAULT_VXLAN_PORT = 8472
export function encodeConfig(c: DatapathConfig): Buffer {
  const b = Buffer.alloc(ConfigLayout.size)
  ipToBuf(c.nodeIp, b, 0)
  b.writeUInt32LE(c.deviceIfindex, 4)
  b.writeUInt32LE(c.vxlanIfindex, 8)
  b.writeUInt32LE(c.vni, 12)
  b.writeUInt32LE(c.deviceMtu, 16)
  b.writeUInt32LE(c.overlayMtu, 20)
  if (c.podCidr) {
    const cidr = parseCidr(c.podCidr, 'pod CIDR')
    b.writeUInt32BE(cidr.net, 24)
    b.writeUInt32BE(cidr.mask, 28)
  }
  b.writeUInt32LE(c.vxlanPort ?? DEFAULT_VXLAN_PORT, 32)
  if (c.nodePrefixLen) b.writeUInt32BE(maskOf(c.nodePrefixLen), 36)
  return b
}

export const DecisionLayout = {
  cName: 'podnet_decision',
  size: 20,
  fields: { verdict: [0, 4], reason: [4, 4], target: [8, 4], node_ip: [12, 4], vni: [16, 4] },
} as const satisfies Layout

export const ABI_LAYOUTS: readonly Layout[] = [
  EndpointLayout,
  RouteKeyLayout,
  RouteLayout,
  PeerLayout,
  MetricLayout,
  SettingsLayout,
  EventLayout,
  ConfigLayout,
  DecisionLayout,
]

/** tc verdicts (linux/pkt_cls.h). */
export const TcAct = { OK: 0, SHOT: 2, REDIRECT: 7 } as const
