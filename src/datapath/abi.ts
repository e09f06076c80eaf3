// TypeScript mirror of bpf/include/podnet_abi.h: constants, struct layouts and
// the codecs built from the layouts. test/datapath/abi.test.ts checks every
// size and offset here against the BTF of the built objects (abi-defines.test
// the #defines); test/datapath/codecs.test.ts checks that the codecs follow
// their layouts.

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
/** from_overlay explain runs: the request's tunnel_flags = this → its tunnel_remote (network order) and tunnel_vni are the received key. */
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

// ---- struct layouts and their codecs ----
// A layout names every field of a C struct by its C name with [offset, size];
// test/datapath/abi.test.ts checks each against the BTF of the built objects.
// Codecs never write an offset themselves: each is built from its layout by a
// `…CodecFor(layout)` factory (the tests also build them from shuffled layouts,
// so a literal offset in a codec fails there).

export interface Layout<F extends string = string> {
  cName: string
  size: number
  fields: Readonly<Record<F, readonly [offset: number, size: number]>>
}
type FieldsOf<L extends { fields: object }> = keyof L['fields'] & string

/**
 * The offsets of the fields a codec touches, from its layout. `widths` says how
 * many bytes the codec reads or writes at each; a layout whose field has
 * another size (or is gone) throws here, when the codec is built.
 */
export function fieldOffsets<F extends string, W extends F>(
  l: Layout<F>,
  widths: Readonly<Record<W, number>>,
): Readonly<Record<W, number>> {
  const out = {} as Record<W, number>
  for (const [name, width] of Object.entries(widths) as [W, number][]) {
    const f = l.fields[name] as readonly [number, number] | undefined
    if (!f) throw new Error(`struct ${l.cName} has no field ${name}`)
    if (f[1] !== width) throw new Error(`struct ${l.cName}.${name} is ${f[1]} bytes, its codec accesses ${width}`)
    out[name] = f[0]
  }
  return out
}

/** Keys of podnet_endpoints and podnet_peers: an IPv4 address in network byte order (a __u32, no struct). */
export const IPV4_KEY_SIZE = 4

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
export function endpointCodecFor(l: Layout<FieldsOf<typeof EndpointLayout>>) {
  const o = fieldOffsets(l, { ifindex: 4, flags: 4, pod_mac: 6, host_mac: 6 })
  return {
    size: l.size,
    encodeKey(ip: string): Buffer {
      return ipToBuf(ip)
    },
    decodeKey(b: Buffer, off = 0): string {
      return bufToIp(b, off)
    },
    encodeValue(e: Omit<Endpoint, 'ip'>, b: Buffer = Buffer.alloc(l.size), off = 0): Buffer {
      b.writeUInt32LE(e.ifindex, off + o.ifindex)
      b.writeUInt32LE(e.flags, off + o.flags)
      macToBytes(e.podMac, b, off + o.pod_mac)
      macToBytes(e.hostMac, b, off + o.host_mac)
      return b
    },
    decodeValue(b: Buffer, off = 0): Omit<Endpoint, 'ip'> {
      return {
        ifindex: b.readUInt32LE(off + o.ifindex),
        flags: b.readUInt32LE(off + o.flags),
        podMac: bytesToMac(b, off + o.pod_mac),
        hostMac: bytesToMac(b, off + o.host_mac),
      }
    },
  }
}
export const endpointCodec = endpointCodecFor(EndpointLayout)

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
export function routeCodecFor(kl: Layout<FieldsOf<typeof RouteKeyLayout>>, vl: Layout<FieldsOf<typeof RouteLayout>>) {
  const k = fieldOffsets(kl, { prefixlen: 4, addr: 4 })
  const v = fieldOffsets(vl, { node_ip: 4, flags: 4 })
  return {
    keySize: kl.size,
    valueSize: vl.size,
    encodeKey(cidr: string, b: Buffer = Buffer.alloc(kl.size), off = 0): Buffer {
      const [ip, len] = cidr.split('/')
      b.writeUInt32LE(Number(len), off + k.prefixlen)
      ipToBuf(ip!, b, off + k.addr)
      return b
    },
    decodeKey(b: Buffer, off = 0): string {
      return `${bufToIp(b, off + k.addr)}/${b.readUInt32LE(off + k.prefixlen)}`
    },
    encodeValue(r: { nodeIp: string; vxlan: boolean }, b: Buffer = Buffer.alloc(vl.size), off = 0): Buffer {
      ipToBuf(r.nodeIp, b, off + v.node_ip)
      b.writeUInt32LE(r.vxlan ? ROUTE_F_VXLAN : 0, off + v.flags)
      return b
    },
    decodeValue(b: Buffer, off = 0): { nodeIp: string; vxlan: boolean } {
      return { nodeIp: bufToIp(b, off + v.node_ip), vxlan: (b.readUInt32LE(off + v.flags) & ROUTE_F_VXLAN) !== 0 }
    },
  }
}
export const routeCodec = routeCodecFor(RouteKeyLayout, RouteLayout)

