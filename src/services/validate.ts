// Checks that refuse operator input which would damage a node, as pure
// functions over what the caller read (addresses, routes, links, file
// descriptors): each throws a UserError naming the problem and the fix, and
// none changes anything. The services call them before their first write.
import { closeSync, fstatSync, openSync, readSync, constants as fsc } from 'node:fs'
import { parseDocument } from 'yaml'
import { UserError } from '../errors.js'
import { type Cidr, cidrContains, cidrString, cidrsOverlap, intToIp, ipToInt, parseCidr } from '../util/ipv4.js'

/** Address blocks that can be neither a node's underlay address nor pod space. */
const SPECIAL: readonly { cidr: Cidr; what: string }[] = [
  ['0.0.0.0/8', 'an unspecified ("this network") address'],
  ['127.0.0.0/8', 'a loopback address'],
  ['224.0.0.0/4', 'a multicast address'],
  ['240.0.0.0/4', 'a reserved (class E) or broadcast address'],
].map(([c, what]) => ({ cidr: parseCidr(c!), what: what! }))

/** Why `ip` cannot be a unicast host address, or null. */
export function specialAddress(ip: string): string | null {
  if (ip === '255.255.255.255') return 'the limited broadcast address'
  return SPECIAL.find((s) => cidrContains(s.cidr, ip))?.what ?? null
}

/** A prefix's network and broadcast addresses (none for /31 and /32). */
export function networkAndBroadcast(c: Cidr): string[] {
  if (c.len >= 31) return []
  return [intToIp(c.net), intToIp((c.net + 2 ** (32 - c.len) - 1) >>> 0)]
}

export interface NodeAddressing {
  nodeIp: string
  podCidr: string
  device: string
}

/** --node-ip, --pod-cidr and --device on their own (before looking at the
 * node); `vxlanName` is podnet's own overlay device, never a node NIC. */
export function checkNodeAddressing(cfg: NodeAddressing, vxlanName: string): void {
  const bad = specialAddress(cfg.nodeIp)
  if (bad) throw new UserError(`node IP ${cfg.nodeIp} is ${bad}`, "pass the node's unicast underlay address with --node-ip")
  const pod = parseCidr(cfg.podCidr, 'pod CIDR')
  if (cidrContains(pod, cfg.nodeIp)) {
    throw new UserError(
      `node IP ${cfg.nodeIp} is inside the pod CIDR ${cfg.podCidr}`,
      "pass the node's underlay address with --node-ip and a pod CIDR that does not contain it",
    )
  }
  for (const s of SPECIAL) {
    if (cidrsOverlap(pod, s.cidr)) {
      throw new UserError(
        `pod CIDR ${cfg.podCidr} overlaps ${cidrString(s.cidr)} (${s.what.replace(/^an? /, '')} block)`,
        'use a private range such as 10.244.1.0/24',
      )
    }
  }
  if (pod.len > 30) throw new UserError(`pod CIDR ${cfg.podCidr} has no room for pods`, 'use a prefix of /30 or shorter, e.g. /24')
  const notNic = cfg.device === 'lo' ? 'the loopback device' : cfg.device === vxlanName ? "podnet-bpf's own VXLAN device" : null
  if (notNic) throw new UserError(`--device ${cfg.device} is ${notNic}`, 'pass the node NIC that carries the underlay (see `ip link`)')
}

/** A kernel route as `ip -N -j route show table main` prints it. */
export interface MainRoute {
  dst: string
  dev?: string
  gateway?: string
  /** numeric protocol (ip -N); absent for boot (3) routes */
  protocol?: string
  type?: string
}

/** CIDR of a route's dst ("default", a bare address = /32). */
export function routeDst(r: Pick<MainRoute, 'dst'>): Cidr {
  if (r.dst === 'default') return parseCidr('0.0.0.0/0')
  return parseCidr(r.dst.includes('/') ? r.dst : `${r.dst}/32`)
}

