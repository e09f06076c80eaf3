// Runs inside a node namespace (nsenter), against an attached node: times the
// control-plane services on bulk input — syncRoutes (routes map + kernel
// routes + state) and syncEndpointMap (batch map update) — and prints one JSON
// line. The services come from the compiled project (dist/), loaded
// dynamically so this script does not compile against src/.
//
//   node dist/bench/cp-worker.js --pin-dir DIR --routes 5000 --endpoints 100000 --reps N --keep-routes
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { REPO_ROOT } from './lib/podnet.js'

interface RouteSpec {
  cidr: string
  nodeIp: string
  encap?: 'auto' | 'vxlan' | 'none'
}
interface Endpoint {
  ip: string
  ifindex: number
  flags: number
  podMac: string
  hostMac: string
}
interface RoutesService {
  syncRoutes(specs: readonly RouteSpec[], pinDir?: string): { added: number; changed: number; removed: number; unchanged: number }
}
interface EndpointsService {
  syncEndpointMap(eps: readonly Endpoint[], pinDir?: string): { written: number }
}
interface MapsModule {
  DatapathMaps: {
    open(pinDir: string): {
      endpoints: { deleteMany(ips: readonly string[]): void; setMany(eps: readonly Endpoint[]): void }
      routes: {
        setMany(r: readonly { cidr: string; nodeIp: string; vxlan: boolean }[]): void
        deleteMany(cidrs: readonly string[]): number
      }
      close(): void
    }
  }
}

export interface WorkerResult {
  routes: number
  endpoints: number
  /** syncRoutes of N new routes: map + kernel routes + state file */
  routesSyncMs: number[]
  /** the same sync again with nothing to change */
  routesResyncMs: number[]
  /** removing them all again with syncRoutes([]) */
  routesRemoveMs: number[]
  /** RouteMap.setMany alone (LPM trie: one update per route) */
  routesMapOnlyMs: number[]
  /** syncEndpointMap of N endpoints into an empty map (batch updates) */
  endpointsSyncMs: number[]
  /** set when the full-size route sync was not run because a 500-route
   * probe predicted it would blow the time budget */
  routesSkipped?: string
  /** the probe: syncRoutes of 500 new routes */
  probe500Ms?: number
  maxRssKb: number
}

/** 10.100.0.0/24, 10.100.1.0/24, … via peer node IPs 192.168.77.2‥254. */
export function routeSpecs(n: number): RouteSpec[] {
  return Array.from({ length: n }, (_, i) => ({
    cidr: `10.${100 + (i >> 8)}.${i & 255}.0/24`,
    nodeIp: `192.168.77.${2 + (i % 253)}`,
  }))
}

/** n endpoints from 10.128.0.0/14 (the scale node's pod CIDR). */
export function endpointSet(n: number, ifindex: number): Endpoint[] {
  return Array.from({ length: n }, (_, i) => {
    const a = i + 1
    return {
      ip: `10.${128 + (a >> 16)}.${(a >> 8) & 255}.${a & 255}`,
      ifindex,
      flags: 0,
      podMac: `02:00:00:${((a >> 16) & 255).toString(16).padStart(2, '0')}:${((a >> 8) & 255).toString(16).padStart(2, '0')}:${(a & 255).toString(16).padStart(2, '0')}`,
      hostMac: '02:ee:ee:ee:ee:ee',
    }
  })
}

async function load<T>(rel: string): Promise<T> {
  return (await import(pathToFileURL(join(REPO_ROOT, 'dist', rel)).href)) as T
}

