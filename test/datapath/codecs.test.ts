// Every codec of src/datapath/abi.ts takes its offsets from a layout (the
// layouts themselves are checked against BTF in abi.test.ts). Here each codec
// is checked field by field against the layout it was built from: the real
// one, and a copy in which every field has moved, so a codec that writes a
// literal offset (or ignores a layout change) fails.
import { describe, expect, it } from 'vitest'
import {
  ABI_LAYOUTS,
  ConfigLayout,
  DecisionLayout,
  DEFAULT_VXLAN_PORT,
  EndpointLayout,
  EVENT_DROP,
  EVENT_TRACE,
  EventLayout,
  EXPLAIN_F_TUNNEL,
  EXPLAIN_MAGIC0,
  EXPLAIN_MAGIC1,
  ExplainRequestLayout,
  MetricLayout,
  PeerLayout,
  ROUTE_F_VXLAN,
  RouteKeyLayout,
  RouteLayout,
  SettingsLayout,
  SkBuffLayout,
  configEncoderFor,
  endpointCodecFor,
  eventDecoderFor,
  explainCodecFor,
  fieldOffsets,
  metricCodecFor,
  peerCodecFor,
  routeCodecFor,
  settingsCodecFor,
  type Layout,
} from '../../src/datapath/abi.js'

type Kind = 'u8' | 'u16be' | 'u32le' | 'u32be' | 'u64le' | 'ip' | 'mac'
type Spec = Record<string, readonly [Kind, number | bigint | string]>
interface Check {
  field: string
  at: number
  kind: Kind
  value: number | bigint | string
}

/** Where each field of spec sits in a buffer holding the struct at base, read from the layout (not from the codec). */
function checks(l: Layout, spec: Spec, base = 0): Check[] {
  return Object.entries(spec).map(([field, [kind, value]]) => {
    const f = l.fields[field]
    if (!f) throw new Error(`test spec names ${field}, which ${l.cName} does not have`)
    return { field, at: base + f[0], kind, value }
  })
}

