// The agent's reconcile loop, level-triggered: desired routes (every route
// source: the datastore's peers, BGP, static) against actual (routes map and
// kernel routes, read by syncRoutes), diff applied in batches. The same run
// happens at start-up, on every change event (coalesced) and on a periodic
// resync, so a missed event only delays convergence until the next resync.
import { UserError } from '../errors.js'
import { syncRoutes, type RouteSpec, type SyncOptions, type SyncResult } from '../services/routes.js'
import { deviceSubnets, resolveEncap } from '../services/node.js'
import type { Mode } from '../services/config.js'
import { cidrString, parseCidr, type Cidr } from '../util/ipv4.js'
import type { OwnNode, PeerNode } from './datastore.js'
import type { Logger } from './log.js'

/** Where a route comes from; on overlapping CIDRs the earlier origin wins. */
export const ORIGINS = ['static', 'datastore', 'bgp'] as const
export type RouteOrigin = (typeof ORIGINS)[number]

export interface DesiredRoute extends RouteSpec {
  origin: RouteOrigin
  /** the peer node's name, when known */
  peer?: string
}

export type RouteSource = () => DesiredRoute[]

export interface ReconcileResult extends SyncResult {
  at: string
  trigger: string
  seconds: number
  desired: number
  /** routes left out (overlap, own CIDR, impossible encapsulation), with why */
  rejected: { cidr: string; origin: RouteOrigin; reason: string }[]
  byOrigin: Record<string, number>
  /** origin of every installed route, by CIDR (for `routes list`) */
  origins: Record<string, RouteOrigin>
}

export interface ReconcilerOptions {
  pinDir: string
  own: OwnNode
  mode: Mode
  device: string
  log: Logger
  /** coalescing window for change events */
  debounceMs?: number
  onResult?: (r: ReconcileResult) => void
  onError?: (e: Error, trigger: string) => void
  /** injectable for tests; defaults to the routes service */
  sync?: (specs: readonly RouteSpec[], pinDir: string, opts: SyncOptions) => SyncResult
  /** injectable for tests; defaults to the device's addresses */
  subnets?: (device: string) => Cidr[]
}

/** How long the device's subnets are reused: runs back to back during a burst of changes
 * share one read (an `ip` process), and an address change is seen within this long. */
const SUBNETS_TTL_MS = 1000

/** A peer as a route: its pod CIDR via its node IP. A peer that runs VXLAN
 * only is sent VXLAN unless this node is direct-only. */
export function peerToRoute(p: PeerNode, mode: Mode): DesiredRoute {
  const encap = p.mode === 'vxlan' && mode !== 'direct' ? 'vxlan' : undefined
  return { cidr: p.podCidr, nodeIp: p.nodeIp, ...(encap ? { encap } : {}), origin: 'datastore', peer: p.name }
}

interface Span {
  r: DesiredRoute
  c: Cidr
  start: number
  end: number
}

/** Keeps what the node can install: not its own CIDR or IP, no overlaps
 * (higher-priority origin, then the wider-or-earlier CIDR wins), an
 * encapsulation the node mode allows. Never throws on bad input. */
export function selectRoutes(
  all: readonly DesiredRoute[],
  own: OwnNode,
  mode: Mode,
  subnets: readonly Cidr[],
): { keep: DesiredRoute[]; rejected: ReconcileResult['rejected'] } {
  const rejected: ReconcileResult['rejected'] = []
  const ownCidr = parseCidr(own.podCidr)
  const spans: Span[] = []
  for (const r of all) {
    const why = (reason: string) => rejected.push({ cidr: r.cidr, origin: r.origin, reason })
    let c: Cidr
    try {
      c = parseCidr(r.cidr)
    } catch (e) {
      why((e as Error).message)
      continue
    }
    const end = c.net + 2 ** (32 - c.len) - 1
    if (r.nodeIp === own.nodeIp) why("the route's node IP is this node's")
    else if (ownCidr.net <= end && c.net <= ownCidr.net + 2 ** (32 - ownCidr.len) - 1) why(`overlaps this node's pod CIDR ${own.podCidr}`)
    else spans.push({ r, c, start: c.net, end })
  }
  const rank = (s: Span) => ORIGINS.indexOf(s.r.origin)
  // priority first, so a lower-priority route never displaces a higher one
  spans.sort((a, b) => rank(a) - rank(b) || a.start - b.start || b.end - a.end)
  const taken: Span[] = []
  const keep: DesiredRoute[] = []
  for (const s of spans) {
    const clash = taken.find((t) => s.start <= t.end && t.start <= s.end)
    if (clash) {
      const twice = s.r.cidr === clash.r.cidr && s.r.nodeIp === clash.r.nodeIp && s.r.origin === clash.r.origin
      const reason = twice ? 'listed twice' : `overlaps ${clash.r.cidr} (${clash.r.origin}, node ${clash.r.nodeIp})`
      rejected.push({ cidr: s.r.cidr, origin: s.r.origin, reason })
      continue
    }
    try {
      resolveEncap(s.r.encap ?? 'default', mode, s.r.nodeIp, subnets, s.r.cidr)
    } catch (e) {
      rejected.push({ cidr: s.r.cidr, origin: s.r.origin, reason: e instanceof UserError ? e.message : String(e) })
      continue
    }
    taken.push(s)
    keep.push(s.r)
  }
  return { keep, rejected }
}

