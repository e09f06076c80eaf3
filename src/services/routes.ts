// Peer pod-CIDR routes: the routes map (what the datapath forwards by) and
// the matching kernel route (how the node itself reaches remote pods).
import { UserError } from '../errors.js'
import {
  applyRoutes,
  listLinks,
  listMainRoutes,
  peerRoute,
  routeDelete,
  routeReplace,
  ROUTE_PROTO,
  type KernelRouteSpec,
} from '../datapath/netdev.js'
import { diffKernelRoutes, mainTableRoutes, type TableRoute } from '../datapath/route-table.js'
import { type DatapathMaps } from '../datapath/maps.js'
import { type Route } from '../datapath/abi.js'
import { cidrString, cidrsOverlap, parseCidr, parseIPv4, type Cidr } from '../util/ipv4.js'
import { EncapSchema, type Encap } from './config.js'
import { deviceSubnets, resolveEncap } from './encap.js'
import { withNode } from './node.js'
import { type NodeState } from './state.js'
import { readAgentStatus } from './agent-status.js'
import {
  checkCapacity,
  checkNoForeignRoute,
  checkPeerRoute,
  foreignRoutes,
  parseDataText,
  readBoundedFile,
  ROUTES_MAX_BYTES,
  type MainRoute,
} from './validate.js'

export interface RouteView {
  cidr: string
  nodeIp: string
  encap: 'vxlan' | 'direct'
  requested: Encap | 'default'
  /** who installed it: the agent's route source (datastore, bgp, static), or static (routes add/sync) */
  origin?: string
}

export interface RouteSpec {
  cidr: string
  nodeIp: string
  encap?: Encap
}

interface Resolved {
  cidr: string
  nodeIp: string
  vxlan: boolean
  requested: Encap | 'default'
  /** the parsed CIDR, for the overlap check */
  parsed: Cidr
}

/** Validates one route against the node and the other routes; no side effects.
 * `own` is the node's parsed pod CIDR (parsed once per call, not per route). */
function resolve(
  state: NodeState,
  own: Cidr,
  spec: RouteSpec,
  others: readonly { cidr: string; nodeIp: string }[],
  subnets: readonly Cidr[],
): Resolved {
  const c = parseCidr(spec.cidr, 'route CIDR')
  const cidr = cidrString(c)
  const nodeIp = parseIPv4(spec.nodeIp, 'node IP')
  if (spec.encap !== undefined && !EncapSchema.options.includes(spec.encap)) {
    throw new UserError(`invalid encapsulation "${spec.encap}" for ${cidr}`, 'use auto, vxlan or none')
  }
  if (cidrsOverlap(c, own)) {
    throw new UserError(`route ${cidr} overlaps this node's own pod CIDR ${state.config.podCidr}`, "routes are for peer nodes' pod CIDRs")
  }
  if (nodeIp === state.config.nodeIp)
    throw new UserError(`node IP ${nodeIp} for route ${cidr} is this node's own IP`, "pass the peer node's underlay IP")
  checkPeerRoute(c, nodeIp, { nodeIp: state.config.nodeIp, subnets })
  for (const o of others) {
    if (o.cidr !== cidr && cidrsOverlap(c, parseCidr(o.cidr))) {
      throw new UserError(
        `route ${cidr} overlaps route ${o.cidr} (node ${o.nodeIp})`,
        `delete it first (podnet-bpf routes del ${o.cidr}) or use a CIDR that does not overlap`,
      )
    }
  }
  const requested = spec.encap ?? 'default'
  const vxlan = resolveEncap(requested, state.config.mode, nodeIp, subnets, cidr)
  return { cidr, nodeIp, vxlan, requested, parsed: c }
}

/** Sorted by network address, CIDRs overlap only with a predecessor whose
 * range reaches past their start: O(n log n) for large route files. */
function assertDisjoint(routes: readonly Resolved[]): void {
  const spans = routes
    .map((r) => ({ r, start: r.parsed.net, end: r.parsed.net + 2 ** (32 - r.parsed.len) - 1 }))
    .sort((a, b) => a.start - b.start || b.end - a.end)
  let widest: (typeof spans)[number] | undefined
  for (const s of spans) {
    if (widest && s.start <= widest.end) {
      if (s.r.cidr === widest.r.cidr) throw new UserError(`route ${s.r.cidr} is listed twice`, 'keep one entry per CIDR')
      throw new UserError(`route ${s.r.cidr} overlaps route ${widest.r.cidr} (node ${widest.r.nodeIp})`, 'use CIDRs that do not overlap')
    }
    if (!widest || s.end > widest.end) widest = s
  }
}

