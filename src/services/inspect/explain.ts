// explain: which way would a packet from SRC to DST go on this node? Builds
// the packet, picks the hook it would enter on, and runs it through the
// program live on that hook (BPF_PROG_TEST_RUN on its program id, against the
// live maps) in explain mode: the program writes its decision into cb[] and
// touches no counters and no events.
import { ProgFd, ifNameToIndex, isBpfError } from '../../libbpf/index.js'
import { UserError } from '../../errors.js'
import { EXPLAIN_F_TUNNEL, EXPLAIN_MAGIC0, EXPLAIN_MAGIC1, Programs, Reason, ipToBuf, isDrop, type ProgramKey } from '../../datapath/abi.js'
import { DatapathMaps } from '../../datapath/maps.js'
import { VXLAN_DEV, getLinkByName } from '../../datapath/netdev.js'
import { queryProgram, type Hook } from '../../datapath/tc.js'
import { cidrContains, parseCidr, parseIPv4 } from '../../util/ipv4.js'
import { requireState } from '../node.js'
import type { NodeState } from '../state.js'
import { ifLabel, nboU32ToIp, reasonLabel } from './common.js'
import { buildPacket, EXPLAIN_SPORT, l4HeaderLen, type Proto } from './packet.js'

export interface ExplainInput {
  src: string
  dst: string
  proto?: Proto
  dport?: number
  /** Total IPv4 length (default: minimal headers + 56 bytes). */
  size?: number
  ttl?: number
  /** The device the packet arrives on (default: chosen from the source address). */
  ingress?: string
  pinDir?: string
}

export type Outcome = 'local' | 'direct' | 'vxlan' | 'stack' | 'drop'
type HookName = 'from-pod' | 'from-netdev' | 'from-overlay' | 'to-overlay' | 'host'

export interface Explanation {
  packet: { src: string; dst: string; proto: Proto; sport: number | null; dport: number | null; ipLen: number; ttl: number }
  /** Where the packet enters the datapath, and why that hook. */
  entry: { hook: HookName; device: string; ifindex: number; why: string }
  /** The live program that was run (null: no podnet program on this path). */
  program: { name: string; id: number; device: string; hook: 'ingress' | 'egress' } | null
  verdict: string | null
  reason: string
  reasonCode: number
  outcome: Outcome
  to: { pod: string | null; device: string | null; ifindex: number | null; nodeIp: string | null; vni: number | null }
  summary: string
  notes: string[]
}

// struct __sk_buff as BPF_PROG_TEST_RUN's ctx (linux/bpf.h)
const SKB_SIZE = 192
const SKB_IFINDEX = 40
const SKB_CB = 48

const VERDICTS: Record<number, string> = { [-1]: 'TC_ACT_UNSPEC', 0: 'TC_ACT_OK', 2: 'TC_ACT_SHOT', 7: 'TC_ACT_REDIRECT' }

interface Decision {
  verdict: number
  reason: number
  target: number
  nodeIp: string
  vni: number
}

/** Runs `data` through the program with this id, in explain mode, as if it arrived on `ifindex`. */
/** tunnel: the key a received VXLAN packet would carry (from_overlay). */
function runExplain(progId: number, ifindex: number, data: Buffer, tunnel?: { remote: string; vni: number }): Decision {
  const ctx = Buffer.alloc(SKB_SIZE)
  ctx.writeUInt32LE(ifindex, SKB_IFINDEX)
  ctx.writeUInt32LE(EXPLAIN_MAGIC0, SKB_CB)
  ctx.writeUInt32LE(EXPLAIN_MAGIC1, SKB_CB + 4)
  if (tunnel) {
    ctx.writeUInt32LE(ipToBuf(tunnel.remote).readUInt32LE(0), SKB_CB + 8)
    ctx.writeUInt32LE(tunnel.vni, SKB_CB + 12)
    ctx.writeUInt32LE(EXPLAIN_F_TUNNEL, SKB_CB + 16)
  }
  const prog = ProgFd.fromId(progId)
  try {
    const r = prog.testRun({ data, ctx, repeat: 1, dataSizeOut: data.length + 256 })
    const cb = r.ctx!
    const d = {
      verdict: r.retval,
      reason: cb.readUInt32LE(SKB_CB + 4),
      target: cb.readUInt32LE(SKB_CB + 8),
      nodeIp: nboU32ToIp(cb.readUInt32LE(SKB_CB + 12)),
      vni: cb.readUInt32LE(SKB_CB + 16),
    }
    if (cb.readUInt32LE(SKB_CB) !== (r.retval >>> 0)) {
      throw new Error(`program ${progId} did not answer in explain mode (cb[0]=${cb.readUInt32LE(SKB_CB)}, retval ${r.retval}): is it a podnet-bpf build with explain support?`)
    }
    return d
  } catch (e) {
    if (isBpfError(e, 'ENODEV')) {
      throw new UserError(`device ifindex ${ifindex} does not exist in this network namespace`, "run explain in the node's network namespace (nsenter --net=/run/netns/NODE podnet-bpf explain …)")
    }
    throw e
  } finally {
    prog.close()
  }
}