export const PeerLayout = {
  cName: 'podnet_peer',
  size: 4,
  fields: { flags: [0, 4] },
} as const satisfies Layout
/** podnet_peers: a peer node's underlay IP → flags (reserved, 0). */
export function peerCodecFor(l: Layout<FieldsOf<typeof PeerLayout>>) {
  const o = fieldOffsets(l, { flags: 4 })
  return {
    encodeKey(ip: string, b: Buffer = Buffer.alloc(IPV4_KEY_SIZE), off = 0): Buffer {
      return ipToBuf(ip, b, off)
    },
    decodeKey(b: Buffer, off = 0): string {
      return bufToIp(b, off)
    },
    encodeValue(b: Buffer = Buffer.alloc(l.size), off = 0): Buffer {
      b.writeUInt32LE(0, off + o.flags)
      return b
    },
  }
}
export const peerCodec = peerCodecFor(PeerLayout)

export const MetricLayout = {
  cName: 'podnet_metric',
  size: 16,
  fields: { packets: [0, 8], bytes: [8, 8] },
} as const satisfies Layout
/** podnet_metrics is per-CPU: a lookup returns one value per possible CPU, each rounded up to 8 bytes. */
export function metricCodecFor(l: Layout<FieldsOf<typeof MetricLayout>>) {
  const o = fieldOffsets(l, { packets: 8, bytes: 8 })
  return {
    perCpuStride: Math.ceil(l.size / 8) * 8,
    decode(b: Buffer, off = 0): { packets: bigint; bytes: bigint } {
      return { packets: b.readBigUInt64LE(off + o.packets), bytes: b.readBigUInt64LE(off + o.bytes) }
    },
  }
}
export const metricCodec = metricCodecFor(MetricLayout)

