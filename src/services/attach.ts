// attach / detach: bring this node's datapath to the requested configuration,
// or remove everything podnet-bpf created.
import { existsSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { BpfError, UserError } from '../errors.js'
import { isBpffs } from '../datapath/kernel.js'
import { MapName, Programs, type DatapathConfig, type ProgramKey } from '../datapath/abi.js'
import { DatapathMaps } from '../datapath/maps.js'
import { incompatiblePins, loadProgram, objectHash, pinnedMapNames, type LoadedProgram } from '../datapath/objects.js'
import {
  deleteLink,
  applyRoutes,
  endpointRoute,
  getLinkByName,
  ipv4Addresses,
  listLinks,
  listMainRoutes,
  listOurRoutes,
  ROUTE_PROTO,
  peerRoute,
  VXLAN_DEV,
  VXLAN_OVERHEAD,
  writeSysctl,
  type AddrInfo,
  type LinkInfo,
} from '../datapath/netdev.js'
import { applyNodeSysctls, restoreUnder } from '../datapath/sysctl.js'
import { ensureVxlanDevice } from '../datapath/vxlan.js'
import {
  attachProgram,
  detachPodProgram,
  detachProgram,
  ensureClsact,
  isLinkPinName,
  queryAttachment,
  removeClsact,
  tcxAvailable,
  unpinLink,
  type AttachMode,
} from '../datapath/tc.js'
import { cidrContains, parseCidr, type Cidr } from '../util/ipv4.js'
import { parseNodeConfig, readConfigFile, type AttachModeOption, type NodeConfig } from './config.js'
import { ensurePinDir } from './preflight.js'
import { listStates, loadState, lockPath, netnsLockPath, removeState, saveState, type NodeState } from './state.js'
import { subnetsOf, resolveEncap } from './encap.js'
import { assertOwnNetns, hooksOf, progPinName, progPinPath, programKeysFor, withNodeLock, type NodeHook } from './node.js'
import { checkNodeAddressing, checkNodeIpNotPod, checkPinsCompatible, checkPodCidrFree, foreignRoutes } from './validate.js'
import { removeHeldLockFile, withFileLock } from '../datapath/lock.js'
import { currentNetns, sameNetns, type NetnsId } from '../datapath/netns.js'

export interface AttachInput {
  flags: Record<string, unknown>
  configFile?: string
  pinDir?: string
}

export interface AttachResult {
  action: 'attached' | 'replaced' | 'unchanged'
  pinDir: string
  /** how the programs sit on their hooks: tcx links (pinned in pinDir) or tc filters */
  attachMode: AttachMode
  config: NodeConfig
  podMtu: number
  deviceMtu: number
  vxlanDevice: string | null
  programs: { program: string; device: string; hook: string; id: number }[]
}

function requireDevice(name: string): LinkInfo {
  const dev = getLinkByName(name)
  if (!dev) throw new UserError(`interface "${name}" not found`, 'pass the node NIC with --device (see `ip link`)')
  return dev
}

/** Brings the node to the requested configuration, under the node's lock. */
export function attach(input: AttachInput): AttachResult {
  return withNodeLock(input.pinDir, (pinDir) => {
    // attaches in one namespace run one at a time, so two pin dirs cannot both claim it
    const netns = currentNetns()
    const lock = netnsLockPath(netns)
    return withFileLock(lock, { what: `network namespace net:[${netns.ino}]` }, () => {
      try {
        return attachLocked(input, pinDir, netns)
      } finally {
        removeHeldLockFile(lock)
      }
    })
  })
}

/** One podnet per network namespace: refuse a second pin dir here. */
function assertNetnsFree(pinDir: string, netns: NetnsId): void {
  const other = listStates().find((s) => s.pinDir !== pinDir && s.netns && sameNetns(s.netns, netns))
  if (other) {
    throw new UserError(
      `podnet-bpf is already attached in this network namespace with pin dir ${other.pinDir}`,
      `use --pin-dir ${other.pinDir}, or detach that one first (podnet-bpf detach --pin-dir ${other.pinDir})`,
    )
  }
}

/** Everything attach decided before changing anything. */
interface AttachPlan {
  pinDir: string
  prev: NodeState | null
  cfg: NodeConfig
  dev: LinkInfo
  addrs: AddrInfo[]
  podMtu: number
  needsVxlan: boolean
  attachMode: AttachMode
  /** nothing of ours on this node yet (no state, no pinned routes map) */
  fresh: boolean
  /** the routes map's routes, re-resolved for the (possibly new) mode */
  routes: { cidr: string; nodeIp: string; vxlan: boolean }[]
  keys: ProgramKey[]
  hashes: Record<string, string>
  build: string
}

/** attach, as its steps: preflight, devices, programs, sysctls, routes, state. */
function attachLocked(input: AttachInput, pinDir: string, netns: NetnsId): AttachResult {
  const prev = loadState(pinDir)
  if (prev) assertOwnNetns(prev)
  assertNetnsFree(pinDir, netns)
  const plan = preflight(input, pinDir, prev)
  if (prev && isUnchanged(prev, plan)) {
    if (!prev.netns) saveState({ ...prev, netns }) // state from before namespaces were recorded
    return result('unchanged', prev)
  }
  const prevHooks = prev ? hooksOf(prev).filter((h) => h.key !== 'fromPod') : []
  // a failed first attach removes only what it made, never pins it found
  const found = new Set(existsSync(pinDir) ? readdirSync(pinDir) : [])
  const createdDir = ensurePinDir(pinDir)
  const state = nextState(plan, netns)
  const loaded: LoadedProgram[] = []
  try {
    state.vxlan = plan.needsVxlan ? ensureVxlanDevice(plan.cfg.vxlanPort, plan.podMtu, prev?.vxlan?.created ?? false) : null
    loaded.push(...loadPrograms(plan, state))
    attachPrograms(plan, state, loaded)
    if (state.attachMode === 'tcx') retireClsacts(state)
    applyNodeSysctls(state.sysctls, plan.cfg.device)
    applyNodeRoutes(plan, state)
    if (prev) retireOld(prev, prevHooks, state)
    saveState(state)
    return result(prev ? 'replaced' : 'attached', state)
  } catch (e) {
    // first attach: leave nothing behind; re-attach: the previous programs
    // stay wherever the replace had not happened yet, and state is untouched
    if (!prev) {
      teardown(state, found)
      removeCreatedDirs(pinDir, createdDir)
      removeHeldLockFile(lockPath(pinDir))
    }
    throw e
  } finally {
    for (const l of loaded) l.obj.close()
  }
}

/** Step 1: configuration, device, MTU and every existing route checked; nothing changed. */
function preflight(input: AttachInput, pinDir: string, prev: NodeState | null): AttachPlan {
  const fileCfg = input.configFile ? readConfigFile(input.configFile) : {}
  const flags = Object.fromEntries(Object.entries(input.flags).filter(([, v]) => v !== undefined))
  const cfg = parseNodeConfig({ ...fileCfg, ...flags }, input.configFile ? `configuration (${input.configFile} + flags)` : 'flags')
  checkNodeAddressing(cfg, VXLAN_DEV)
  const dev = requireDevice(cfg.device)
  const attachMode = resolveAttachMode(cfg.attachMode, dev.ifindex)
  const addrs = ipv4Addresses(cfg.device)
  if (!addrs.some((a) => a.local === cfg.nodeIp)) {
    throw new UserError(
      `node IP ${cfg.nodeIp} is not an address of ${cfg.device} (it has ${addrs.map((a) => a.local).join(', ') || 'none'})`,
      'pass --node-ip with an address of --device',
    )
  }
  const needsVxlan = cfg.mode !== 'direct'
  const maxPodMtu = needsVxlan ? dev.mtu - VXLAN_OVERHEAD : dev.mtu
  const podMtu = cfg.mtu ?? maxPodMtu
  if (podMtu > maxPodMtu) {
    throw new UserError(
      `--mtu ${podMtu} does not fit ${cfg.device} (MTU ${dev.mtu})${needsVxlan ? ' with the 50-byte VXLAN header' : ''}`,
      `use --mtu ${maxPodMtu} or less`,
    )
  }
  checkPinsCompatible(pinDir, incompatiblePins(pinDir))
  checkPodCidrFree(cfg.podCidr, foreignRoutes(listMainRoutes(), ROUTE_PROTO), [])
  if (prev) assertEndpointsInside(prev, cfg.podCidr)
  const routes = prev ? reresolveRoutes(prev, pinDir, cfg, subnetsOf(addrs)) : []
  checkNodeIpNotPod(cfg.nodeIp, routes)
  checkPodCidrFree(cfg.podCidr, [], routes)
  const keys = programKeysFor(cfg.mode)
  const hashes = Object.fromEntries(keys.map((k) => [k, objectHash(k)]))
  return {
    pinDir,
    prev,
    cfg,
    dev,
    addrs,
    podMtu,
    needsVxlan,
    attachMode,
    fresh: !prev && !existsSync(join(pinDir, 'podnet_routes')),
    routes,
    keys,
    hashes,
    build: keys.map((k) => hashes[k]).join('.'),
  }
}

/** auto: tcx where this kernel has it (Linux >= 6.6), else tc filters. */
function resolveAttachMode(want: AttachModeOption, ifindex: number): AttachMode {
  const tcx = tcxAvailable(ifindex)
  if (want === 'tcx' && !tcx) {
    throw new UserError('--attach-mode tcx: this kernel has no tcx (Linux >= 6.6 needed)', 'use --attach-mode auto (or tc) for tc filters')
  }
  return want === 'auto' ? (tcx ? 'tcx' : 'tc') : want
}

function assertEndpointsInside(prev: NodeState, podCidr: string): void {
  const cidr = parseCidr(podCidr)
  const outside = Object.keys(prev.endpoints).filter((ip) => !cidrContains(cidr, ip))
  if (outside.length) {
    throw new UserError(
      `endpoints ${outside.join(', ')} are outside the new pod CIDR ${podCidr}`,
      'delete them first (podnet-bpf endpoints del --ip …)',
    )
  }
}

/** Every route must still be possible in the new mode: checked before changing anything. */
function reresolveRoutes(prev: NodeState, pinDir: string, cfg: NodeConfig, subnets: Cidr[]): AttachPlan['routes'] {
  if (!existsSync(join(pinDir, 'podnet_routes'))) return []
  const maps = DatapathMaps.open(pinDir)
  try {
    return [...maps.routes.entries()].map((r) => {
      const req = prev.routeEncap[r.cidr] ?? (r.vxlan ? 'vxlan' : 'none')
      return { cidr: r.cidr, nodeIp: r.nodeIp, vxlan: resolveEncap(req, cfg.mode, r.nodeIp, subnets, r.cidr) }
    })
  } finally {
    maps.close()
  }
}

function isUnchanged(prev: NodeState, plan: AttachPlan): boolean {
  return (
    isDeepStrictEqual(prev.config, plan.cfg) &&
    prev.build === plan.build &&
    prev.attachMode === plan.attachMode &&
    prev.deviceIfindex === plan.dev.ifindex &&
    isLive(prev)
  )
}

function nextState(plan: AttachPlan, netns: NetnsId): NodeState {
  const { prev, cfg, dev, podMtu } = plan
  if (prev) return { ...prev, config: cfg, deviceIfindex: dev.ifindex, deviceMtu: dev.mtu, podMtu, netns, attachMode: plan.attachMode }
  return {
    version: 1,
    pinDir: plan.pinDir,
    config: cfg,
    deviceIfindex: dev.ifindex,
    deviceMtu: dev.mtu,
    podMtu,
    vxlan: null,
    build: plan.build,
    programs: {},
    attachMode: plan.attachMode,
    clsactCreated: [],
    sysctls: [],
    routeEncap: {},
    endpoints: {},
    attachedAt: new Date().toISOString(),
    netns,
  }
}

/** Step 3: every program loaded with this node's configuration (maps reused from pins). */
function loadPrograms(plan: AttachPlan, state: NodeState): LoadedProgram[] {
  const { cfg, dev } = plan
  const dp: DatapathConfig = {
    nodeIp: cfg.nodeIp,
    deviceIfindex: dev.ifindex,
    vxlanIfindex: state.vxlan?.ifindex ?? 0,
    vni: cfg.vni,
    deviceMtu: dev.mtu,
    overlayMtu: plan.needsVxlan ? plan.podMtu : 0,
    podCidr: cfg.podCidr,
    vxlanPort: cfg.vxlanPort,
    nodePrefixLen: plan.addrs.find((a) => a.local === cfg.nodeIp)?.prefixlen,
  }
  const loaded: LoadedProgram[] = []
  try {
    for (const k of plan.keys) loaded.push(loadProgram(k, dp, plan.pinDir))
  } catch (e) {
    for (const l of loaded) l.obj.close()
    throw e
  }
  return loaded
}

/** Step 3 (cont.): on every hook (atomic replace where a previous build sits), then pinned. */
function attachPrograms(plan: AttachPlan, state: NodeState, loaded: readonly LoadedProgram[]): void {
  const byKey = new Map(loaded.map((l) => [l.key, l]))
  const via = { mode: state.attachMode, pinDir: plan.pinDir }
  for (const h of hooksOf(state)) {
    try {
      const tc = via.mode === 'tc' && h.hook.point !== 'netkit-peer'
      if (tc && ensureClsact(h.hook.ifindex) && !state.clsactCreated.includes(h.hook.ifindex)) state.clsactCreated.push(h.hook.ifindex)
      attachProgram(h.hook, byKey.get(h.key)!.prog.fd(), via)
    } catch (e) {
      // a pod device that vanished since (or whose ifindex is now another device): its endpoint is stale, not fatal
      const stale = e instanceof BpfError && (e.code === 'ENODEV' || e.code === 'ENXIO' || e.code === 'EINVAL' || e.code === 'EACCES')
      if (h.key === 'fromPod' && stale) continue
      throw e
    }
  }
  for (const l of loaded) {
    const p = progPinPath(plan.pinDir, l.key)
    if (existsSync(p)) unlinkSync(p)
    l.prog.pin(p)
    state.programs[l.key] = { id: l.prog.id(), hash: plan.hashes[l.key]! }
  }
  // programs of a mode we left (vxlan → direct)
  for (const k of Object.keys(Programs) as ProgramKey[]) {
    if (plan.keys.includes(k)) continue
    delete state.programs[k]
    const p = progPinPath(plan.pinDir, k)
    if (existsSync(p)) unlinkSync(p)
  }
  state.build = plan.build
}

/** Step 3 (cont.), tcx: the clsact qdiscs we made for tc filters (a node
 * attached with tc before) are no longer needed; the filters left with the switch. */
function retireClsacts(state: NodeState): void {
  for (const ifindex of state.clsactCreated) {
    try {
      removeClsact(ifindex)
    } catch (e) {
      if (!(e instanceof BpfError)) throw e // device gone with it
    }
  }
  state.clsactCreated = []
}

/** Step 5: routes follow the (possibly new) mode; kernel routes for node → pod. */
function applyNodeRoutes(plan: AttachPlan, state: NodeState): void {
  const { cfg } = plan
  if (plan.routes.length) {
    const maps = DatapathMaps.open(plan.pinDir)
    try {
      maps.routes.setMany(plan.routes)
    } finally {
      maps.close()
    }
  }
  // one link dump, not a lookup per endpoint
  const ifindexOf = new Map(listLinks().map((l) => [l.name, l.ifindex]))
  applyRoutes(
    [
      ...Object.entries(state.endpoints)
        .filter(([, e]) => ifindexOf.get(e.ifname) === e.ifindex)
        .map(([ip, e]) => endpointRoute(ip, e.ifname, cfg.nodeIp)),
      ...plan.routes.map((r) => peerRoute(r.cidr, r.nodeIp, r.vxlan, cfg.device, cfg.nodeIp)),
    ],
    // a first attach owns no kernel routes yet: any of ours are leftovers of
    // a detach that could not finish (routes sync relies on this)
    plan.fresh ? listOurRoutes().map((r) => r.dst) : [],
  )
}

/** Step 6, after a re-attach with another device or mode: nothing of ours stays
 * on a hook the new configuration does not use (old NIC, old VXLAN device),
 * with the clsact qdiscs and the NIC sysctls we set there undone, and an
 * overlay device we made and no longer need is deleted. */
function retireOld(prev: NodeState, prevHooks: readonly NodeHook[], state: NodeState): void {
  const now = hooksOf(state).filter((h) => h.key !== 'fromPod')
  const kept = (h: NodeHook) => now.some((n) => n.hook.ifindex === h.hook.ifindex && n.hook.point === h.hook.point)
  for (const h of prevHooks.filter((h) => !kept(h))) {
    try {
      detachProgram(h.hook, state.pinDir)
    } catch (e) {
      if (!(e instanceof BpfError && (e.code === 'ENODEV' || e.code === 'EINVAL' || e.code === 'ENOENT'))) throw e // device gone with its hooks
    }
  }
  const inUse = new Set([...now.map((h) => h.hook.ifindex), ...Object.values(state.endpoints).map((e) => e.ifindex)])
  for (const ifindex of new Set(prevHooks.map((h) => h.hook.ifindex))) {
    if (inUse.has(ifindex) || !state.clsactCreated.includes(ifindex)) continue
    try {
      removeClsact(ifindex)
    } catch (e) {
      if (!(e instanceof BpfError)) throw e
    }
    state.clsactCreated = state.clsactCreated.filter((i) => i !== ifindex)
  }
  if (prev.config.device !== state.config.device) state.sysctls = restoreUnder(state.sysctls, `net/ipv4/conf/${prev.config.device}/`)
  if (prev.vxlan?.created && !state.vxlan) deleteLink(VXLAN_DEV)
}

/** Are our programs still on every hook (nobody removed them, devices still there)? */
function isLive(s: NodeState): boolean {
  for (const h of hooksOf(s)) {
    if (h.key === 'fromPod') continue
    try {
      const a = queryAttachment(h.hook)
      if (a?.id !== s.programs[h.key]?.id || (a.via !== s.attachMode && a.via !== 'netkit')) return false
    } catch {
      return false
    }
  }
  if (s.vxlan && getLinkByName(VXLAN_DEV)?.ifindex !== s.vxlan.ifindex) return false
  return true
}

function result(action: AttachResult['action'], s: NodeState): AttachResult {
  return {
    action,
    pinDir: s.pinDir,
    attachMode: s.attachMode,
    config: s.config,
    podMtu: s.podMtu,
    deviceMtu: s.deviceMtu,
    vxlanDevice: s.vxlan ? VXLAN_DEV : null,
    programs: hooksOf(s)
      .filter((h) => h.key !== 'fromPod')
      .map((h) => ({
        program: Programs[h.key].program,
        device: h.device,
        hook: h.hook.point,
        id: s.programs[h.key]?.id ?? 0,
      })),
  }
}

export interface DetachResult {
  pinDir: string
  wasAttached: boolean
  removed: string[]
}

export function detach(pinDirFlag?: string): DetachResult {
  return withNodeLock(pinDirFlag, detachLocked)
}

function detachLocked(pinDir: string): DetachResult {
  const state = loadState(pinDir)
  if (state) assertOwnNetns(state)
  const ours = ourPinNames()
  const hasPins = isBpffs(pinDir) && existsSync(pinDir) && readdirSync(pinDir).some((f) => ours.has(f) || isLinkPinName(f))
  if (!state && !hasPins) return { pinDir, wasAttached: false, removed: [] }
  const removed = state ? teardown(state) : removePins(pinDir)
  removeHeldLockFile(lockPath(pinDir))
  return { pinDir, wasAttached: true, removed }
}

/** podnet's own pins by exact name: a shared directory may hold other tools' pins. */
function ourPinNames(): Set<string> {
  return new Set([...Object.values(MapName), ...pinnedMapNames(), ...(Object.keys(Programs) as ProgramKey[]).map(progPinName)])
}

function removePins(pinDir: string, keep: ReadonlySet<string> = new Set()): string[] {
  const removed: string[] = []
  if (!existsSync(pinDir)) return removed
  const ours = ourPinNames()
  for (const f of readdirSync(pinDir)) {
    if (!(ours.has(f) || isLinkPinName(f)) || keep.has(f)) continue
    // a link pin: its link detached now, not when the kernel gets round to freeing it
    if (isLinkPinName(f)) unpinLink(join(pinDir, f))
    else unlinkSync(join(pinDir, f))
    removed.push(`pin ${join(pinDir, f)}`)
  }
  try {
    rmdirSync(pinDir)
  } catch {
    /* not empty (someone else's pins) or already gone */
  }
  return removed
}

/** rmdir of pinDir and its parents up to `top`, the first directory this
 * run created (mkdir -p's answer); directories someone filled stay. */
function removeCreatedDirs(pinDir: string, top: string | undefined): void {
  if (!top) return
  for (let d = pinDir; d.length >= top.length; d = dirname(d)) {
    try {
      rmdirSync(d)
    } catch {
      return // not empty or gone: leave it and its parents
    }
  }
}

/** Removes everything a (possibly partial) state records. Best effort per
 * item, so one vanished device does not strand the rest. */
export function teardown(state: NodeState, keepPins: ReadonlySet<string> = new Set()): string[] {
  const removed: string[] = []
  const errors: string[] = []
  const step = (what: string, fn: () => unknown) => {
    try {
      if (fn() !== false) removed.push(what)
    } catch (e) {
      if (
        e instanceof BpfError &&
        (e.code === 'ENODEV' || e.code === 'ENOENT' || e.code === 'EINVAL' || e.code === 'ENXIO' || e.code === 'EACCES')
      )
        return
      errors.push(`${what}: ${(e as Error).message}`)
    }
  }
  // endpoints that exist only in the map (state lost track) still get unhooked
  // veth/netkit as state recorded it; map-only: unknown
  const kinds = new Map(Object.values(state.endpoints).map((e) => [e.ifindex, e.device] as const))
  const epIfindexes = new Set(Object.values(state.endpoints).map((e) => e.ifindex))
  try {
    const maps = DatapathMaps.open(state.pinDir)
    try {
      for (const e of maps.endpoints.entries()) epIfindexes.add(e.ifindex)
    } finally {
      maps.close()
    }
  } catch {
    /* maps already gone */
  }
  for (const ifindex of epIfindexes) {
    const device = kinds.get(ifindex)
    step(`from-pod on ifindex ${ifindex}`, () => detachPodProgram(ifindex, device, state.pinDir))
  }
  const off = (ifindex: number, point: 'ingress' | 'egress') => () => detachProgram({ ifindex, point }, state.pinDir)
  step(`program on ${state.config.device} ingress`, off(state.deviceIfindex, 'ingress'))
  if (state.vxlan) {
    if (state.vxlan.created) step(`device ${VXLAN_DEV}`, () => deleteLink(VXLAN_DEV))
    else {
      step(`program on ${VXLAN_DEV} ingress`, off(state.vxlan.ifindex, 'ingress'))
      step(`program on ${VXLAN_DEV} egress`, off(state.vxlan.ifindex, 'egress'))
    }
  }
  for (const ifindex of state.clsactCreated) {
    if (state.vxlan?.created && ifindex === state.vxlan.ifindex) continue
    step(`clsact qdisc on ifindex ${ifindex}`, () => removeClsact(ifindex))
  }
  const kernelRoutes = listOurRoutes().map((r) => r.dst)
  if (kernelRoutes.length) step(`${kernelRoutes.length} kernel routes`, () => applyRoutes([], kernelRoutes))
  for (const s of [...state.sysctls].reverse()) step(`sysctl ${s.path}=${s.old}`, () => writeSysctl(s.path, s.old))
  removed.push(...removePins(state.pinDir, keepPins))
  removeState(state.pinDir)
  if (errors.length) throw new Error(`detach left some items behind:\n  ${errors.join('\n  ')}`)
  return removed
}