interface Entry {
  hook: HookName
  /** the program actually run and the hook it is live on */
  key: ProgramKey | null
  tcHook: Hook | null
  device: string
  ifindex: number
  srcMac: string
  dstMac: string
  why: string
  tunnel?: { remote: string; vni: number }
}

const ANY_MAC = '02:00:00:00:00:01'

function macOf(ifname: string): string {
  return getLinkByName(ifname)?.mac ?? ANY_MAC
}

function podEntry(s: NodeState, maps: DatapathMaps, ip: string, why: string): Entry {
  const ep = maps.endpoints.get(ip)!
  const ifname = s.endpoints[ip]?.ifname ?? ifLabel(ep.ifindex)
  return { hook: 'from-pod', key: 'fromPod', tcHook: { ifindex: ep.ifindex, point: 'ingress' }, device: ifname, ifindex: ep.ifindex, srcMac: ep.podMac, dstMac: ep.hostMac, why }
}

function netdevEntry(s: NodeState, why: string): Entry {
  const dev = s.config.device
  return {
    hook: 'from-netdev',
    key: 'fromNetdev',
    tcHook: { ifindex: s.deviceIfindex, point: 'ingress' },
    device: dev,
    ifindex: s.deviceIfindex,
    srcMac: ANY_MAC,
    // from_netdev only routes frames addressed to the NIC (PACKET_HOST)
    dstMac: macOf(dev),
    why,
  }
}

/** Decapsulated by podnet_vxlan, as sent by peer node `remote`. */
function overlayEntry(s: NodeState, why: string, remote: string): Entry {
  if (!s.vxlan) throw new UserError(`this node has no ${VXLAN_DEV} (mode ${s.config.mode}), so nothing arrives through the overlay`, 'explain a packet arriving on the node device instead')
  return {
    hook: 'from-overlay',
    key: 'fromOverlay',
    tcHook: { ifindex: s.vxlan.ifindex, point: 'ingress' },
    device: VXLAN_DEV,
    ifindex: s.vxlan.ifindex,
    srcMac: ANY_MAC,
    dstMac: macOf(VXLAN_DEV),
    why,
    tunnel: { remote, vni: s.config.vni },
  }
}

function chooseEntry(s: NodeState, maps: DatapathMaps, src: string, dst: string, ingress?: string): Entry {
  const ownCidr = parseCidr(s.config.podCidr)
  if (ingress !== undefined) {
    let ifindex: number
    try {
      ifindex = ifNameToIndex(ingress)
    } catch {
      throw new UserError(`interface "${ingress}" not found in this network namespace`, "pass a pod's host veth, the node device or podnet_vxlan, and run in the node's namespace")
    }
    if (ingress === s.config.device) return netdevEntry(s, `arrives on ${ingress} (--ingress)`)
    if (s.vxlan && ifindex === s.vxlan.ifindex) {
      const r = routeFor(maps, src)
      return overlayEntry(s, `arrives through the overlay (--ingress ${ingress})${r ? ` from node ${r.nodeIp}` : ''}`, r?.nodeIp ?? '0.0.0.0')
    }
    const owner = [...maps.endpoints.entries()].find((e) => e.ifindex === ifindex)
    if (!owner) throw new UserError(`${ingress} is not a pod veth, ${s.config.device} or ${VXLAN_DEV} of this node`, 'see `podnet-bpf endpoints list`')
    return podEntry(s, maps, owner.ip, `sent by pod ${owner.ip} on ${ingress} (--ingress)`)
  }
  if (maps.endpoints.get(src)) return podEntry(s, maps, src, `${src} is a local pod: it enters from_pod on its host veth`)
  if (src === s.config.nodeIp) {
    return { hook: 'host', key: null, tcHook: null, device: s.config.device, ifindex: 0, srcMac: ANY_MAC, dstMac: ANY_MAC, why: `${src} is this node: the host stack routes it` }
  }
  if (cidrContains(ownCidr, src)) {
    throw new UserError(`${src} is in this node's pod CIDR ${s.config.podCidr} but is not an endpoint, so no veth sends it`, 'pass --ingress VETH to say which pod sends it (e.g. to check spoofing)')
  }
  const r = routeFor(maps, src)
  if (r?.vxlan) return overlayEntry(s, `${src} is a pod of node ${r.nodeIp} (VXLAN route ${r.cidr}): it arrives through the overlay`, r.nodeIp)
  if (r) return netdevEntry(s, `${src} is a pod of node ${r.nodeIp} (direct route ${r.cidr}): it arrives on ${s.config.device}`)
  return netdevEntry(s, `${src} is not a pod here: it arrives on ${s.config.device}`)
}

