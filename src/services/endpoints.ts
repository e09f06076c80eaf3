// Local pod endpoints: the from-pod program on the pod's host-side device
// (tc ingress of a veth, or the peer hook of a netkit pair), the endpoints
// map entry, and a /32 kernel route so the node reaches the pod.
import { BpfError, UserError } from '../errors.js'
import { getLink } from '../datapath/kernel.js'
import { type Endpoint } from '../datapath/abi.js'

export type { Endpoint }
import { endpointRoute, getLinkByName, listMainRoutes, routeDelete, routeReplace, ROUTE_PROTO, VXLAN_DEV } from '../datapath/netdev.js'
import { attachProgram, detachPodProgram, detachProgram, ensureClsact, podHook, removeClsact } from '../datapath/tc.js'
import { isMac, parseIPv4 } from '../util/ipv4.js'
import { openFromPod, requireState, withNode, type NodeContext } from './node.js'
import { checkEndpointDevice, checkEndpointIp, checkNoForeignRoute, foreignRoutes } from './validate.js'

export interface AddEndpointInput {
  ip: string
  ifname: string
  mac?: string
  pinDir?: string
}

export interface EndpointView extends Endpoint {
  ifname: string | null
}

/** Adds (or moves) a local pod endpoint, under the node's lock. */
export function addEndpoint(input: AddEndpointInput): EndpointView {
  return withNode(input.pinDir, (node) => addEndpointTo(node, input), { write: true })
}

function addEndpointTo({ state, maps, save }: NodeContext, input: AddEndpointInput): EndpointView {
  const ip = parseIPv4(input.ip, 'endpoint IP')
  checkEndpointIp(ip, state.config.podCidr)
  if (input.mac !== undefined && !isMac(input.mac)) {
    throw new UserError(`invalid MAC address "${input.mac}"`, 'use six hex pairs, e.g. 02:00:0a:f4:01:0a')
  }
  const link = getLinkByName(input.ifname)
  if (!link) throw new UserError(`interface "${input.ifname}" not found`, "pass the pod's host-side veth (or netkit) device with --ifname")
  checkEndpointDevice(link, {
    device: state.config.device,
    deviceIfindex: state.deviceIfindex,
    vxlanIfindex: state.vxlan?.ifindex ?? null,
    vxlanName: VXLAN_DEV,
  })
  const device = link.kind as 'veth' | 'netkit'
  const hook = podHook({ ifindex: link.ifindex, device })
  let podMac = input.mac?.toLowerCase()
  if (!podMac) {
    if (link.peerIfindex === null) throw new UserError(`cannot find the peer of ${input.ifname}`, 'pass the pod MAC with --mac')
    try {
      podMac = getLink(link.peerIfindex, link.peerNetnsid ?? undefined).mac
    } catch (e) {
      throw new UserError(`cannot read the pod-side MAC of ${input.ifname}: ${(e as Error).message}`, 'pass it with --mac')
    }
  }

  {
    const existing = maps.endpoints.get(ip)
    if (existing && existing.ifindex !== link.ifindex && getLinkIndexExists(existing.ifindex)) {
      throw new UserError(
        `${ip} is already an endpoint on ifindex ${existing.ifindex}`,
        `delete it first: podnet-bpf endpoints del --ip ${ip}`,
      )
    }
    checkNoForeignRoute([`${ip}/32`], foreignRoutes(listMainRoutes(), ROUTE_PROTO))
    const ep: Endpoint = { ip, ifindex: link.ifindex, flags: 0, podMac, hostMac: link.mac }
    const prog = openFromPod(state)
    let created = false
    try {
      // tc filters need the clsact qdisc; tcx links and netkit hooks do not
      if (device === 'veth' && state.attachMode === 'tc') created = ensureClsact(link.ifindex)
      try {
        attachProgram(hook, prog.fd, { mode: state.attachMode, pinDir: state.pinDir })
      } catch (e) {
        // only the primary (host-side) end of a netkit pair takes programs
        if (device === 'netkit' && e instanceof BpfError && e.code === 'EACCES') {
          throw new UserError(`${input.ifname} is the pod side of a netkit pair`, "pass the pair's host-side (primary) device")
        }
        throw e
      }
      maps.endpoints.set(ep)
      routeReplace(endpointRoute(ip, link.name, state.config.nodeIp))
    } catch (e) {
      // leave nothing half-applied
      if (existing) maps.endpoints.set(existing)
      else maps.endpoints.delete(ip)
      if (!Object.values(state.endpoints).some((x) => x.ifindex === link.ifindex)) {
        try {
          detachProgram(hook, state.pinDir)
          if (created) removeClsact(link.ifindex)
        } catch {
          /* best effort */
        }
      }
      throw e
    } finally {
      prog.close()
    }
    if (created && !state.clsactCreated.includes(link.ifindex)) state.clsactCreated.push(link.ifindex)
    state.endpoints[ip] = { ifname: link.name, ifindex: link.ifindex, device }
    save()
    return { ...ep, ifname: link.name }
  }
}

function getLinkIndexExists(ifindex: number): boolean {
  try {
    getLink(ifindex)
    return true
  } catch {
    return false
  }
}

export function deleteEndpoint(ipArg: string, pinDir?: string): Endpoint {
  const ip = parseIPv4(ipArg, 'endpoint IP')
  return withNode(
    pinDir,
    ({ state, maps, save }) => {
      const ep = maps.endpoints.get(ip)
      if (!ep) throw new UserError(`no endpoint ${ip}`, 'see `podnet-bpf endpoints list`')
      maps.endpoints.delete(ip)
      routeDelete(`${ip}/32`)
      const gone = state.endpoints[ip]
      delete state.endpoints[ip]
      const stillUsed = Object.values(state.endpoints).some((e) => e.ifindex === ep.ifindex)
      if (!stillUsed) {
        try {
          // an endpoint state does not know (only the map has it): both hooks
          detachPodProgram(ep.ifindex, gone?.device, state.pinDir)
        } catch (e) {
          // the pod (and its device) may be gone already; anything else (EPERM) is reported
          if (!(e instanceof BpfError && ['ENODEV', 'ENOENT', 'ENXIO', 'EINVAL'].includes(e.code ?? ''))) throw e
        }
      }
      save()
      return ep
    },
    { write: true },
  )
}

export function listEndpoints(pinDir?: string): EndpointView[] {
  return withNode(pinDir, ({ state, maps }) => maps.endpoints.list().map((e) => ({ ...e, ifname: state.endpoints[e.ip]?.ifname ?? null })))
}

/** Bulk load of endpoints straight into the map with batch updates (no
 * tc/kernel-route work): for restoring state and for scale tests. */
export function syncEndpointMap(eps: readonly Endpoint[], pinDir?: string): { written: number } {
  const state = requireState(pinDir)
  for (const e of eps) checkEndpointIp(parseIPv4(e.ip, 'endpoint IP'), state.config.podCidr)
  return withNode(
    state.pinDir,
    ({ maps }) => {
      maps.endpoints.setMany(eps)
      return { written: eps.length }
    },
    { write: true },
  )
}