/** Routes podnet did not install (any protocol but `ours`). */
export function foreignRoutes(routes: readonly MainRoute[], ours: number): MainRoute[] {
  return routes.filter((r) => r.protocol !== String(ours))
}

/** A pod CIDR must not take over addresses the node already routes elsewhere
 * (the default route aside: every pod CIDR is inside it). */
export function checkPodCidrFree(
  podCidr: string,
  foreign: readonly MainRoute[],
  peerRoutes: readonly { cidr: string; nodeIp: string }[],
): void {
  const pod = parseCidr(podCidr, 'pod CIDR')
  for (const r of foreign) {
    if (r.dst === 'default') continue
    if (cidrsOverlap(pod, routeDst(r))) {
      throw new UserError(
        `pod CIDR ${podCidr} overlaps the existing route ${r.dst}${r.dev ? ` dev ${r.dev}` : ''}${r.gateway ? ` via ${r.gateway}` : ''}`,
        'pick a pod CIDR no route of this node uses (see `ip route`)',
      )
    }
  }
  for (const r of peerRoutes) {
    if (cidrsOverlap(pod, parseCidr(r.cidr))) {
      throw new UserError(
        `pod CIDR ${podCidr} overlaps the peer route ${r.cidr} (node ${r.nodeIp})`,
        `delete that route first (podnet-bpf routes del ${r.cidr}) or pick another pod CIDR`,
      )
    }
  }
}

/** The node IP must not be a pod's address anywhere in the cluster. */
export function checkNodeIpNotPod(nodeIp: string, peerRoutes: readonly { cidr: string }[]): void {
  for (const r of peerRoutes) {
    if (cidrContains(parseCidr(r.cidr), nodeIp)) {
      throw new UserError(
        `node IP ${nodeIp} is a pod address of the peer route ${r.cidr}`,
        "pass the node's underlay address with --node-ip",
      )
    }
  }
}

/** A peer's pod CIDR may not cover the node's own network. */
export function checkPeerRoute(route: Cidr, peerIp: string, node: { nodeIp: string; subnets: readonly Cidr[] }): void {
  const cidr = cidrString(route)
  const bad = specialAddress(peerIp)
  if (bad) throw new UserError(`node IP ${peerIp} for route ${cidr} is ${bad}`, "pass the peer node's unicast underlay address")
  if (cidrContains(route, node.nodeIp)) {
    throw new UserError(
      `route ${cidr} contains this node's IP ${node.nodeIp}`,
      "a route is for a peer's pod CIDR, which holds no node address",
    )
  }
  if (cidrContains(route, peerIp)) {
    throw new UserError(`route ${cidr} contains its own node IP ${peerIp}`, "the peer's underlay address cannot be one of its pods")
  }
  for (const s of node.subnets) {
    if (cidrsOverlap(route, s)) {
      throw new UserError(
        `route ${cidr} overlaps the node device's subnet ${cidrString(s)}`,
        "a route is for a peer's pod CIDR, not for the underlay network",
      )
    }
  }
  for (const s of SPECIAL) {
    if (cidrsOverlap(route, s.cidr)) {
      throw new UserError(
        `route ${cidr} overlaps ${cidrString(s.cidr)} (${s.what.replace(/^an? /, '')} block)`,
        'use the peer node pod CIDR',
      )
    }
  }
}

/** Kernel route replace (NLM_F_REPLACE) takes over a route with the same
 * destination whoever installed it: refuse destinations another owner uses. */
export function checkNoForeignRoute(dsts: readonly string[], foreign: readonly MainRoute[]): void {
  if (!dsts.length || !foreign.length) return
  const taken = new Map(foreign.map((r) => [cidrString(routeDst(r)), r]))
  for (const d of dsts) {
    const c = cidrString(parseCidr(d.includes('/') ? d : `${d}/32`))
    const r = taken.get(c)
    if (r) {
      throw new UserError(
        `the kernel already has a route for ${c}${r.dev ? ` (dev ${r.dev}${r.gateway ? ` via ${r.gateway}` : ''})` : ''} that podnet-bpf did not install`,
        `remove it yourself if it is stale (ip route del ${c}), or use another CIDR`,
      )
    }
  }
}