function view(r: Resolved): RouteView {
  return { cidr: r.cidr, nodeIp: r.nodeIp, encap: r.vxlan ? 'vxlan' : 'direct', requested: r.requested }
}

function kernelRoute(state: NodeState, r: Resolved): KernelRouteSpec {
  return peerRoute(r.cidr, r.nodeIp, r.vxlan, state.config.device, state.config.nodeIp)
}

/** Adds a route, or changes an existing route for the same CIDR (takes effect on the next packet). */
export function addRoute(spec: RouteSpec, pinDir?: string): RouteView {
  return withNode(
    pinDir,
    ({ state, maps, save }) => {
      const r = resolve(state, parseCidr(state.config.podCidr), spec, maps.routes.list(), deviceSubnets(state.config.device))
      const before = maps.routes.get(r.cidr)
      checkNoForeignRoute([r.cidr], foreignRoutes(listMainRoutes(), ROUTE_PROTO))
      maps.routes.set(r)
      try {
        routeReplace(kernelRoute(state, r))
      } catch (e) {
        if (before) maps.routes.set(before)
        else maps.routes.delete(r.cidr)
        throw e
      }
      state.routeEncap[r.cidr] = r.requested
      save()
      return view(r)
    },
    { write: true },
  )
}

export function deleteRoute(cidrArg: string, pinDir?: string): RouteView {
  const cidr = cidrString(parseCidr(cidrArg, 'route CIDR'))
  return withNode(
    pinDir,
    ({ state, maps, save }) => {
      const r = maps.routes.get(cidr)
      if (!r) throw new UserError(`no route for ${cidr}`, 'see `podnet-bpf routes list`')
      maps.routes.delete(cidr)
      routeDelete(cidr)
      const requested = state.routeEncap[cidr] ?? 'default'
      delete state.routeEncap[cidr]
      save()
      return { cidr, nodeIp: r.nodeIp, encap: r.vxlan ? 'vxlan' : 'direct', requested }
    },
    { write: true },
  )
}

export function listRoutes(pinDir?: string): RouteView[] {
  return withNode(pinDir, ({ state, maps }) => {
    const origins = readAgentStatus(state.pinDir)?.routeOrigins ?? {}
    return maps.routes.list().map((r) => ({
      cidr: r.cidr,
      nodeIp: r.nodeIp,
      encap: r.vxlan ? 'vxlan' : 'direct',
      requested: state.routeEncap[r.cidr] ?? 'default',
      origin: origins[r.cidr] ?? 'static',
    }))
  })
}

export interface SyncResult {
  added: number
  changed: number
  removed: number
  unchanged: number
  /** kernel routes of ours written or deleted although the map was right (changed by hand, or an interrupted change) */
  kernelRepaired?: number
}

export interface SyncOptions {
  /** the device's subnets, when the caller has just read them */
  subnets?: readonly Cidr[]
  /** writes kernel routes (tests count what is written); defaults to rtnetlink */
  applyRoutes?: typeof applyRoutes
}

/** Makes the route set exactly `specs`, all or nothing: everything is
 * validated (CIDRs, capacity, kernel routes of other owners) before anything
 * changes; a failure while writing puts the previous map entries and kernel
 * routes back before the error is reported, and state is written last.
 * Only the difference is written: map entries that are missing or differ,
 * and kernel routes of ours that are missing, differ or are stale (one
 * rtnetlink dump says what the kernel has); an unchanged set writes nothing. */
