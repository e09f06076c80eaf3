// Kernel network objects podnet-bpf owns besides BPF: links (read over
// rtnetlink), the VXLAN device (created with iproute2), kernel routes
// (rtnetlink) and sysctls (/proc/sys). All act on the caller's network
// namespace (so this works under `nsenter --net=…`; /sys/class/net would not).
import { readFileSync, writeFileSync } from 'node:fs'
import { ifNameToIndex, routeOps, type RouteOp } from '../libbpf/index.js'
import { ipJson, run, tryRun } from '../util/exec.js'
import { UserError } from '../errors.js'

/** Kernel routes we install carry this protocol number, so they are ours to remove. */
export const ROUTE_PROTO = 112
export const VXLAN_DEV = 'podnet_vxlan'
export const VXLAN_OVERHEAD = 50

// Links are read over rtnetlink (src/libbpf/netlink.ts): one LinkInfo for every reader.
export { getLinkByName, listLinks, type LinkInfo } from '../libbpf/index.js'

export interface AddrInfo {
  local: string
  prefixlen: number
}
export function ipv4Addresses(dev: string): AddrInfo[] {
  const j = ipJson<{ addr_info?: { family: string; local: string; prefixlen: number }[] }[]>(['-4', 'addr', 'show', 'dev', dev])
  return (j[0]?.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => ({ local: a.local, prefixlen: a.prefixlen }))
}

/** The collect_md ("external") VXLAN device shared by all peers. */
export function createVxlan(port: number, mtu: number): void {
  run('ip', ['link', 'add', VXLAN_DEV, 'type', 'vxlan', 'external', 'dstport', String(port), 'nolearning'])
  // no IPv6 link-local chatter on the overlay: to_overlay would count it as a drop
  writeSysctl(`net/ipv6/conf/${VXLAN_DEV}/disable_ipv6`, '1', true)
  // no ARP: to_overlay picks the peer from the routes map, not a neighbour
  run('ip', ['link', 'set', 'dev', VXLAN_DEV, 'arp', 'off', 'mtu', String(mtu), 'up'])
}

export function setMtu(dev: string, mtu: number): void {
  run('ip', ['link', 'set', 'dev', dev, 'mtu', String(mtu)])
}

export function deleteLink(name: string): boolean {
  return tryRun('ip', ['link', 'del', 'dev', name]) !== null
}

export interface KernelRoute {
  dst: string
  dev: string
  gateway?: string
  prefsrc?: string
}

/** Every IPv4 route of the main table, protocols as numbers (`ip -N`). */
export function listMainRoutes(): { dst: string; dev?: string; gateway?: string; protocol?: string; type?: string }[] {
  return ipJson(['-N', '-4', 'route', 'show', 'table', 'main'])
}

export function listOurRoutes(): KernelRoute[] {
  return ipJson<KernelRoute[]>(['-4', 'route', 'show', 'proto', String(ROUTE_PROTO)])
}

/** A kernel route we own (protocol ROUTE_PROTO, main table). */
export interface KernelRouteSpec {
  /** CIDR, or a bare address for a /32 */
  dst: string
  dev: string
  via?: string
  src: string
  scope: 'link' | 'universe'
}

/** node → local pod: `POD/32 dev HOST_VETH scope link src NODE_IP`. */
export function endpointRoute(ip: string, dev: string, localIp: string): KernelRouteSpec {
  return { dst: `${ip}/32`, dev, src: localIp, scope: 'link' }
}

/** node → remote pods: via the peer (direct), or into the overlay device. */
export function peerRoute(cidr: string, nodeIp: string, vxlan: boolean, device: string, localIp: string): KernelRouteSpec {
  return vxlan
    ? { dst: cidr, dev: VXLAN_DEV, src: localIp, scope: 'link' }
    : { dst: cidr, dev: device, via: nodeIp, src: localIp, scope: 'universe' }
}

function splitDst(dst: string): { dst: string; prefixlen: number } {
  const [a, l] = dst.split('/')
  return { dst: a!, prefixlen: l === undefined ? 32 : Number(l) }
}

/** Replaces and deletes many kernel routes over one rtnetlink socket
 * (one syscall per 256 routes, no process spawned). */
export function applyRoutes(replace: readonly KernelRouteSpec[], remove: readonly string[] = []): void {
  const ifindexes = new Map<string, number>()
  const oif = (dev: string) => {
    let i = ifindexes.get(dev)
    if (i === undefined) {
      try {
        i = ifNameToIndex(dev)
      } catch {
        throw new UserError(
          `device ${dev} is gone, so its routes cannot be written`,
          'run podnet-bpf attach again (it recreates podnet devices)',
        )
      }
      ifindexes.set(dev, i)
    }
    return i
  }
  const ops: RouteOp[] = [
    ...replace.map((r): RouteOp => ({
      op: 'replace',
      ...splitDst(r.dst),
      protocol: ROUTE_PROTO,
      oif: oif(r.dev),
      gateway: r.via,
      prefsrc: r.src,
      scope: r.scope,
    })),
    ...remove.map((d): RouteOp => ({ op: 'delete', ...splitDst(d), protocol: ROUTE_PROTO })),
  ]
  const errors = routeOps(ops)
  if (errors.length) {
    const first = errors[0]!
    throw new Error(`${errors.length} kernel route change(s) failed, first: ${first.error.message}`)
  }
}

export function routeReplace(r: KernelRouteSpec): void {
  applyRoutes([r])
}

export function routeDelete(dst: string): void {
  applyRoutes([], [dst])
}

// ---- sysctls (paths relative to /proc/sys) ----

export function readSysctl(path: string): string | null {
  try {
    return readFileSync(`/proc/sys/${path}`, 'utf8').trim()
  } catch {
    return null
  }
}

export function writeSysctl(path: string, value: string, optional = false): void {
  try {
    writeFileSync(`/proc/sys/${path}`, value)
  } catch (e) {
    if (!optional) throw e
  }
}
