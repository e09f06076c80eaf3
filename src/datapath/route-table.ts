// SPDX-License-Identifier: Apache-2.0
// A live copy of one kernel routing table: a dump, then the route monitor's
// changes applied to it (and a fresh dump whenever the monitor lost events).
// The BGP mode reads the table its daemon writes through this.

import { dumpRouteTable, RouteMonitor, type RouteEvent, type TableRoute } from '../libbpf/index.js'

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
