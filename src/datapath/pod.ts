// A pod's network device per the pod contract: a veth (or netkit) pair whose
// host side stays in the node namespace and whose other end lives in the
// pod's namespace with one /32, a link-scope route to the gateway, the
// default route via it and the pod MTU. The pod's namespace is addressed by
// path (any /run/netns/NAME or /proc/PID/ns/net), so this serves the CNI
// plugin (CNI_NETNS) and the lab alike.
import { closeSync, existsSync, openSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { createNetkit, ifNameToIndex, isBpfError } from '../libbpf/index.js'
import { CommandError, run, tryRun } from '../util/exec.js'

/** Link-local next hop of every pod; from-pod answers its ARP. */
export const POD_GATEWAY = '169.254.1.1'
const HOST_IF_PREFIX = 'pn'
const HOST_IF_RE = /^pn[0-9a-f]{11}$/

export type PodDevice = 'veth' | 'netkit'

/** Host-side name of a pod device: stable for (container, ifname), 13
 * characters (IFNAMSIZ allows 15), 44 bits of hash so pods do not collide. */
export function podHostIfName(containerId: string, ifname: string): string {
  return HOST_IF_PREFIX + createHash('sha256').update(`${containerId}\0${ifname}`).digest('hex').slice(0, 11)
}

/** Whether a device name is one podHostIfName produces. */
export function isPodHostIfName(name: string): boolean {
  return HOST_IF_RE.test(name)
}

export interface PodDeviceSpec {
  device: PodDevice
  /** path of the pod's network namespace */
  netns: string
  /** device name inside the pod (CNI_IFNAME) */
  ifname: string
  hostIf: string
  ip: string
  mtu: number
}

export class PodDeviceError extends Error {
  constructor(
    message: string,
    readonly reason: 'no-netns' | 'exists' | 'no-netkit' | 'failed',
  ) {
    super(message)
    this.name = 'PodDeviceError'
  }
}

function ipInNetns(netns: string, lines: string[][], json = false): string {
  const input = lines.map((l) => l.join(' ')).join('\n') + '\n'
  return run('nsenter', [`--net=${netns}`, 'ip', ...(json ? ['-j'] : []), '-batch', '-'], { input })
}

/** Creates the pair and configures the pod side. Leaves nothing behind when it fails. */
export function createPodDevice(s: PodDeviceSpec): void {
  if (!existsSync(s.netns)) throw new PodDeviceError(`network namespace ${s.netns} does not exist`, 'no-netns')
  try {
    if (s.device === 'netkit') {
      createNetkitPair(s)
      run('ip', ['link', 'set', 'dev', s.hostIf, 'up'])
    } else {
      const mtu = ['mtu', String(s.mtu)]
      run('ip', ['link', 'add', s.hostIf, ...mtu, 'up', 'type', 'veth', 'peer', 'name', s.ifname, ...mtu, 'netns', s.netns])
    }
    ipInNetns(s.netns, [
      ['link', 'set', 'dev', s.ifname, 'up'],
      ['addr', 'add', `${s.ip}/32`, 'dev', s.ifname],
      ['route', 'add', POD_GATEWAY, 'dev', s.ifname, 'scope', 'link'],
      ['route', 'add', 'default', 'via', POD_GATEWAY, 'dev', s.ifname],
    ])
  } catch (e) {
    deletePodDevice(s.hostIf)
    if (e instanceof PodDeviceError) throw e
    const msg = e instanceof CommandError ? e.stderr.trim() || e.message : (e as Error).message
    throw new PodDeviceError(`creating ${s.device} pair ${s.hostIf}/${s.ifname} in ${s.netns} failed: ${msg}`, 'failed')
  }
}

function createNetkitPair(s: PodDeviceSpec): void {
  const fd = openSync(s.netns, 'r')
  try {
    createNetkit({ name: s.hostIf, peerName: s.ifname, peerNetnsFd: fd, mtu: s.mtu })
  } catch (e) {
    if (isBpfError(e) && e.code === 'EOPNOTSUPP')
      throw new PodDeviceError('this kernel has no netkit devices (Linux >= 6.7 built with CONFIG_NETKIT)', 'no-netkit')
    throw e
  } finally {
    closeSync(fd)
  }
}

/** Whether a device of that name exists in this namespace (if_nametoindex: no process spawned). */
export function linkExists(name: string): boolean {
  try {
    ifNameToIndex(name)
    return true
  } catch (e) {
    if (isBpfError(e)) return false
    throw e
  }
}

/** Deletes the host side (which takes the pod side with it). false: it was not there. */
export function deletePodDevice(hostIf: string): boolean {
  return tryRun('ip', ['link', 'del', 'dev', hostIf]) !== null
}

export interface PodSideView {
  exists: boolean
  mtu: number | null
  up: boolean
  mac: string | null
  addresses: string[]
  routes: { dst: string; gateway: string | null; scope: string | null }[]
}

interface IpAddrJson {
  mtu: number
  flags?: string[]
  address?: string
  addr_info?: { family: string; local: string; prefixlen: number }[]
}

/** What the pod side looks like now (for CHECK). */
export function inspectPodSide(netns: string, ifname: string): PodSideView {
  const none: PodSideView = { exists: false, mtu: null, up: false, mac: null, addresses: [], routes: [] }
  let out: string
  try {
    out = run('nsenter', [`--net=${netns}`, 'ip', '-j', 'addr', 'show', 'dev', ifname])
  } catch {
    return none
  }
  const link = (JSON.parse(out) as IpAddrJson[])[0]
  if (!link) return none
  const routes = JSON.parse(run('nsenter', [`--net=${netns}`, 'ip', '-j', '-4', 'route', 'show', 'dev', ifname]) || '[]') as {
    dst: string
    gateway?: string
    scope?: string
  }[]
  return {
    exists: true,
    mtu: link.mtu,
    up: (link.flags ?? []).includes('UP'),
    mac: link.address ?? null,
    addresses: (link.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
    routes: routes.map((r) => ({ dst: r.dst, gateway: r.gateway ?? null, scope: r.scope ?? null })),
  }
}

/** Host-side devices named as podHostIfName names them. */
export function listPodHostIfs(): string[] {
  const out = run('ip', ['-j', 'link', 'show'])
  return (JSON.parse(out) as { ifname: string }[]).map((l) => l.ifname).filter(isPodHostIfName)
}