/** The peer route covering `ip` (longest prefix), with the CIDR that matched. */
function routeFor(maps: DatapathMaps, ip: string): { cidr: string; nodeIp: string; vxlan: boolean } | null {
  // the datapath's own answer (LPM lookup) …
  const hit = maps.routes.get(`${ip}/32`)
  if (!hit) return null
  // … and the prefix it came from, for the explanation
  let best: { cidr: string; len: number } | null = null
  for (const r of maps.routes.entries()) {
    const c = parseCidr(r.cidr)
    if (cidrContains(c, ip) && (!best || c.len > best.len)) best = { cidr: r.cidr, len: c.len }
  }
  return { cidr: best?.cidr ?? '?', nodeIp: hit.nodeIp, vxlan: hit.vxlan }
}

function outcomeOf(reason: number): Outcome {
  if (isDrop(reason)) return 'drop'
  switch (reason) {
    case Reason.FWD_LOCAL:
      return 'local'
    case Reason.FWD_DIRECT:
      return 'direct'
    case Reason.FWD_VXLAN:
    case Reason.FWD_ENCAP_STACK:
      return 'vxlan'
    default:
      return 'stack'
  }
}

export function explain(input: ExplainInput): Explanation {
  const src = parseIPv4(input.src, 'source IP')
  const dst = parseIPv4(input.dst, 'destination IP')
  const proto = input.proto ?? 'icmp'
  if (input.dport !== undefined && proto === 'icmp') throw new UserError('--dport needs --proto tcp or udp', 'add --proto tcp (or udp)')
  const dport = input.dport ?? 80
  if (dport < 1 || dport > 65535) throw new UserError(`--dport ${dport} is not a port`, 'use 1..65535')
  const minLen = 20 + l4HeaderLen(proto)
  const ipLen = input.size ?? minLen + 56
  if (ipLen < minLen || ipLen > 65535) throw new UserError(`--size ${ipLen} is not a valid IPv4 length for ${proto}`, `use ${minLen}..65535`)
  const ttl = input.ttl ?? 64
  if (ttl < 0 || ttl > 255) throw new UserError(`--ttl ${ttl} is out of range`, 'use 0..255')

  const s = requireState(input.pinDir)
  const maps = DatapathMaps.open(s.pinDir)
  try {
    const entry = chooseEntry(s, maps, src, dst, input.ingress)
    const packet = { src, dst, proto, sport: proto === 'icmp' ? null : EXPLAIN_SPORT, dport: proto === 'icmp' ? null : dport, ipLen, ttl }
    const notes: string[] = []
    const to: Explanation['to'] = { pod: null, device: null, ifindex: null, nodeIp: null, vni: null }
    let program: Explanation['program'] = null
    let verdict: string | null = null
    let reason: number

    if (entry.hook === 'host') {
      // node-originated: the kernel's routes decide; only VXLAN egress runs a program
      const ep = maps.endpoints.get(dst)
      const rt = ep ? null : routeFor(maps, dst)
      if (rt?.vxlan && s.vxlan) {
        const id = queryProgram({ ifindex: s.vxlan.ifindex, point: 'egress' })
        if (id === null) throw new UserError(`no program on ${VXLAN_DEV} egress`, 'the datapath is not fully attached: run `podnet-bpf status`, then attach again')
        const d = runExplain(id, s.vxlan.ifindex, buildPacket({ ...packet, dport, srcMac: macOf(VXLAN_DEV), dstMac: ANY_MAC }))
        program = { name: Programs.toOverlay.program, id, device: VXLAN_DEV, hook: 'egress' }
        entry.hook = 'to-overlay'
        entry.device = VXLAN_DEV
        entry.ifindex = s.vxlan.ifindex
        entry.why += `: its route for ${rt.cidr} is ${VXLAN_DEV}, whose egress runs to_overlay`
        verdict = VERDICTS[d.verdict] ?? String(d.verdict)
        reason = d.reason
        Object.assign(to, { device: VXLAN_DEV, ifindex: d.target || s.vxlan.ifindex, nodeIp: d.nodeIp, vni: d.vni })
      } else if (ep) {
        reason = Reason.FWD_STACK
        Object.assign(to, { pod: dst, device: s.endpoints[dst]?.ifname ?? ifLabel(ep.ifindex), ifindex: ep.ifindex })
        notes.push(`the kernel route ${dst}/32 dev ${to.device} delivers it; no podnet program runs on this path`)
      } else if (rt) {
        reason = Reason.FWD_STACK
        Object.assign(to, { device: s.config.device, ifindex: s.deviceIfindex, nodeIp: rt.nodeIp })
        notes.push(`the kernel route ${rt.cidr} via ${rt.nodeIp} dev ${s.config.device} sends it; no podnet program runs on this path`)
      } else {
        reason = Reason.FWD_STACK
        notes.push('not a pod address podnet-bpf routes: the host stack decides')
      }
    } else {
      const id = queryProgram(entry.tcHook!)
      if (id === null) {
        throw new UserError(`no podnet program on ${entry.key === 'fromPod' ? entry.device : s.config.device} ingress`, 'run `podnet-bpf status`; re-add the endpoint or attach again')
      }
      const progDevice = entry.key === 'fromNetdev' ? s.config.device : entry.device
      program = { name: Programs[entry.key!].program, id, device: progDevice, hook: 'ingress' }
      const runIfindex = entry.key === 'fromNetdev' ? s.deviceIfindex : entry.ifindex
      const d = runExplain(id, runIfindex, buildPacket({ ...packet, dport, srcMac: entry.srcMac, dstMac: entry.dstMac }), entry.tunnel)
      verdict = VERDICTS[d.verdict] ?? String(d.verdict)
      reason = d.reason
      if (entry.tunnel) notes.push(`as received from node ${entry.tunnel.remote} with VNI ${entry.tunnel.vni} (the tunnel key is passed in explain mode)`)
      switch (reason) {
        case Reason.FWD_LOCAL:
          Object.assign(to, { pod: dst, device: s.endpoints[dst]?.ifname ?? ifLabel(d.target), ifindex: d.target })
          break
        case Reason.FWD_DIRECT:
          Object.assign(to, { device: ifLabel(d.target), ifindex: d.target, nodeIp: d.nodeIp })
          break
        case Reason.FWD_VXLAN:
          Object.assign(to, { device: VXLAN_DEV, ifindex: d.target, nodeIp: d.nodeIp, vni: d.vni })
          break
        case Reason.FWD_STACK_TTL:
        case Reason.FWD_STACK_MTU:
          if (d.nodeIp !== '0.0.0.0') to.nodeIp = d.nodeIp
          break
      }
    }

    const label = reasonLabel(reason)
    const outcome = outcomeOf(reason)
    let summary: string
    switch (reason) {
      case Reason.FWD_LOCAL:
        summary = `delivered to pod ${dst} on veth ${to.device} (ifindex ${to.ifindex})`
        break
      case Reason.FWD_DIRECT:
        summary = `routed directly to node ${to.nodeIp} via ${to.device}`
        break
      case Reason.FWD_VXLAN:
      case Reason.FWD_ENCAP_STACK:
        summary = `encapsulated to node ${to.nodeIp} (VNI ${to.vni}) via ${VXLAN_DEV}`
        break
      case Reason.FWD_STACK_TTL:
        summary = 'passed to the host stack: TTL ≤ 1 (it answers ICMP time exceeded)'
        break
      case Reason.FWD_STACK_MTU:
        summary = `passed to the host stack: larger than the path MTU${to.nodeIp ? ` to node ${to.nodeIp}` : ''} (it answers ICMP fragmentation needed)`
        break
      default:
        if (outcome === 'drop') summary = `dropped: ${label}`
        else if (entry.hook === 'host' && to.device) summary = to.pod ? `sent by the host stack to pod ${dst} on veth ${to.device}` : `routed by the host stack to node ${to.nodeIp} via ${to.device}`
        else summary = 'passed to the host stack'
    }
    return {
      packet,
      entry: { hook: entry.hook, device: entry.device, ifindex: entry.ifindex, why: entry.why },
      program,
      verdict,
      reason: label,
      reasonCode: reason,
      outcome,
      to,
      summary,
      notes,
    }
  } finally {
    maps.close()
  }
}
