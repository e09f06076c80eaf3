// SPDX-License-Identifier: Apache-2.0
// A live copy of one kernel routing table: a dump, then the route monitor's
// changes applied to it (and a fresh dump whenever the monitor lost events).
// The BGP mode reads the table its daemon writes through this. And the main
// table's routes of ours against the ones wanted (routes sync): one dump,
// and only what is missing, different or stale is written.

import { dumpRouteTable, getLinkByName, RouteMonitor, type RouteEvent, type TableRoute } from '../libbpf/index.js'
import { ROUTE_PROTO, type KernelRouteSpec } from './netdev.js'

export type { TableRoute }

const RTN_UNICAST = 1

export class RouteTableWatch {
  private routes = new Map<string, TableRoute>()
  private monitor: RouteMonitor | undefined

  private constructor(
    readonly table: number,
    private readonly onChange: () => void,
  ) {}

  /** Opens the monitor first, then dumps: a change between the two arrives as an event after the dump. */
  static start(table: number, onChange: () => void): RouteTableWatch {
    const w = new RouteTableWatch(table, onChange)
    w.monitor = RouteMonitor.open(table, (ev) => w.apply(ev))
    w.resync()
    return w
  }

  /** Unicast routes with a gateway (what a BGP next hop is), by CIDR. */
  current(): TableRoute[] {
    return [...this.routes.values()]
  }

  private resync(): void {
    this.routes = new Map(
      dumpRouteTable(this.table)
        .filter(usable)
        .map((r) => [r.cidr, r]),
    )
  }

  private apply(events: RouteEvent[]): void {
    for (const e of events) {
      if (e.kind === 'overrun') {
        this.resync()
        break
      }
      if (e.kind === 'del') this.routes.delete(e.route.cidr)
      else if (usable(e.route)) this.routes.set(e.route.cidr, e.route)
      else this.routes.delete(e.route.cidr)
    }
    this.onChange()
  }

  close(): void {
    this.monitor?.close()
    this.monitor = undefined
  }
}

function usable(r: TableRoute): boolean {
  return r.type === RTN_UNICAST && r.gateway !== undefined
}

// ---- the main table's routes of ours, diffed (routes sync) ----

const RT_TABLE_MAIN = 254
const RT_SCOPE_UNIVERSE = 0
const RT_SCOPE_LINK = 253

/** Every IPv4 route of the main table, from one rtnetlink dump (no `ip` process). */
export function mainTableRoutes(): TableRoute[] {
  return dumpRouteTable(RT_TABLE_MAIN)
}

export interface KernelRouteDiff {
  /** wanted routes that are missing or differ (device, gateway, source, scope, type) */
  replace: KernelRouteSpec[]
  /** CIDRs of our routes that are not wanted */
  remove: string[]
  unchanged: number
}

/** Interface index by name, looked up once per name; undefined: no such device. */
export function ifindexLookup(): (dev: string) => number | undefined {
  const seen = new Map<string, number | undefined>()
  return (dev) => {
    if (!seen.has(dev)) seen.set(dev, getLinkByName(dev)?.ifindex)
    return seen.get(dev)
  }
}

/**
 * What makes our routes (protocol ROUTE_PROTO) in `table` exactly `wanted`,
 * for the CIDRs `managed` says the caller owns (a routes sync leaves the
 * pods' /32 routes alone). Routes already as wanted are not written: even a
 * replace by an identical route is a change every route listener sees.
 */
export function diffKernelRoutes(
  wanted: readonly KernelRouteSpec[],
  table: readonly TableRoute[],
  managed: (cidr: string) => boolean,
  ifindex: (dev: string) => number | undefined = ifindexLookup(),
): KernelRouteDiff {
  const ours = new Map<string, TableRoute>()
  for (const r of table) if (r.protocol === ROUTE_PROTO) ours.set(r.cidr, r)
  const want = new Set<string>()
  const replace: KernelRouteSpec[] = []
  let unchanged = 0
  for (const w of wanted) {
    const cidr = w.dst.includes('/') ? w.dst : `${w.dst}/32`
    want.add(cidr)
    if (same(ours.get(cidr), w, ifindex)) unchanged++
    else replace.push(w)
  }
  const remove = [...ours.keys()].filter((c) => !want.has(c) && managed(c))
  return { replace, remove, unchanged }
}

function same(cur: TableRoute | undefined, w: KernelRouteSpec, ifindex: (dev: string) => number | undefined): boolean {
  return (
    cur !== undefined &&
    cur.type === RTN_UNICAST &&
    cur.oif !== undefined &&
    cur.oif === ifindex(w.dev) &&
    cur.gateway === w.via &&
    cur.prefsrc === w.src &&
    cur.scope === (w.scope === 'link' ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE)
  )
}