export interface LinkFacts {
  name: string
  ifindex: number
  kind: string | null
}

/** Devices podnet runs its own programs on, which an endpoint may never claim. */
export interface NodeDevices {
  device: string
  deviceIfindex: number
  vxlanIfindex: number | null
  vxlanName: string
}

/** An endpoint's host device: a veth or netkit, and none of the node's own. */
export function checkEndpointDevice(link: LinkFacts, node: NodeDevices): void {
  const own =
    link.name === 'lo' || link.ifindex === 1
      ? 'the loopback device'
      : link.ifindex === node.deviceIfindex || link.name === node.device
        ? 'the node device'
        : link.ifindex === node.vxlanIfindex || link.name === node.vxlanName
          ? "podnet-bpf's VXLAN device"
          : null
  if (own) throw new UserError(`${link.name} is ${own}, not a pod device`, "pass the host side of the pod's veth or netkit pair")
  if (link.kind !== 'veth' && link.kind !== 'netkit') {
    throw new UserError(
      `${link.name} is ${link.kind ? `a ${link.kind}` : 'not a veth or netkit'} device`,
      "pass the host side of the pod's veth or netkit pair",
    )
  }
}

/** A pod address is a usable host address of the pod CIDR. */
export function checkEndpointIp(ip: string, podCidr: string): void {
  const c = parseCidr(podCidr)
  if (!cidrContains(c, ip)) {
    throw new UserError(`endpoint IP ${ip} is outside this node's pod CIDR ${podCidr}`, 'use an address from the pod CIDR passed to attach')
  }
  const [net, bcast] = networkAndBroadcast(c)
  if (ip === net || ip === bcast) {
    throw new UserError(
      `endpoint IP ${ip} is the ${ip === net ? 'network' : 'broadcast'} address of the pod CIDR ${podCidr}`,
      `use a host address between ${intToIp(ipToInt(net!) + 1)} and ${intToIp(ipToInt(bcast!) - 1)}`,
    )
  }
}

/** A map write that cannot fit is refused before the first entry is written. */
export function checkCapacity(what: string, wanted: number, capacity: number): void {
  if (wanted > capacity) {
    throw new UserError(
      `${wanted} ${what} do not fit: the map holds at most ${capacity}`,
      `split the cluster or use at most ${capacity} ${what}`,
    )
  }
}

export const CONFIG_MAX_BYTES = 64 * 1024
export const ROUTES_MAX_BYTES = 16 * 1024 * 1024

/** A regular file's text, read through one descriptor (no check-then-open
 * race) and never more than `maxBytes`: /dev/zero, a FIFO or a huge file is
 * refused instead of read until memory runs out. */
export function readBoundedFile(path: string, maxBytes: number, what: string, hint: string): string {
  let fd: number
  try {
    fd = openSync(path, fsc.O_RDONLY | fsc.O_NONBLOCK | fsc.O_NOCTTY)
  } catch (e) {
    throw new UserError(`cannot read ${what} ${path}: ${errText(e)}`, hint)
  }
  try {
    const st = fstatSync(fd)
    if (!st.isFile()) throw new UserError(`${what} ${path} is not a regular file`, hint)
    if (st.size > maxBytes) throw new UserError(`${what} ${path} is ${st.size} bytes, more than the ${maxBytes}-byte limit`, hint)
    const buf = Buffer.alloc(maxBytes + 1)
    let n = 0
    for (let r; n < buf.length && (r = readSync(fd, buf, n, buf.length - n, null)) > 0;) n += r
    if (n > maxBytes) throw new UserError(`${what} ${path} grew past the ${maxBytes}-byte limit while being read`, hint)
    const text = buf.subarray(0, n).toString('utf8')
    if (text.includes('\uFFFD') || text.includes('\0')) throw new UserError(`${what} ${path} is not UTF-8 text`, hint)
    return text
  } catch (e) {
    if (e instanceof UserError) throw e
    throw new UserError(`cannot read ${what} ${path}: ${errText(e)}`, hint)
  } finally {
    closeSync(fd)
  }
}