export function syncRoutes(specs: readonly RouteSpec[], pinDir?: string, opts: SyncOptions = {}): SyncResult {
  return withNode(
    pinDir,
    ({ state, maps, save }) => {
      const subnets = opts.subnets ?? deviceSubnets(state.config.device)
      const own = parseCidr(state.config.podCidr)
      const desired = specs.map((s) => resolve(state, own, s, [], subnets))
      assertDisjoint(desired)
      checkCapacity('routes', desired.length, maps.routes.map.info().maxEntries)
      const live = new Map(maps.routes.list().map((r) => [r.cidr, r]))
      const { res, writes, stale } = diffMap(desired, live)
      const table = mainTableRoutes()
      // our routes inside the pod CIDR are the pods' own (endpoints), not peer routes
      const kernel = diffKernelRoutes(
        desired.map((r) => kernelRoute(state, r)),
        table,
        (cidr) => !cidrsOverlap(parseCidr(cidr), own),
      )
      checkNoForeignRoute(
        kernel.replace.map((k) => k.dst),
        foreignAt(table, kernel.replace),
      )
      const encap = Object.fromEntries(desired.map((r) => [r.cidr, r.requested]))
      const kernelOps = kernel.replace.length + kernel.remove.length
      if (!writes.length && !stale.length && !kernelOps && sameRecord(encap, state.routeEncap)) return res
      const apply = opts.applyRoutes ?? applyRoutes
      try {
        // removals first: the map never holds old and new routes at once
        maps.routes.deleteMany(stale)
        maps.routes.setMany(writes)
        apply(kernel.replace, kernel.remove)
      } catch (e) {
        restore(state, maps, live, desired)
        throw e
      }
      state.routeEncap = encap
      save()
      const repaired = kernelOps - writes.length - stale.length
      return repaired > 0 ? { ...res, kernelRepaired: repaired } : res
    },
    { write: true },
  )
}

function sameRecord(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a)
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k])
}

/** Map entries to write (new or different) and to delete (no longer wanted). */
function diffMap(desired: readonly Resolved[], live: ReadonlyMap<string, Route>): { res: SyncResult; writes: Resolved[]; stale: string[] } {
  const res: SyncResult = { added: 0, changed: 0, removed: 0, unchanged: 0 }
  const writes: Resolved[] = []
  for (const r of desired) {
    const cur = live.get(r.cidr)
    if (!cur) res.added++
    else if (cur.nodeIp !== r.nodeIp || cur.vxlan !== r.vxlan) res.changed++
    else {
      res.unchanged++
      continue
    }
    writes.push(r)
  }
  const seen = new Set(desired.map((r) => r.cidr))
  const stale = [...live.keys()].filter((c) => !seen.has(c))
  res.removed = stale.length
  return { res, writes, stale }
}

/** Other owners' routes (any protocol but ours) for the CIDRs about to be written. */
function foreignAt(table: readonly TableRoute[], writes: readonly KernelRouteSpec[]): MainRoute[] {
  const dsts = new Set(writes.map((w) => w.dst))
  const hits = table.filter((r) => r.protocol !== ROUTE_PROTO && dsts.has(r.cidr))
  if (!hits.length) return []
  const names = new Map(listLinks().map((l) => [l.ifindex, l.name]))
  return hits.map((r) => ({
    dst: r.cidr,
    ...(r.oif !== undefined && names.has(r.oif) ? { dev: names.get(r.oif) } : {}),
    ...(r.gateway ? { gateway: r.gateway } : {}),
    protocol: String(r.protocol),
  }))
}

/** Puts the routes map and our kernel routes back to `live` after a failed sync. */
function restore(state: NodeState, maps: DatapathMaps, live: ReadonlyMap<string, Route>, desired: readonly Resolved[]): void {
  const added = desired.filter((r) => !live.has(r.cidr)).map((r) => r.cidr)
  const errors: string[] = []
  const step = (fn: () => unknown) => {
    try {
      fn()
    } catch (e) {
      errors.push((e as Error).message)
    }
  }
  step(() => maps.routes.deleteMany(added))
  step(() => maps.routes.setMany([...live.values()]))
  step(() =>
    applyRoutes(
      [...live.values()].map((r) => peerRoute(r.cidr, r.nodeIp, r.vxlan, state.config.device, state.config.nodeIp)),
      added,
    ),
  )
  if (errors.length) throw new Error(`routes sync failed and could not restore the previous routes: ${errors.join('; ')}`)
}

/** A routes file's content (JSON array of {cidr, nodeIp, encap?}), bounded
 * like every input file; the caller validates its shape. */
export function readRoutesFile(path: string): unknown {
  const hint = 'pass a JSON array of {"cidr", "nodeIp", "encap"?}'
  return parseDataText(readBoundedFile(path, ROUTES_MAX_BYTES, 'routes file', hint), `routes file ${path}`, hint)
}
