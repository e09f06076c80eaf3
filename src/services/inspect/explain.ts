// explain: which way would a packet from SRC to DST go on this node? Builds
// the packet, picks the hook it would enter on, and runs it through the
// program live on that hook (BPF_PROG_TEST_RUN on its program id, against the
// live maps) in explain mode: the program writes its decision into cb[] and
// touches no counters and no events. A packet from a VXLAN peer arrives on the
// node device inside a VXLAN frame: from_netdev decapsulates it, or passes it
// to the kernel's VXLAN device, whose from_overlay then decides (two steps).
import { isBpfError } from '../../errors.js'
import { ifNameToIndex, testRunProgram } from '../../datapath/kernel.js'
import { UserError } from '../../errors.js'
import { explainCodec, Programs, Reason, TcAct, isDrop, type ExplainDecision, type ProgramKey } from '../../datapath/abi.js'
import { DatapathMaps } from '../../datapath/maps.js'
import { VXLAN_DEV, VXLAN_OVERHEAD, getLinkByName } from '../../datapath/netdev.js'
import { podHook, queryProgram, type Hook, type HookPoint } from '../../datapath/tc.js'
import { cidrContains, parseCidr, parseIPv4 } from '../../util/ipv4.js'
import { withNode } from '../node.js'
import type { NodeState } from '../state.js'
import { ifLabel, reasonLabel } from './common.js'
import { buildPacket, buildVxlanFrame, EXPLAIN_SPORT, EXPLAIN_VXLAN_SPORT, l4HeaderLen, type Proto } from './packet.js'

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
type ProgramHook = 'from-pod' | 'from-netdev' | 'from-overlay' | 'to-overlay'
type HookName = ProgramHook | 'host'
type ProgramRef = { name: string; id: number; device: string; hook: HookPoint }

/** One program the packet went through. */
export interface ExplainStep {
  hook: ProgramHook
  device: string
  ifindex: number
  program: ProgramRef
  /** what the program was given: the packet itself, or the VXLAN frame carrying it */
  frame: 'packet' | 'vxlan'
  verdict: string
  reason: string
  reasonCode: number
}

export interface Explanation {
  packet: {
    src: string
    dst: string
    proto: Proto
    sport: number | null
    dport: number | null
    ipLen: number
    ttl: number
    /** The VXLAN frame carrying the packet, when it arrives from a VXLAN peer (outer headers). */
    outer?: { src: string; dst: string; sport: number; dport: number; vni: number; frameLen: number }
  }
  /** Where the packet enters the datapath, and why that hook. */
  entry: { hook: HookName; device: string; ifindex: number; why: string }
  /** The live program whose decision this is, the last of `steps` (null: no podnet program on this path). */
  program: ProgramRef | null
  verdict: string | null
  reason: string
  reasonCode: number
  outcome: Outcome
  to: { pod: string | null; device: string | null; ifindex: number | null; nodeIp: string | null; vni: number | null }
  summary: string
  notes: string[]
  /** Every program run, in the order the packet meets them (the last one decides): one, or for a
   * VXLAN arrival that from_netdev passes on, from_netdev then from_overlay. Empty on the host path
   * when no program runs. */
  steps: ExplainStep[]
}

const VERDICTS: Record<number, string> = {
  [-1]: 'TC_ACT_UNSPEC',
  ...Object.fromEntries(Object.entries(TcAct).map(([k, v]) => [v, `TC_ACT_${k}`])),
}
const verdictLabel = (v: number) => VERDICTS[v] ?? String(v)

type Decision = ExplainDecision

/** Runs `data` through the program with this id, in explain mode, as if it arrived on `ifindex`.
 * tunnel: the key a packet received by the VXLAN device would carry (from_overlay). */
function runExplain(progId: number, ifindex: number, data: Buffer, tunnel?: { remote: string; vni: number }): Decision {
  const ctx = explainCodec.encodeCtx({ ifindex, explain: true, tunnel })
  try {
    const r = testRunProgram(progId, { data, ctx, repeat: 1, dataSizeOut: data.length + 256 })
    const d = explainCodec.decodeDecision(r.retval, r.ctx!)
    if (!d.answered) {
      throw new Error(
        `program ${progId} did not answer in explain mode (cb[0]=${explainCodec.cbWords(r.ctx!)[0]}, retval ${r.retval}): is it a podnet-bpf build with explain support?`,
      )
    }
    return d
  } catch (e) {
    if (isBpfError(e, 'ENODEV')) {
      throw new UserError(
        `device ifindex ${ifindex} does not exist in this network namespace`,
        "run explain in the node's network namespace (nsenter --net=/run/netns/NODE podnet-bpf explain …)",
      )
    }
    throw e
  }
}