export const SettingsLayout = {
  cName: 'podnet_settings',
  size: 8,
  fields: { monitor_flags: [0, 4], trace_owner: [4, 4] },
} as const satisfies Layout
export interface Settings {
  monitorFlags: number
  /** pid of the tracing monitor that last turned tracing on (0: none recorded) */
  traceOwner: number
}
export function settingsCodecFor(l: Layout<FieldsOf<typeof SettingsLayout>>) {
  const o = fieldOffsets(l, { monitor_flags: 4, trace_owner: 4 })
  return {
    size: l.size,
    encode(s: Settings, b: Buffer = Buffer.alloc(l.size), off = 0): Buffer {
      b.writeUInt32LE(s.monitorFlags >>> 0, off + o.monitor_flags)
      b.writeUInt32LE(s.traceOwner >>> 0, off + o.trace_owner)
      return b
    },
    decode(b: Buffer, off = 0): Settings {
      return { monitorFlags: b.readUInt32LE(off + o.monitor_flags), traceOwner: b.readUInt32LE(off + o.trace_owner) }
    },
  }
}
export const settingsCodec = settingsCodecFor(SettingsLayout)

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
/** podnet_events records; ports and ethertype stay in network byte order in C, so they are read big-endian. */
export function eventDecoderFor(l: Layout<FieldsOf<typeof EventLayout>>): (b: Buffer) => PodnetEvent {
  const o = fieldOffsets(l, {
    ts_ns: 8,
    type: 1,
    reason: 1,
    dir: 1,
    proto: 1,
    ifindex: 4,
    saddr: 4,
    daddr: 4,
    target: 4,
    len: 4,
    sport: 2,
    dport: 2,
    ethertype: 2,
    node_ip: 4,
  })
  return (b) => ({
    tsNs: b.readBigUInt64LE(o.ts_ns),
    type: b[o.type] === EVENT_DROP ? 'drop' : 'trace',
    reason: b[o.reason]!,
    dir: b[o.dir]!,
    proto: b[o.proto]!,
    ifindex: b.readUInt32LE(o.ifindex),
    saddr: bufToIp(b, o.saddr),
    daddr: bufToIp(b, o.daddr),
    target: b.readUInt32LE(o.target),
    len: b.readUInt32LE(o.len),
    sport: b.readUInt16BE(o.sport),
    dport: b.readUInt16BE(o.dport),
    ethertype: b.readUInt16BE(o.ethertype),
    nodeIp: bufToIp(b, o.node_ip),
  })
}
export const decodeEvent = eventDecoderFor(EventLayout)

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
/** `CONFIG` in .rodata: addresses and masks in network byte order, the rest host order. */
export function configEncoderFor(l: Layout<FieldsOf<typeof ConfigLayout>>): (c: DatapathConfig) => Buffer {
  const o = fieldOffsets(l, {
    node_ip: 4,
    device_ifindex: 4,
    vxlan_ifindex: 4,
    vni: 4,
    device_mtu: 4,
    overlay_mtu: 4,
    pod_net: 4,
    pod_mask: 4,
    vxlan_port: 4,
    node_mask: 4,
  })
  return (c) => {
    const b = Buffer.alloc(l.size)
    ipToBuf(c.nodeIp, b, o.node_ip)
    b.writeUInt32LE(c.deviceIfindex, o.device_ifindex)
    b.writeUInt32LE(c.vxlanIfindex, o.vxlan_ifindex)
    b.writeUInt32LE(c.vni, o.vni)
    b.writeUInt32LE(c.deviceMtu, o.device_mtu)
    b.writeUInt32LE(c.overlayMtu, o.overlay_mtu)
    if (c.podCidr) {
      const cidr = parseCidr(c.podCidr, 'pod CIDR')
      b.writeUInt32BE(cidr.net, o.pod_net)
      b.writeUInt32BE(cidr.mask, o.pod_mask)
    }
    b.writeUInt32LE(c.vxlanPort ?? DEFAULT_VXLAN_PORT, o.vxlan_port)
    if (c.nodePrefixLen) b.writeUInt32BE(maskOf(c.nodePrefixLen), o.node_mask)
    return b
  }
}
export const encodeConfig = configEncoderFor(ConfigLayout)

// ---- explain mode: BPF_PROG_TEST_RUN's ctx is a struct __sk_buff ----
// ctx_in cb[0..4] holds a struct podnet_explain_request, ctx_out cb[0..4] a
// struct podnet_decision; the programs index cb[] by the word offsets of the
// same structs (PN_CB_WORD in bpf/lib/exit.h), so BTF checks both sides.

/** The part of struct __sk_buff (linux/bpf.h, uapi: never moves) a test-run ctx uses; checked against BTF too. */
export const SkBuffLayout = {
  cName: '__sk_buff',
  size: 192,
  fields: { ifindex: [40, 4], cb: [48, 20], gso_segs: [164, 4], gso_size: [176, 4] },
} as const satisfies Layout

export const ExplainRequestLayout = {
  cName: 'podnet_explain_request',
  size: 20,
  fields: { magic0: [0, 4], magic1: [4, 4], tunnel_remote: [8, 4], tunnel_vni: [12, 4], tunnel_flags: [16, 4] },
} as const satisfies Layout

export const DecisionLayout = {
  cName: 'podnet_decision',
  size: 20,
  fields: { verdict: [0, 4], reason: [4, 4], target: [8, 4], node_ip: [12, 4], vni: [16, 4] },
} as const satisfies Layout