export class Reconciler {
  private readonly sources = new Map<string, RouteSource>()
  private timer: NodeJS.Timeout | null = null
  private resyncTimer: NodeJS.Timeout | null = null
  private pending: string[] = []
  private running = false
  private stopped = false
  private readonly warned = new Set<string>()
  private subnetsRead: { at: number; subnets: Cidr[] } | null = null
  last: ReconcileResult | null = null
  lastError: { at: string; message: string } | null = null
  runs = 0

  constructor(private readonly o: ReconcilerOptions) {}

  /** A named route source (e.g. 'datastore', 'bgp'); call trigger() when it changes. */
  addRouteSource(name: string, fn: RouteSource): void {
    this.sources.set(name, fn)
  }

  removeRouteSource(name: string): void {
    this.sources.delete(name)
  }

  /** Schedules a run; events within the debounce window share one run. */
  trigger(reason: string): void {
    if (this.stopped) return
    if (!this.pending.includes(reason)) this.pending.push(reason)
    if (this.timer || this.running) return
    this.timer = setTimeout(() => {
      this.timer = null
      this.runPending()
    }, this.o.debounceMs ?? 10)
  }

  /** Periodic resync; the first run happens through runNow(). */
  startResync(intervalMs: number): void {
    this.resyncTimer = setInterval(() => this.trigger('resync'), intervalMs)
    this.resyncTimer.unref()
  }

  stop(): void {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    if (this.resyncTimer) clearInterval(this.resyncTimer)
    this.timer = this.resyncTimer = null
  }

  private runPending(): void {
    const why = this.pending.join(',') || 'event'
    this.pending = []
    try {
      this.runNow(why)
    } catch {
      /* reported through onError; the datapath is unchanged */
    }
    if (this.pending.length && !this.stopped) this.trigger(this.pending.shift()!)
  }

  /** The device's subnets, read again at most every SUBNETS_TTL_MS (and at every periodic resync). */
  private deviceSubnets(trigger: string): Cidr[] {
    const now = performance.now()
    const r = this.subnetsRead
    if (r && now - r.at < SUBNETS_TTL_MS && !trigger.includes('resync')) return r.subnets
    const subnets = (this.o.subnets ?? deviceSubnets)(this.o.device)
    this.subnetsRead = { at: now, subnets }
    return subnets
  }

  /** One reconcile, synchronously. Throws (after onError) when the sync fails;
   * syncRoutes validates before it changes anything, so the datapath is
   * then exactly as before. */
  runNow(trigger = 'manual'): ReconcileResult {
    const t0 = performance.now()
    this.running = true
    try {
      const all: DesiredRoute[] = []
      for (const [name, fn] of this.sources) {
        try {
          all.push(...fn())
        } catch (e) {
          throw new Error(`route source ${name}: ${(e as Error).message}`)
        }
      }
      const subnets = this.deviceSubnets(trigger)
      const { keep, rejected } = selectRoutes(all, this.o.own, this.o.mode, subnets)
      for (const r of rejected) {
        const k = `${r.origin}:${r.cidr}:${r.reason}`
        if (this.warned.has(k)) continue
        this.warned.add(k)
        this.o.log.warn('route left out', { cidr: r.cidr, origin: r.origin, reason: r.reason })
      }
      const res = (this.o.sync ?? syncRoutes)(
        keep.map(({ cidr, nodeIp, encap }) => ({ cidr, nodeIp, ...(encap ? { encap } : {}) })),
        this.o.pinDir,
        { subnets },
      )
      const byOrigin: Record<string, number> = {}
      const origins: Record<string, RouteOrigin> = {}
      for (const r of keep) {
        byOrigin[r.origin] = (byOrigin[r.origin] ?? 0) + 1
        origins[cidrString(parseCidr(r.cidr))] = r.origin
      }
      const result: ReconcileResult = {
        ...res,
        at: new Date().toISOString(),
        trigger,
        seconds: (performance.now() - t0) / 1000,
        desired: keep.length,
        rejected,
        byOrigin,
        origins,
      }
      this.last = result
      this.lastError = null
      this.runs++
      this.o.onResult?.(result)
      return result
    } catch (e) {
      this.lastError = { at: new Date().toISOString(), message: (e as Error).message }
      this.o.onError?.(e as Error, trigger)
      throw e
    } finally {
      this.running = false
    }
  }
}