/** Runs `data` through the program live on `tcHook`, as if it arrived on (or left) `device`. */
function runStep(
  key: ProgramKey,
  tcHook: Hook,
  hook: ProgramHook,
  device: string,
  data: Buffer,
  frame: ExplainStep['frame'],
  tunnel?: { remote: string; vni: number },
): { step: ExplainStep; d: Decision } {
  const id = queryProgram(tcHook)
  if (id === null) {
    throw new UserError(
      `no podnet program on ${device} ${tcHook.point}`,
      key === 'fromPod'
        ? 'run `podnet-bpf status`; re-add the endpoint or attach again'
        : 'the datapath is not fully attached: run `podnet-bpf status`, then attach again',
    )
  }
  const d = runExplain(id, tcHook.ifindex, data, tunnel)
  const program: ProgramRef = { name: Programs[key].program, id, device, hook: tcHook.point }
  return {
    step: {
      hook,
      device,
      ifindex: tcHook.ifindex,
      program,
      frame,
      verdict: verdictLabel(d.verdict),
      reason: reasonLabel(d.reason),
      reasonCode: d.reason,
    },
    d,
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
  /** from_overlay run directly (--ingress podnet_vxlan): the tunnel key */
  tunnel?: { remote: string; vni: number }
  /** from_netdev given the VXLAN frame peer node `remote` sends */
  vxlan?: { remote: string }
}

const ANY_MAC = '02:00:00:00:00:01'
/** the inner Ethernet header of a VXLAN frame: the sending pod's MAC → its host veth's, on the peer */
const PEER_POD_MAC = '02:00:00:00:00:02'
const PEER_VETH_MAC = '02:00:00:00:00:03'

function macOf(ifname: string): string {
  return getLinkByName(ifname)?.mac ?? ANY_MAC
}

function podEntry(s: NodeState, maps: DatapathMaps, ip: string, why: string): Entry {
  const ep = maps.endpoints.get(ip)!
  const ifname = s.endpoints[ip]?.ifname ?? ifLabel(ep.ifindex)
  return {
    hook: 'from-pod',
    key: 'fromPod',
    tcHook: podHook({ ifindex: ep.ifindex, device: s.endpoints[ip]?.device }),
    device: ifname,
    ifindex: ep.ifindex,
    srcMac: ep.podMac,
    dstMac: ep.hostMac,
    why,
  }
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

/** A VXLAN frame from peer node `remote` on the node device (from_netdev decapsulates it). */
function vxlanEntry(s: NodeState, why: string, remote: string): Entry {
  return { ...netdevEntry(s, why), vxlan: { remote } }
}

/** Decapsulated by podnet_vxlan, as sent by peer node `remote` (--ingress podnet_vxlan). */
function overlayEntry(s: NodeState, why: string, remote: string): Entry {
  if (!s.vxlan)
    throw new UserError(
      `this node has no ${VXLAN_DEV} (mode ${s.config.mode}), so nothing arrives through the overlay`,
      'explain a packet arriving on the node device instead',
    )
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

/** The hook the packet enters on: the one --ingress names, else the one its source address implies. */
function chooseEntry(s: NodeState, maps: DatapathMaps, src: string, dst: string, ingress?: string): Entry {
  return ingress !== undefined ? entryByIngress(s, maps, src, dst, ingress) : entryBySource(s, maps, src, dst)
}

function entryByIngress(s: NodeState, maps: DatapathMaps, src: string, dst: string, ingress: string): Entry {
  const ownCidr = parseCidr(s.config.podCidr)
  let ifindex: number
  try {
    ifindex = ifNameToIndex(ingress)
  } catch {
    throw new UserError(
      `interface "${ingress}" not found in this network namespace`,
      "pass a pod's host veth, the node device or podnet_vxlan, and run in the node's namespace",
    )
  }
  if (ingress === s.config.device) {
    const e = netdevEntry(s, `arrives on ${ingress} (--ingress)`)
    const peer = vxlanPeerOf(maps, src)
    if (peer && cidrContains(ownCidr, dst))
      e.why += `, unencapsulated (node ${peer.nodeIp} would send it as VXLAN: leave out --ingress to explain that)`
    return e
  }
  if (s.vxlan && ifindex === s.vxlan.ifindex) {
    const r = routeFor(maps, src) ?? vxlanPeerOf(maps, src, null)
    return overlayEntry(s, `arrives through the overlay (--ingress ${ingress})${r ? ` from node ${r.nodeIp}` : ''}`, r?.nodeIp ?? '0.0.0.0')
  }
  const owner = [...maps.endpoints.entries()].find((e) => e.ifindex === ifindex)
  if (!owner)
    throw new UserError(`${ingress} is not a pod veth, ${s.config.device} or ${VXLAN_DEV} of this node`, 'see `podnet-bpf endpoints list`')
  return podEntry(s, maps, owner.ip, `sent by pod ${owner.ip} on ${ingress} (--ingress)`)
}

function entryBySource(s: NodeState, maps: DatapathMaps, src: string, dst: string): Entry {
  const ownCidr = parseCidr(s.config.podCidr)
  if (maps.endpoints.get(src))
    return podEntry(
      s,
      maps,
      src,
      `${src} is a local pod: it enters from_pod on its host ${s.endpoints[src]?.device === 'netkit' ? 'netkit device (peer hook)' : 'veth'}`,
    )
  if (src === s.config.nodeIp) {
    return {
      hook: 'host',
      key: null,
      tcHook: null,
      device: s.config.device,
      ifindex: 0,
      srcMac: ANY_MAC,
      dstMac: ANY_MAC,
      why: `${src} is this node: the host stack routes it`,
    }
  }
  if (cidrContains(ownCidr, src)) {
    throw new UserError(
      `${src} is in this node's pod CIDR ${s.config.podCidr} but is not an endpoint, so no veth sends it`,
      'pass --ingress VETH to say which pod sends it (e.g. to check spoofing)',
    )
  }
  const r = routeFor(maps, src)
  const dev = s.config.device
  if (r?.vxlan) {
    // the peer's from_pod encapsulates only what its route for our pod CIDR covers
    if (cidrContains(ownCidr, dst)) {
      return vxlanEntry(
        s,
        `${src} is a pod of node ${r.nodeIp} (VXLAN route ${r.cidr}): it arrives on ${dev} as a VXLAN frame from ${r.nodeIp}`,
        r.nodeIp,
      )
    }
    return netdevEntry(
      s,
      `${src} is a pod of node ${r.nodeIp} (VXLAN route ${r.cidr}), but ${dst} is outside this node's pod CIDR: node ${r.nodeIp} routes it unencapsulated, so it arrives on ${dev} as it is`,
    )
  }
  if (r) return netdevEntry(s, `${src} is a pod of node ${r.nodeIp} (direct route ${r.cidr}): it arrives on ${dev}`)
  const peer = vxlanPeerOf(maps, src, r)
  if (peer && cidrContains(ownCidr, dst)) {
    return vxlanEntry(
      s,
      `${src} is the node of VXLAN route ${peer.cidr}: its packets to this node's pods arrive on ${dev} as VXLAN frames`,
      src,
    )
  }
  return netdevEntry(s, `${src} is not a pod here: it arrives on ${dev}`)
}

/** The VXLAN peer node that sends `src`'s packets: the node of a VXLAN route covering `src`, or `src` itself if it is the node IP of a VXLAN route.
 * `r`: routeFor(maps, src), when the caller has it already. */
function vxlanPeerOf(maps: DatapathMaps, src: string, r = routeFor(maps, src)): { cidr: string; nodeIp: string } | null {
  if (r) return r.vxlan ? r : null
  const own = maps.routes.list().find((x) => x.nodeIp === src && x.vxlan)
  return own ? { cidr: own.cidr, nodeIp: src } : null
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

/** Why from_netdev leaves a VXLAN frame for a pod address to the kernel (what pn_handle_vxlan checks). */
function passedWhy(maps: DatapathMaps, dst: string): string {
  if (!maps.endpoints.get(dst)) return `${dst} is not a local pod`
  return 'it does not decapsulate this frame'
}

function outcomeOf(reason: number): Outcome {
  if (isDrop(reason)) return 'drop'
  switch (reason) {
    case Reason.FWD_LOCAL:
    case Reason.FWD_DECAP:
      return 'local'
    case Reason.FWD_DIRECT:
      return 'direct'
    case Reason.FWD_VXLAN:
    case Reason.FWD_ENCAP_STACK:
    case Reason.FWD_STACK_ENCAP:
      return 'vxlan'
    default:
      return 'stack'
  }
}

interface PacketSpec {
  packet: Explanation['packet']
  dport: number
}

/** Checks the flags and describes the packet to build (no side effects). */
function packetSpec(input: ExplainInput): PacketSpec {
  const src = parseIPv4(input.src, 'source IP')
  const dst = parseIPv4(input.dst, 'destination IP')
  const proto = input.proto ?? 'icmp'
  if (input.dport !== undefined && proto === 'icmp') throw new UserError('--dport needs --proto tcp or udp', 'add --proto tcp (or udp)')
  const dport = input.dport ?? 80
  if (dport < 1 || dport > 65535) throw new UserError(`--dport ${dport} is not a port`, 'use 1..65535')
  const minLen = 20 + l4HeaderLen(proto)
  const ipLen = input.size ?? minLen + 56
  if (ipLen < minLen || ipLen > 65535)
    throw new UserError(`--size ${ipLen} is not a valid IPv4 length for ${proto}`, `use ${minLen}..65535`)
  const ttl = input.ttl ?? 64
  if (ttl < 0 || ttl > 255) throw new UserError(`--ttl ${ttl} is out of range`, 'use 0..255')
  const sport = proto === 'icmp' ? null : EXPLAIN_SPORT
  return { packet: { src, dst, proto, sport, dport: proto === 'icmp' ? null : dport, ipLen, ttl }, dport }
}

/** What running the path gave: the programs run, the deciding reason and where the packet goes. */
interface PathResult {
  steps: ExplainStep[]
  reason: number
  to: Explanation['to']
  notes: string[]
}

const nowhere = (): Explanation['to'] => ({ pod: null, device: null, ifindex: null, nodeIp: null, vni: null })

/** explain: choose the entry hook, run the path from there, summarize. */
export function explain(input: ExplainInput): Explanation {
  const spec = packetSpec(input)
  return withNode(input.pinDir, ({ state: s, maps }) => {
    const entry = chooseEntry(s, maps, spec.packet.src, spec.packet.dst, input.ingress)
    const run = entry.hook === 'host' ? runHostPath(s, maps, entry, spec) : runProgramPath(s, maps, entry, spec)
    const last = run.steps.at(-1)
    const kind = s.endpoints[spec.packet.dst]?.device ?? 'veth' // of the target pod's host-side device (unknown to state: say veth)
    return {
      packet: spec.packet,
      entry: { hook: entry.hook, device: entry.device, ifindex: entry.ifindex, why: entry.why },
      program: last?.program ?? null,
      verdict: last?.verdict ?? null,
      reason: reasonLabel(run.reason),
      reasonCode: run.reason,
      outcome: outcomeOf(run.reason),
      to: run.to,
      summary: summarize({ reason: run.reason, to: run.to, dst: spec.packet.dst, kind, hostPath: entry.hook === 'host' }),
      notes: run.notes,
      steps: run.steps,
    }
  })
}

/** Node-originated: the kernel's routes decide; only VXLAN egress runs a program. */
function runHostPath(s: NodeState, maps: DatapathMaps, entry: Entry, { packet, dport }: PacketSpec): PathResult {
  const dst = packet.dst
  const to = nowhere()
  const ep = maps.endpoints.get(dst)
  const rt = ep ? null : routeFor(maps, dst)
  if (rt?.vxlan && s.vxlan) {
    const data = buildPacket({ ...packet, dport, srcMac: macOf(VXLAN_DEV), dstMac: ANY_MAC })
    const { step, d } = runStep('toOverlay', { ifindex: s.vxlan.ifindex, point: 'egress' }, 'to-overlay', VXLAN_DEV, data, 'packet')
    Object.assign(entry, { hook: 'to-overlay', device: VXLAN_DEV, ifindex: s.vxlan.ifindex })
    entry.why += `: its route for ${rt.cidr} is ${VXLAN_DEV}, whose egress runs to_overlay`
    Object.assign(to, { device: VXLAN_DEV, ifindex: d.target || s.vxlan.ifindex, nodeIp: d.nodeIp, vni: d.vni })
    const notes =
      d.reason === Reason.FWD_ENCAP_STACK
        ? [
            `the kernel's VXLAN device encapsulates it (UDP ${s.config.vxlanPort}) and sends it out ${s.config.device} to node ${d.nodeIp}, whose ${Programs.fromNetdev.program} decapsulates it for its pod`,
          ]
        : []
    return { steps: [step], reason: d.reason, to, notes }
  }
  if (ep) {
    Object.assign(to, { pod: dst, device: s.endpoints[dst]?.ifname ?? ifLabel(ep.ifindex), ifindex: ep.ifindex })
    return {
      steps: [],
      reason: Reason.FWD_STACK,
      to,
      notes: [`the kernel route ${dst}/32 dev ${to.device} delivers it; no podnet program runs on this path`],
    }
  }
  if (rt) {
    Object.assign(to, { device: s.config.device, ifindex: s.deviceIfindex, nodeIp: rt.nodeIp })
    const note = `the kernel route ${rt.cidr} via ${rt.nodeIp} dev ${s.config.device} sends it; no podnet program runs on this path`
    return { steps: [], reason: Reason.FWD_STACK, to, notes: [note] }
  }
  return { steps: [], reason: Reason.FWD_STACK, to, notes: ['not a pod address podnet-bpf routes: the host stack decides'] }
}

/** A packet entering a podnet hook: run that program (and from_overlay after a from_netdev that passes a VXLAN frame on). */
function runProgramPath(s: NodeState, maps: DatapathMaps, entry: Entry, { packet, dport }: PacketSpec): PathResult {
  const key = entry.key!
  const hook = entry.hook as ProgramHook
  const notes: string[] = []
  // the frame as the peer's from_pod leaves it: the pod's own Ethernet header inside
  const macs = entry.vxlan ? { srcMac: PEER_POD_MAC, dstMac: PEER_VETH_MAC } : { srcMac: entry.srcMac, dstMac: entry.dstMac }
  const inner = buildPacket({ ...packet, dport, ...macs })
  let first: ReturnType<typeof runStep>
  if (entry.vxlan) {
    const frame = vxlanFrameFrom(s, entry.vxlan.remote, packet, inner, entry, notes)
    first = runStep(key, entry.tcHook!, hook, entry.device, frame, 'vxlan')
  } else {
    first = runStep(key, entry.tcHook!, hook, entry.device, inner, 'packet', entry.tunnel)
    if (entry.tunnel)
      notes.push(`as received from node ${entry.tunnel.remote} with VNI ${entry.tunnel.vni} (the tunnel key is passed in explain mode)`)
  }
  const steps = [first.step]
  let d = first.d
  if (entry.vxlan && d.verdict === TcAct.OK && d.reason === Reason.FWD_PASS) {
    const second = runKernelDecap(s, maps, entry.vxlan.remote, packet.dst, inner, notes)
    if (second) {
      steps.push(second.step)
      d = second.d
    }
  }
  return { steps, reason: d.reason, to: destinationOf(s, packet.dst, d), notes }
}

/** The VXLAN frame peer node `remote` sends for `inner`; records its outer headers on `packet`. */
function vxlanFrameFrom(s: NodeState, remote: string, packet: Explanation['packet'], inner: Buffer, entry: Entry, notes: string[]): Buffer {
  if (packet.ipLen + VXLAN_OVERHEAD > 65535)
    throw new UserError(`--size ${packet.ipLen} does not fit in a VXLAN frame`, `use at most ${65535 - VXLAN_OVERHEAD}`)
  const outer = { src: remote, dst: s.config.nodeIp, sport: EXPLAIN_VXLAN_SPORT, dport: s.config.vxlanPort, vni: s.config.vni }
  const frame = buildVxlanFrame({ ...outer, srcMac: entry.srcMac, dstMac: entry.dstMac }, inner)
  packet.outer = { ...outer, frameLen: frame.length }
  notes.push(
    `sent by node ${remote} as VXLAN: ${remote}:${outer.sport} > ${outer.dst}:${outer.dport} udp, VNI ${outer.vni}, ${frame.length}-byte frame`,
  )
  return frame
}

/** from_netdev left the frame untouched: the kernel's VXLAN device receives it, decapsulates it and runs from_overlay. */
function runKernelDecap(
  s: NodeState,
  maps: DatapathMaps,
  remote: string,
  dst: string,
  inner: Buffer,
  notes: string[],
): ReturnType<typeof runStep> | null {
  notes.push(`${Programs.fromNetdev.program} left it to the kernel VXLAN device: ${passedWhy(maps, dst)}`)
  if (!s.vxlan) {
    notes.push(`this node has no ${VXLAN_DEV} (mode ${s.config.mode}): the host stack gets the UDP datagram to port ${s.config.vxlanPort}`)
    return null
  }
  const tunnel = { remote, vni: s.config.vni }
  const hook: Hook = { ifindex: s.vxlan.ifindex, point: 'ingress' }
  const second = runStep('fromOverlay', hook, 'from-overlay', VXLAN_DEV, inner, 'packet', tunnel)
  notes.push(
    `${VXLAN_DEV} decapsulates it; ${Programs.fromOverlay.program} runs as received from node ${remote} with VNI ${tunnel.vni} (the tunnel key is passed in explain mode)`,
  )
  return second
}

/** Where the program's decision sends the packet. */
function destinationOf(s: NodeState, dst: string, d: Decision): Explanation['to'] {
  const to = nowhere()
  const podDevice = () => s.endpoints[dst]?.ifname ?? ifLabel(d.target)
  switch (d.reason) {
    case Reason.FWD_LOCAL:
      return { ...to, pod: dst, device: podDevice(), ifindex: d.target }
    case Reason.FWD_DECAP:
      return { ...to, pod: dst, device: podDevice(), ifindex: d.target, nodeIp: d.nodeIp, vni: d.vni }
    case Reason.FWD_DIRECT:
      return { ...to, device: ifLabel(d.target), ifindex: d.target, nodeIp: d.nodeIp }
    case Reason.FWD_VXLAN:
      return { ...to, device: ifLabel(d.target), ifindex: d.target, nodeIp: d.nodeIp, vni: d.vni }
    case Reason.FWD_STACK_ENCAP:
      return { ...to, device: VXLAN_DEV, nodeIp: d.nodeIp }
    case Reason.FWD_STACK_TTL:
    case Reason.FWD_STACK_MTU:
      return d.nodeIp !== '0.0.0.0' ? { ...to, nodeIp: d.nodeIp } : to
    default:
      return to
  }
}

export interface SummaryInput {
  reason: number
  to: Explanation['to']
  dst: string
  /** the target pod's host-side device kind */
  kind: 'veth' | 'netkit'
  /** node-originated (the host stack routes it) */
  hostPath: boolean
}

/** One sentence for an explanation: pure, from the deciding reason and the destination. */
export function summarize({ reason, to, dst, kind, hostPath }: SummaryInput): string {
  switch (reason) {
    case Reason.FWD_LOCAL:
      return `delivered to pod ${dst} on ${kind} ${to.device} (ifindex ${to.ifindex})`
    case Reason.FWD_DIRECT:
      return `routed directly to node ${to.nodeIp} via ${to.device}`
    case Reason.FWD_DECAP:
      return `decapsulated (VXLAN from node ${to.nodeIp}, VNI ${to.vni}) and delivered to pod ${dst} on ${kind} ${to.device} (ifindex ${to.ifindex})`
    case Reason.FWD_VXLAN:
      return `encapsulated to node ${to.nodeIp} (VNI ${to.vni}) and sent via ${to.device}`
    case Reason.FWD_ENCAP_STACK:
      return `encapsulated to node ${to.nodeIp} (VNI ${to.vni}) via ${VXLAN_DEV}`
    case Reason.FWD_STACK_ENCAP:
      return `passed to the host stack, which encapsulates it to node ${to.nodeIp} via ${VXLAN_DEV}`
    case Reason.FWD_STACK_TTL:
      return 'passed to the host stack: TTL ≤ 1 (it answers ICMP time exceeded)'
    case Reason.FWD_STACK_MTU:
      return `passed to the host stack: larger than the path MTU${to.nodeIp ? ` to node ${to.nodeIp}` : ''} (it answers ICMP fragmentation needed)`
  }
  if (outcomeOf(reason) === 'drop') return `dropped: ${reasonLabel(reason)}`
  if (hostPath && to.device)
    return to.pod
      ? `sent by the host stack to pod ${dst} on ${kind} ${to.device}`
      : `routed by the host stack to node ${to.nodeIp} via ${to.device}`
  return 'passed to the host stack'
}
