// Datapath counters (podnet_metrics, per-CPU) summed over CPUs, as rows with
// reason and direction names, as rates between two samples, and as a
// Prometheus registry (prom-client) read fresh on every scrape.
import { createServer, type Server } from 'node:http'
import { Counter, Gauge, Registry } from 'prom-client'
import { DIR_MAX, Reason, isDrop } from '../../datapath/abi.js'
import { DatapathMaps } from '../../datapath/maps.js'
import { UserError } from '../../errors.js'
import { requireState } from '../node.js'
import { dirLabel, jsonNumber, reasonLabel } from './common.js'

export interface MetricRow {
  direction: string
  reason: string
  reasonCode: number
  kind: 'forward' | 'drop'
  packets: number | string
  bytes: number | string
}

export interface Sample {
  at: number
  /** `${dir}:${reason}` → counters */
  counters: Map<string, { dir: number; reason: number; packets: bigint; bytes: bigint }>
}

/** Reads the counters of one node through its pins (no netns needed). */
export class MetricsReader {
  private readonly maps: DatapathMaps
  readonly pinDir: string

  constructor(pinDirFlag?: string) {
    this.pinDir = requireState(pinDirFlag, { mapsOnly: true }).pinDir
    this.maps = DatapathMaps.open(this.pinDir)
  }

  sample(): Sample {
    const counters: Sample['counters'] = new Map()
    for (const c of this.maps.metrics.read()) counters.set(`${c.dir}:${c.reason}`, c)
    return { at: Date.now(), counters }
  }

  /** Endpoints and routes in the maps (for gauges). */
  sizes(): { endpoints: number; routes: number } {
    let endpoints = 0
    for (const _ of this.maps.endpoints.entries()) endpoints++
    let routes = 0
    for (const _ of this.maps.routes.entries()) routes++
    return { endpoints, routes }
  }

  close(): void {
    this.maps.close()
  }
}

function sortKey(dir: number, reason: number): number {
  return (isDrop(reason) ? 1 : 0) * 1e6 + dir * 1e3 + reason
}

type Raw = { dir: number; reason: number; packets: bigint; bytes: bigint }

function row(c: Raw): MetricRow {
  return {
    direction: dirLabel(c.dir),
    reason: reasonLabel(c.reason),
    reasonCode: c.reason,
    kind: isDrop(c.reason) ? 'drop' : 'forward',
    packets: jsonNumber(c.packets),
    bytes: jsonNumber(c.bytes),
  }
}

function sorted(s: Sample): Raw[] {
  return [...s.counters.values()].sort((a, b) => sortKey(a.dir, a.reason) - sortKey(b.dir, b.reason))
}

/** Non-zero counters: forwards first, then drops, by hook and reason. */
export function metricRows(s: Sample): MetricRow[] {
  return sorted(s).map(row)
}

export function readMetrics(pinDirFlag?: string): MetricRow[] {
  const r = new MetricsReader(pinDirFlag)
  try {
    return metricRows(r.sample())
  } finally {
    r.close()
  }
}

export interface RateRow extends MetricRow {
  packetsPerSec: number
  bytesPerSec: number
}

/** Counters of `cur` with their rates since `prev`. */
export function rateRows(prev: Sample, cur: Sample): RateRow[] {
  const dt = Math.max(1, cur.at - prev.at) / 1000
  return sorted(cur).map((c) => {
    const p = prev.counters.get(`${c.dir}:${c.reason}`)
    return {
      ...row(c),
      packetsPerSec: Number(c.packets - (p?.packets ?? 0n)) / dt,
      bytesPerSec: Number(c.bytes - (p?.bytes ?? 0n)) / dt,
    }
  })
}

const KNOWN_REASONS = Object.values(Reason).filter((r) => r !== Reason.UNSPEC)

/** A registry whose counters are read from the map at scrape time. Every
 * known reason × direction is exported (zero until it happens), so a drop
 * that never occurred is a 0, not a missing series. */