function errText(e: unknown): string {
  const err = e as NodeJS.ErrnoException
  const why: Record<string, string> = {
    ENOENT: 'no such file',
    EACCES: 'permission denied',
    EISDIR: 'it is a directory',
    ELOOP: 'too many symbolic links',
  }
  return (err.code && why[err.code]) ?? err.message.split('\n')[0]!
}

/** JSON (or YAML) text to a value; duplicate keys and syntax errors are
 * errors with a line number, never "the last one wins". JSON takes the fast
 * path (JSON.parse and one scan for duplicates: a 5,000-route file in a few
 * ms, where the YAML parser needs ~200). */
export function parseDataText(text: string, source: string, hint: string): unknown {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return parseYaml(text, source, hint)
  }
  const dup = jsonDuplicateKey(text)
  if (dup) throw new UserError(`${source}, line ${dup.line}: duplicate key "${dup.key}"`, hint)
  return json
}

function parseYaml(text: string, source: string, hint: string): unknown {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false, merge: false })
  const err = doc.errors[0]
  if (err) {
    const line = lineAt(text, err.pos[0])
    const msg = err.code === 'DUPLICATE_KEY' ? 'duplicate key' : err.message.split('\n')[0]!
    throw new UserError(`${source}, line ${line}: ${msg}`, hint)
  }
  return doc.toJS({ maxAliasCount: 0 }) as unknown
}

function lineAt(text: string, pos: number): number {
  let line = 1
  for (let i = 0; i < pos && i < text.length; i++) if (text.charCodeAt(i) === 10) line++
  return line
}

/** The first key repeated within one object of valid JSON text, or null. */
export function jsonDuplicateKey(text: string): { key: string; line: number } | null {
  const stack: (Set<string> | null)[] = []
  let line = 1
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 10) line++
    else if (c === 123 /* { */) stack.push(new Set())
    else if (c === 91 /* [ */) stack.push(null)
    else if (c === 125 /* } */ || c === 93 /* ] */) stack.pop()
    else if (c === 34 /* " */) {
      const start = i
      let escaped = false
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i)
        if (d === 92 /* \\ */) {
          escaped = true
          i++
        } else if (d === 34) break
      }
      const top = stack[stack.length - 1]
      if (!top) continue
      let j = i + 1
      while (j < text.length && /\s/.test(text[j]!)) j++
      if (text[j] !== ':') continue
      const raw = text.slice(start, i + 1)
      const key = escaped ? (JSON.parse(raw) as string) : raw.slice(1, -1)
      if (top.has(key)) return { key, line }
      top.add(key)
    }
  }
  return null
}

/** Pins under our names that are not our maps (see incompatiblePins). */
export function checkPinsCompatible(pinDir: string, bad: readonly string[]): void {
  if (bad.length) {
    throw new UserError(
      `pin dir ${pinDir} holds pins that are not podnet-bpf's maps: ${bad.join('; ')}`,
      'use another --pin-dir, or remove those pins if nothing uses them',
    )
  }
}

/** An attached node's pins must all be there: someone removed them otherwise. */
export function checkPinsPresent(pinDir: string, expected: readonly string[], present: ReadonlySet<string>): void {
  const missing = expected.filter((n) => !present.has(n))
  if (missing.length) {
    throw new UserError(
      `pin dir ${pinDir} lacks ${missing.join(', ')}: podnet-bpf's datapath pins were removed or this is not the pin dir attach used`,
      'run attach again to restore them (or detach to clean up what is left)',
    )
  }
}