function read(b: Buffer, at: number, kind: Kind): number | bigint | string {
  switch (kind) {
    case 'u8':
      return b[at]!
    case 'u16be':
      return b.readUInt16BE(at)
    case 'u32le':
      return b.readUInt32LE(at)
    case 'u32be':
      return b.readUInt32BE(at)
    case 'u64le':
      return b.readBigUInt64LE(at)
    case 'ip':
      return [...b.subarray(at, at + 4)].join('.')
    case 'mac':
      return [...b.subarray(at, at + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':')
  }
}

function write(b: Buffer, c: Check): void {
  const v = c.value
  switch (c.kind) {
    case 'u8':
      b[c.at] = v as number
      return
    case 'u16be':
      b.writeUInt16BE(v as number, c.at)
      return
    case 'u32le':
      b.writeUInt32LE(v as number, c.at)
      return
    case 'u32be':
      b.writeUInt32BE(v as number, c.at)
      return
    case 'u64le':
      b.writeBigUInt64LE(v as bigint, c.at)
      return
    case 'ip':
      Buffer.from((v as string).split('.').map(Number)).copy(b, c.at)
      return
    case 'mac':
      Buffer.from((v as string).split(':').map((x) => parseInt(x, 16))).copy(b, c.at)
  }
}

/** What an encoder wrote, field by field, next to what the layout says should be there. */
function fieldsIn(b: Buffer, cs: Check[]): Record<string, unknown> {
  return Object.fromEntries(cs.map((c) => [c.field, read(b, c.at, c.kind)]))
}
function expected(cs: Check[]): Record<string, unknown> {
  return Object.fromEntries(cs.map((c) => [c.field, c.value]))
}
function bufferWith(size: number, cs: Check[]): Buffer {
  const b = Buffer.alloc(size)
  for (const c of cs) write(b, c)
  return b
}

/** The same struct with every field moved: behind the original's end, in reverse order, a byte apart. */
function moved<L extends Layout>(l: L): L {
  let at = l.size + 1
  const fields: Record<string, readonly [number, number]> = {}
  for (const [name, [, size]] of Object.entries(l.fields).reverse()) {
    fields[name] = [at, size]
    at += size + 1
  }
  return { cName: l.cName, size: at, fields } as unknown as L
}

/** For structs laid over the 20 bytes of cb[]: every u32 field one word on (the last to the front). */
function rotated<L extends Layout>(l: L): L {
  const fields: Record<string, readonly [number, number]> = {}
  for (const [name, [off, size]] of Object.entries(l.fields)) {
    if (size !== 4) throw new Error(`rotated() is for u32 fields only (${l.cName}.${name})`)
    fields[name] = [(off + 4) % l.size, size]
  }
  return { ...l, fields } as L
}

const same = <L extends Layout>(l: L): L => l
const VARIANTS = [
  ['as built (the BTF-checked layouts)', { layout: same, inCb: same }],
  ['with every field moved', { layout: moved, inCb: rotated }],
] as const

const ENDPOINT: Spec = {
  ifindex: ['u32le', 0x01020304],
  flags: ['u32le', 0x0a0b0c0d],
  pod_mac: ['mac', '02:aa:bb:cc:dd:01'],
  host_mac: ['mac', '02:aa:bb:cc:dd:02'],
}
const ENDPOINT_VALUE = { ifindex: 0x01020304, flags: 0x0a0b0c0d, podMac: '02:aa:bb:cc:dd:01', hostMac: '02:aa:bb:cc:dd:02' }

describe.each(VARIANTS)('codecs built from layouts %s', (_variant, { layout, inCb }) => {
  it('endpoint value: written and read at the layout offsets, also as the second entry of a batch', () => {
    const l = layout(EndpointLayout)
    const c = endpointCodecFor(l)
    const b = c.encodeValue(ENDPOINT_VALUE, Buffer.alloc(2 * l.size, 0xee), l.size)
    expect(fieldsIn(b, checks(l, ENDPOINT, l.size))).toEqual(expected(checks(l, ENDPOINT, l.size)))
    expect(c.decodeValue(bufferWith(l.size, checks(l, ENDPOINT)))).toEqual(ENDPOINT_VALUE)
    expect(c.encodeValue(ENDPOINT_VALUE).length).toBe(l.size)
  })

  it('route key and value: written and read at the layout offsets', () => {
    const kl = layout(RouteKeyLayout)
    const vl = layout(RouteLayout)
    const c = routeCodecFor(kl, vl)
    const key: Spec = { prefixlen: ['u32le', 24], addr: ['ip', '10.1.2.0'] }
    const val: Spec = { node_ip: ['ip', '192.168.1.2'], flags: ['u32le', ROUTE_F_VXLAN] }
    const kb = c.encodeKey('10.1.2.0/24', Buffer.alloc(2 * kl.size, 0xee), kl.size)
    expect(fieldsIn(kb, checks(kl, key, kl.size))).toEqual(expected(checks(kl, key, kl.size)))
    const vb = c.encodeValue({ nodeIp: '192.168.1.2', vxlan: true }, Buffer.alloc(2 * vl.size, 0xee), vl.size)
    expect(fieldsIn(vb, checks(vl, val, vl.size))).toEqual(expected(checks(vl, val, vl.size)))
    expect(c.decodeKey(bufferWith(kl.size, checks(kl, key)))).toBe('10.1.2.0/24')
    expect(c.decodeValue(bufferWith(vl.size, checks(vl, val)))).toEqual({ nodeIp: '192.168.1.2', vxlan: true })
    expect([c.keySize, c.valueSize]).toEqual([kl.size, vl.size])
  })

  it('peer value: flags written as 0 at the layout offset', () => {
    const l = layout(PeerLayout)
    const spec: Spec = { flags: ['u32le', 0] }
    const b = peerCodecFor(l).encodeValue(Buffer.alloc(l.size, 0xee))
    expect(fieldsIn(b, checks(l, spec))).toEqual(expected(checks(l, spec)))
  })

  it('metric: per-CPU values read at the layout offsets', () => {
    const l = layout(MetricLayout)
    const c = metricCodecFor(l)
    const spec: Spec = { packets: ['u64le', 12345678901n], bytes: ['u64le', 98765432109n] }
    const b = bufferWith(2 * c.perCpuStride, checks(l, spec, c.perCpuStride))
    expect(c.decode(b, c.perCpuStride)).toEqual({ packets: 12345678901n, bytes: 98765432109n })
    expect(c.perCpuStride % 8).toBe(0)
    expect(c.perCpuStride).toBeGreaterThanOrEqual(l.size)
  })

  it('settings: both fields written and read at the layout offsets', () => {
    const l = layout(SettingsLayout)
    const c = settingsCodecFor(l)
    const spec: Spec = { monitor_flags: ['u32le', 1], trace_owner: ['u32le', 4242] }
    expect(fieldsIn(c.encode({ monitorFlags: 1, traceOwner: 4242 }), checks(l, spec))).toEqual(expected(checks(l, spec)))
    expect(c.decode(bufferWith(l.size, checks(l, spec)))).toEqual({ monitorFlags: 1, traceOwner: 4242 })
  })

  it('event: every field decodeEvent returns is read at its layout offset', () => {
    const l = layout(EventLayout)
    const spec: Spec = {
      ts_ns: ['u64le', 123456789n],
      type: ['u8', EVENT_DROP],
      reason: ['u8', 129],
      dir: ['u8', 2],
      proto: ['u8', 17],
      ifindex: ['u32le', 7],
      saddr: ['ip', '10.0.0.1'],
      daddr: ['ip', '10.0.0.2'],
      target: ['u32le', 9],
      len: ['u32le', 99],
      sport: ['u16be', 53],
      dport: ['u16be', 5353],
      ethertype: ['u16be', 0x0800],
      node_ip: ['ip', '192.168.1.2'],
    }
    const decode = eventDecoderFor(l)
    expect(decode(bufferWith(l.size, checks(l, spec)))).toEqual({
      tsNs: 123456789n,
      type: 'drop',
      reason: 129,
      dir: 2,
      proto: 17,
      ifindex: 7,
      saddr: '10.0.0.1',
      daddr: '10.0.0.2',
      target: 9,
      len: 99,
      sport: 53,
      dport: 5353,
      ethertype: 0x0800,
      nodeIp: '192.168.1.2',
    })
    expect(decode(bufferWith(l.size, checks(l, { type: ['u8', EVENT_TRACE] }))).type).toBe('trace')
  })

  it('config: every field written at its layout offset, in its byte order', () => {
    const l = layout(ConfigLayout)
    const spec: Spec = {
      node_ip: ['ip', '192.168.1.10'],
      device_ifindex: ['u32le', 2],
      vxlan_ifindex: ['u32le', 3],
      vni: ['u32le', 4242],
      device_mtu: ['u32le', 1500],
      overlay_mtu: ['u32le', 1450],
      pod_net: ['u32be', 0x0a010000],
      pod_mask: ['u32be', 0xffff0000],
      vxlan_port: ['u32le', 4789],
      node_mask: ['u32be', 0xffffff00],
    }
    const b = configEncoderFor(l)({
      nodeIp: '192.168.1.10',
      deviceIfindex: 2,
      vxlanIfindex: 3,
      vni: 4242,
      deviceMtu: 1500,
      overlayMtu: 1450,
      podCidr: '10.1.0.0/16',
      vxlanPort: 4789,
      nodePrefixLen: 24,
    })
    expect(b.length).toBe(l.size)
    expect(fieldsIn(b, checks(l, spec))).toEqual(expected(checks(l, spec)))
    const defaults = configEncoderFor(l)({
      nodeIp: '10.0.0.1',
      deviceIfindex: 1,
      vxlanIfindex: 0,
      vni: 1,
      deviceMtu: 1500,
      overlayMtu: 1450,
    })
    expect(defaults.readUInt32LE(l.fields.vxlan_port[0])).toBe(DEFAULT_VXLAN_PORT)
  })

  it('explain ctx: ifindex, GSO and the request in cb[] at the __sk_buff and request layout offsets', () => {
    const skb = layout(SkBuffLayout)
    const req = inCb(ExplainRequestLayout)
    const c = explainCodecFor(skb, req, inCb(DecisionLayout))
    const ctx = c.encodeCtx({ ifindex: 5, explain: true, tunnel: { remote: '192.168.1.20', vni: 77 }, gso: { size: 1400, segs: 3 } })
    const cb = skb.fields.cb[0]
    const ctxSpec: Spec = { ifindex: ['u32le', 5], gso_segs: ['u32le', 3], gso_size: ['u32le', 1400] }
    const reqSpec: Spec = {
      magic0: ['u32le', EXPLAIN_MAGIC0],
      magic1: ['u32le', EXPLAIN_MAGIC1],
      tunnel_remote: ['ip', '192.168.1.20'],
      tunnel_vni: ['u32le', 77],
      tunnel_flags: ['u32le', EXPLAIN_F_TUNNEL],
    }
    expect(ctx.length).toBe(skb.size)
    expect(fieldsIn(ctx, checks(skb, ctxSpec))).toEqual(expected(checks(skb, ctxSpec)))
    expect(fieldsIn(ctx, checks(req, reqSpec, cb))).toEqual(expected(checks(req, reqSpec, cb)))
    const counted = c.encodeCtx({ ifindex: 5, explain: false })
    expect(counted.subarray(cb, cb + skb.fields.cb[1]).every((x) => x === 0)).toBe(true)
  })

  it('explain decision: read from cb[] of ctx_out at the decision layout offsets', () => {
    const skb = layout(SkBuffLayout)
    const dec = inCb(DecisionLayout)
    const c = explainCodecFor(skb, inCb(ExplainRequestLayout), dec)
    const spec: Spec = {
      verdict: ['u32le', 7],
      reason: ['u32le', 3],
      target: ['u32le', 11],
      node_ip: ['ip', '192.168.1.20'],
      vni: ['u32le', 77],
    }
    const ctxOut = bufferWith(skb.size, checks(dec, spec, skb.fields.cb[0]))
    expect(c.decodeDecision(7, ctxOut)).toEqual({ verdict: 7, reason: 3, target: 11, nodeIp: '192.168.1.20', vni: 77, answered: true })
    expect(c.decodeDecision(2, ctxOut).answered).toBe(false)
  })
})

const ALL_LAYOUTS: readonly Layout[] = [...ABI_LAYOUTS, SkBuffLayout]

describe('fieldOffsets and the moved layouts', () => {
  it('moves every field of every layout (else the moved variant proves nothing)', () => {
    const cases = ALL_LAYOUTS.map((l) => [l, moved(l)] as const).concat(
      [ExplainRequestLayout, DecisionLayout].map((l) => [l, rotated(l)] as const),
    )
    for (const [l, m] of cases) {
      for (const [name, [off, size]] of Object.entries(l.fields)) {
        expect(m.fields[name]![0], `${l.cName}.${name}`).not.toBe(off)
        expect(m.fields[name]![1], `${l.cName}.${name}`).toBe(size)
      }
    }
  })

  it('refuses an explain request or decision that does not fit in cb[]', () => {
    expect(() => explainCodecFor(SkBuffLayout, moved(ExplainRequestLayout), DecisionLayout)).toThrow('does not fit in __sk_buff.cb')
  })

  it('refuses a layout whose field has another size than the codec accesses', () => {
    const l = { ...EndpointLayout, fields: { ...EndpointLayout.fields, pod_mac: [8, 4] as const } }
    expect(() => endpointCodecFor(l)).toThrow('struct podnet_endpoint.pod_mac is 4 bytes, its codec accesses 6')
  })

  it('refuses a layout without a field the codec accesses', () => {
    expect(() => fieldOffsets(PeerLayout as Layout, { flags: 4, gone: 4 })).toThrow('struct podnet_peer has no field gone')
  })

  it('catches a codec with a literal offset (the moved-layout check can fail)', () => {
    const l = moved(EndpointLayout)
    const literal = (e: typeof ENDPOINT_VALUE, b: Buffer) => {
      b.writeUInt32LE(e.ifindex, 0)
      b.writeUInt32LE(e.flags, 4)
      return b
    }
    const b = literal(ENDPOINT_VALUE, Buffer.alloc(l.size))
    expect(fieldsIn(b, checks(l, ENDPOINT))).not.toEqual(expected(checks(l, ENDPOINT)))
  })
})