function time(fn: () => unknown): number {
  const t0 = performance.now()
  fn()
  return performance.now() - t0
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'pin-dir': { type: 'string' },
      routes: { type: 'string', default: '5000' },
      endpoints: { type: 'string', default: '100000' },
      reps: { type: 'string', default: '5' },
      ifindex: { type: 'string', default: '1' },
      'keep-routes': { type: 'boolean', default: false },
      'budget-ms': { type: 'string', default: '60000' },
    },
  })
  const pinDir = values['pin-dir']
  if (!pinDir) throw new Error('--pin-dir is required')
  const nRoutes = Number(values.routes)
  const nEps = Number(values.endpoints)
  const reps = Number(values.reps)
  const routes = await load<RoutesService>('services/routes.js')
  const endpoints = await load<EndpointsService>('services/endpoints.js')
  const { DatapathMaps } = await load<MapsModule>('datapath/maps.js')

  const specs = routeSpecs(nRoutes)
  const eps = endpointSet(nEps, Number(values.ifindex))
  const res: WorkerResult = {
    routes: nRoutes,
    endpoints: nEps,
    routesSyncMs: [],
    routesResyncMs: [],
    routesRemoveMs: [],
    routesMapOnlyMs: [],
    endpointsSyncMs: [],
    maxRssKb: 0,
  }
  const budget = Number(values['budget-ms'])
  const t0 = performance.now()
  // a sync that scales badly would run for minutes at full size: probe first
  const probe = routeSpecs(Math.min(500, nRoutes))
  res.probe500Ms = time(() => routes.syncRoutes(probe, pinDir))
  routes.syncRoutes([], pinDir)
  const predicted = res.probe500Ms * (nRoutes / probe.length) ** 2 * 2
  if (predicted > budget) {
    res.routesSkipped = `syncRoutes of ${probe.length} routes took ${res.probe500Ms.toFixed(0)} ms; quadratic extrapolation to ${nRoutes} (sync + re-sync) ≈ ${(predicted / 1000).toFixed(0)} s, over the ${budget / 1000} s budget`
  }
  const mapRoutes = specs.map((s) => ({ cidr: s.cidr, nodeIp: s.nodeIp, vxlan: false }))
  for (let r = 0; r < reps; r++) {
    const last = r === reps - 1 || performance.now() - t0 > budget
    const keep = last && values['keep-routes']
    const maps = DatapathMaps.open(pinDir)
    try {
      // the routes map alone: RouteMap.setMany, then emptied again
      res.routesMapOnlyMs.push(time(() => maps.routes.setMany(mapRoutes)))
      // emptied the way the services do it (one batch): a delete per route
      // re-lists the map each time to prune peers, quadratic in the routes
      maps.routes.deleteMany(specs.map((s) => s.cidr))

      if (!res.routesSkipped) {
        let out = { added: 0, changed: 0, removed: 0, unchanged: 0 }
        res.routesSyncMs.push(time(() => (out = routes.syncRoutes(specs, pinDir))))
        if (out.added !== nRoutes) throw new Error(`syncRoutes added ${out.added} of ${nRoutes}`)
        res.routesResyncMs.push(time(() => (out = routes.syncRoutes(specs, pinDir))))
        if (out.unchanged !== nRoutes) throw new Error(`re-sync left ${out.unchanged} of ${nRoutes} unchanged`)
        if (!keep) res.routesRemoveMs.push(time(() => routes.syncRoutes([], pinDir)))
      } else if (keep) {
        maps.routes.setMany(mapRoutes) // something for `routes list` to read
      }

      let written = 0
      res.endpointsSyncMs.push(time(() => (written = endpoints.syncEndpointMap(eps, pinDir).written)))
      if (written !== nEps) throw new Error(`syncEndpointMap wrote ${written} of ${nEps}`)
      maps.endpoints.deleteMany(eps.map((e) => e.ip))
    } finally {
      maps.close()
    }
    if (last) break
  }
  res.maxRssKb = process.resourceUsage().maxRSS
  process.stdout.write(`${JSON.stringify(res)}\n`)
}

// only when executed, not when a test imports the generators
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((e: unknown) => {
    process.stderr.write(`cp-worker: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`)
    process.exit(1)
  })
}