export function prometheusRegistry(reader: MetricsReader): Registry {
  const reg = new Registry()
  const labelNames = ['reason', 'direction'] as const
  let sample: Sample | null = null
  const fresh = () => (sample ??= reader.sample())
  const collectFrom = (kind: 'forward' | 'drop', field: 'packets' | 'bytes') =>
    function (this: Counter<'reason' | 'direction'>) {
      const s = fresh()
      this.reset()
      for (const reason of KNOWN_REASONS) {
        if ((kind === 'drop') !== isDrop(reason)) continue
        for (let dir = 0; dir < DIR_MAX; dir++) {
          const c = s.counters.get(`${dir}:${reason}`)
          this.inc({ reason: reasonLabel(reason), direction: dirLabel(dir) }, c ? Number(c[field]) : 0)
        }
      }
    }
  for (const kind of ['forward', 'drop'] as const) {
    for (const field of ['packets', 'bytes'] as const) {
      new Counter({
        name: `podnet_${kind}_${field}_total`,
        help: `${kind === 'drop' ? 'Dropped' : 'Forwarded'} ${field} by reason and the hook that saw them (summed over CPUs)`,
        labelNames,
        registers: [reg],
        collect: collectFrom(kind, field),
      })
    }
  }
  let sizes: { endpoints: number; routes: number } | null = null
  new Gauge({
    name: 'podnet_endpoints',
    help: 'Local pod endpoints in the podnet_endpoints map',
    registers: [reg],
    collect() {
      sizes ??= reader.sizes()
      this.set(sizes.endpoints)
    },
  })
  new Gauge({
    name: 'podnet_routes',
    help: 'Peer pod-CIDR routes in the podnet_routes map',
    registers: [reg],
    collect() {
      sizes ??= reader.sizes()
      this.set(sizes.routes)
    },
  })
  // one map read per scrape, shared by every collector
  const metrics = reg.metrics.bind(reg)
  reg.metrics = async () => {
    sample = null
    sizes = null
    return metrics()
  }
  return reg
}

export interface MetricsServer {
  url: string
  close(): Promise<void>
}

/** Serves /metrics (Prometheus text format) on address:port (port 0: any free port). */
export async function serveMetrics(o: { pinDir?: string; address: string; port: number }): Promise<MetricsServer> {
  const reader = new MetricsReader(o.pinDir)
  const reg = prometheusRegistry(reader)
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end()
      return
    }
    if (path === '/metrics') {
      reg
        .metrics()
        .then((body) => res.writeHead(200, { 'Content-Type': reg.contentType }).end(body))
        .catch((e: unknown) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`${(e as Error).message}\n`))
      return
    }
    if (path === '/') {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('podnet-bpf metrics: see /metrics\n')
      return
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found: try /metrics\n')
  })
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(o.port, o.address, () => resolve())
    })
  } catch (e) {
    reader.close()
    const err = e as NodeJS.ErrnoException
    if (err.code === 'EADDRINUSE') throw new UserError(`${o.address}:${o.port} is already in use`, 'pick another --port')
    if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN' || err.code === 'EAI_NONAME' || (err.syscall ?? '') === 'getaddrinfo')
      throw new UserError(
        `--address ${o.address} is not an IP address or a name this host resolves`,
        'pass --address with a local IP, e.g. 127.0.0.1',
      )
    if (err.code === 'EADDRNOTAVAIL')
      throw new UserError(
        `${o.address} is not an address of this host (network namespace)`,
        'pass --address with a local address, e.g. 127.0.0.1',
      )
    throw e
  }
  const addr = server.address()
  const port = typeof addr === 'object' && addr ? addr.port : o.port
  const host = o.address.includes(':') ? `[${o.address}]` : o.address
  return {
    url: `http://${host}:${port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
        reader.close()
      }),
  }
}
