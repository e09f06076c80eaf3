// A pod on this node: its device pair (datapath/pod.ts) plus its endpoint
// (endpoints.ts), made and removed together. Front doors (the CNI plugin,
// and through it the lab) call these; IP allocation is theirs.
import { UserError } from '../errors.js'
import {
  POD_GATEWAY,
  createPodDevice,
  deletePodDevice,
  inspectPodSide,
  linkExists,
  listPodHostIfs,
  podHostIfName,
  type PodDevice,
} from '../datapath/pod.js'
import { getLinkByName } from '../datapath/netdev.js'
import { addEndpoint, deleteEndpoint, listEndpoints, type EndpointView } from './endpoints.js'
import { hooksOf, requireState, withNodeLock } from './node.js'
import { queryProgram } from '../datapath/tc.js'
import { loadState } from './state.js'
import { resolvePinDir } from './config.js'

export { POD_GATEWAY, podHostIfName, isPodHostIfName, PodDeviceError, type PodDevice } from '../datapath/pod.js'

export interface PodRef {
  pinDir?: string
  /** the runtime's id of the pod (CNI_CONTAINERID) */
  containerId: string
  /** device name inside the pod (CNI_IFNAME) */
  ifname: string
}

export interface AttachPodInput extends PodRef {
  netns: string
  ip: string
  device?: PodDevice
  mtu?: number
}

export interface AttachedPod {
  hostIf: string
  mtu: number
  endpoint: EndpointView
}

/** Creates the pod's device pair and registers its endpoint; undoes the
 * device when the endpoint cannot be registered. */
export function attachPod(input: AttachPodInput): AttachedPod {
  const state = requireState(input.pinDir)
  const mtu = input.mtu ?? state.podMtu
  const hostIf = podHostIfName(input.containerId, input.ifname)
  createPodDevice({ device: input.device ?? 'veth', netns: input.netns, ifname: input.ifname, hostIf, ip: input.ip, mtu })
  try {
    const endpoint = addEndpoint({ ip: input.ip, ifname: hostIf, pinDir: input.pinDir })
    return { hostIf, mtu, endpoint }
  } catch (e) {
    deletePodDevice(hostIf)
    throw e
  }
}

export interface DetachedPod {
  hostIf: string
  /** endpoints removed (IPs) */
  endpoints: string[]
  deviceRemoved: boolean
}

/** Removes the pod's endpoint(s) and device; what is already gone is fine,
 * and so is a node that is no longer attached. */
export function detachPod(ref: PodRef): DetachedPod {
  const hostIf = podHostIfName(ref.containerId, ref.ifname)
  return detachHostIf(hostIf, ref.pinDir)
}

export function detachHostIf(hostIf: string, pinDir?: string): DetachedPod {
  const dir = resolvePinDir(pinDir)
  const endpoints: string[] = []
  const removeEndpoints = () => {
    for (const [ip, ep] of Object.entries(loadState(dir)?.endpoints ?? {})) {
      if (ep.ifname !== hostIf) continue
      try {
        deleteEndpoint(ip, dir)
      } catch (e) {
        if (!(e instanceof UserError)) throw e
      }
      endpoints.push(ip)
    }
  }
  // state read and endpoint removal under one hold of the node's lock
  if (loadState(dir)) withNodeLock(dir, removeEndpoints)
  return { hostIf, endpoints, deviceRemoved: deletePodDevice(hostIf) }
}

export function podDeviceExists(hostIf: string): boolean {
  return linkExists(hostIf)
}

/** Host-side pod devices on this node (named by podHostIfName). */
export function listPodDevices(): string[] {
  return listPodHostIfs()
}

export interface PodCheckInput extends PodRef {
  netns: string
  ip: string
  mtu?: number
}

export type PodDrift = { what: 'host-device' | 'pod-device' | 'address' | 'route' | 'mtu' | 'endpoint'; detail: string }

/** Compares the pod's device, address, routes, MTU and endpoint entry with
 * what attachPod made; returns what differs (empty: all as expected). */
export function checkPod(input: PodCheckInput): PodDrift[] {
  const state = requireState(input.pinDir)
  const hostIf = podHostIfName(input.containerId, input.ifname)
  const drift: PodDrift[] = []
  const host = getLinkByName(hostIf)
  if (!host) return [{ what: 'host-device', detail: `host-side device ${hostIf} is missing` }]
  const pod = inspectPodSide(input.netns, input.ifname)
  if (!pod.exists) return [{ what: 'pod-device', detail: `${input.ifname} is missing in ${input.netns}` }]
  if (!pod.addresses.includes(`${input.ip}/32`))
    drift.push({ what: 'address', detail: `${input.ifname} has [${pod.addresses.join(', ')}], expected ${input.ip}/32` })
  if (!pod.routes.some((r) => r.dst === POD_GATEWAY && r.scope === 'link'))
    drift.push({ what: 'route', detail: `no link-scope route to the gateway ${POD_GATEWAY} on ${input.ifname}` })
  if (!pod.routes.some((r) => r.dst === 'default' && r.gateway === POD_GATEWAY))
    drift.push({ what: 'route', detail: `no default route via ${POD_GATEWAY} on ${input.ifname}` })
  const mtu = input.mtu ?? state.podMtu
  if (pod.mtu !== mtu) drift.push({ what: 'mtu', detail: `${input.ifname} MTU is ${pod.mtu}, expected ${mtu}` })
  const ep = listEndpoints(input.pinDir).find((e) => e.ip === input.ip)
  if (!ep) drift.push({ what: 'endpoint', detail: `no endpoint map entry for ${input.ip}` })
  else if (ep.ifindex !== host.ifindex)
    drift.push({ what: 'endpoint', detail: `endpoint ${input.ip} points at ifindex ${ep.ifindex}, not ${hostIf} (${host.ifindex})` })
  return drift
}

export interface DatapathHealth {
  attached: boolean
  /** what is wrong with an attached node's datapath (empty: healthy) */
  problems: string[]
  podCidr: string | null
}

/** Whether the node is attached and every program sits on its hook (for CNI STATUS). */
export function datapathHealth(pinDir?: string): DatapathHealth {
  const state = loadState(resolvePinDir(pinDir))
  if (!state) return { attached: false, problems: [], podCidr: null }
  const problems: string[] = []
  // node-wide hooks only: a pod's own hook is CHECK's business
  for (const h of hooksOf(state).filter((x) => x.key !== 'fromPod')) {
    const want = state.programs[h.key]?.id
    let got: number | null = null
    try {
      got = queryProgram(h.hook)
    } catch (e) {
      problems.push(`${h.key} on ${h.device}: ${(e as Error).message}`)
      continue
    }
    if (got === null) problems.push(`${h.key} is not attached to ${h.device} (${h.hook.point})`)
    else if (want !== undefined && got !== want) problems.push(`${h.key} on ${h.device} is program ${got}, not ${want}`)
  }
  try {
    listEndpoints(pinDir)
  } catch (e) {
    problems.push(`endpoints map: ${(e as Error).message}`)
  }
  return { attached: true, problems, podCidr: state.config.podCidr }
}