export interface ExplainCtxOptions {
  /** the device the packet arrives on */
  ifindex: number
  /** explain mode (else a counted run: cb[] stays zero) */
  explain: boolean
  /** from_overlay: the tunnel key the VXLAN device would have received */
  tunnel?: { remote: string; vni: number }
  /** makes the skb a GSO skb with this segment size */
  gso?: { size: number; segs: number }
}

export interface ExplainDecision {
  verdict: number
  reason: number
  target: number
  /** peer node IP ('0.0.0.0' when none) */
  nodeIp: string
  vni: number
  /** the program answered in explain mode (cb[0] echoes its verdict) */
  answered: boolean
}

/** The test-run ctx in and the decision out; the explain service and the packet-level test harness both use this. */
export function explainCodecFor(
  skbL: Layout<FieldsOf<typeof SkBuffLayout>>,
  reqL: Layout<FieldsOf<typeof ExplainRequestLayout>>,
  decL: Layout<FieldsOf<typeof DecisionLayout>>,
) {
  const skb = fieldOffsets(skbL, { ifindex: 4, cb: 20, gso_segs: 4, gso_size: 4 })
  const req = fieldOffsets(reqL, { magic0: 4, magic1: 4, tunnel_remote: 4, tunnel_vni: 4, tunnel_flags: 4 })
  const dec = fieldOffsets(decL, { verdict: 4, reason: 4, target: 4, node_ip: 4, vni: 4 })
  for (const l of [reqL, decL]) if (l.size > skbL.fields.cb[1]) throw new Error(`struct ${l.cName} does not fit in __sk_buff.cb`)
  const cbWords = skbL.fields.cb[1] / 4
  return {
    encodeCtx(o: ExplainCtxOptions): Buffer {
      const c = Buffer.alloc(skbL.size)
      c.writeUInt32LE(o.ifindex, skb.ifindex)
      if (o.explain) {
        c.writeUInt32LE(EXPLAIN_MAGIC0, skb.cb + req.magic0)
        c.writeUInt32LE(EXPLAIN_MAGIC1, skb.cb + req.magic1)
        if (o.tunnel) {
          ipToBuf(o.tunnel.remote, c, skb.cb + req.tunnel_remote)
          c.writeUInt32LE(o.tunnel.vni, skb.cb + req.tunnel_vni)
          c.writeUInt32LE(EXPLAIN_F_TUNNEL, skb.cb + req.tunnel_flags)
        }
      }
      if (o.gso) {
        c.writeUInt32LE(o.gso.segs, skb.gso_segs)
        c.writeUInt32LE(o.gso.size, skb.gso_size)
      }
      return c
    },
    /** cb[] of ctx_out, word by word. */
    cbWords(ctxOut: Buffer): number[] {
      return Array.from({ length: cbWords }, (_, i) => ctxOut.readUInt32LE(skb.cb + 4 * i))
    },
    decodeDecision(retval: number, ctxOut: Buffer): ExplainDecision {
      const at = (f: number) => skb.cb + f
      return {
        verdict: retval,
        reason: ctxOut.readUInt32LE(at(dec.reason)),
        target: ctxOut.readUInt32LE(at(dec.target)),
        nodeIp: bufToIp(ctxOut, at(dec.node_ip)),
        vni: ctxOut.readUInt32LE(at(dec.vni)),
        answered: ctxOut.readUInt32LE(at(dec.verdict)) === retval >>> 0,
      }
    },
  }
}
export const explainCodec = explainCodecFor(SkBuffLayout, ExplainRequestLayout, DecisionLayout)

/** Structs of podnet_abi.h, checked field by field (and for size) against BTF. */
export const ABI_LAYOUTS: readonly Layout[] = [
  EndpointLayout,
  RouteKeyLayout,
  RouteLayout,
  PeerLayout,
  MetricLayout,
  SettingsLayout,
  EventLayout,
  ConfigLayout,
  ExplainRequestLayout,
  DecisionLayout,
]

/** tc verdicts (linux/pkt_cls.h). */
export const TcAct = { OK: 0, SHOT: 2, REDIRECT: 7 } as const
