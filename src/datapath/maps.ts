// Typed access to the pinned datapath maps of one node (one pin dir).
import { join } from 'node:path'
import { isBpfError, MapFd, numPossibleCpus } from '../libbpf/index.js'
import { ipToInt } from '../util/ipv4.js'
import {
  DIR_MAX,
  endpointCodec,
  IPV4_KEY_SIZE,
  MapName,
  metricCodec,
  METRICS_ENTRIES,
  peerCodec,
  REASON_MAX,
  routeCodec,
  settingsCodec,
  type Endpoint,
  type Route,
  type Settings,
} from './abi.js'

export type MapKey = keyof typeof MapName

export function mapPinPath(pinDir: string, key: MapKey): string {
  return join(pinDir, MapName[key])
}

export interface Counter {
  dir: number
  reason: number
  packets: bigint
  bytes: bigint
}

const BATCH = 4096

export class EndpointMap {
  constructor(readonly map: MapFd) {}

  get(ip: string): Endpoint | null {
    const v = this.map.lookup(endpointCodec.encodeKey(ip))
    return v ? { ip, ...endpointCodec.decodeValue(v) } : null
  }

  set(e: Endpoint): void {
    this.map.update(endpointCodec.encodeKey(e.ip), endpointCodec.encodeValue(e))
  }

  delete(ip: string): boolean {
    return this.map.delete(endpointCodec.encodeKey(ip))
  }

  /** One batch syscall per BATCH entries. */
  setMany(eps: readonly Endpoint[]): void {
    for (let i = 0; i < eps.length; i += BATCH) {
      const chunk = eps.slice(i, i + BATCH)
      const keys = Buffer.alloc(chunk.length * IPV4_KEY_SIZE)
      const vals = Buffer.alloc(chunk.length * endpointCodec.size)
      chunk.forEach((e, j) => {
        endpointCodec.encodeKey(e.ip).copy(keys, j * IPV4_KEY_SIZE)
        endpointCodec.encodeValue(e, vals, j * endpointCodec.size)
      })
      this.map.updateBatch(keys, vals, chunk.length)
    }
  }

  deleteMany(ips: readonly string[]): void {
    for (let i = 0; i < ips.length; i += BATCH) {
      const chunk = ips.slice(i, i + BATCH)
      const keys = Buffer.alloc(chunk.length * IPV4_KEY_SIZE)
      chunk.forEach((ip, j) => endpointCodec.encodeKey(ip).copy(keys, j * IPV4_KEY_SIZE))
      this.map.deleteBatch(keys, chunk.length)
    }
  }

  *entries(): Generator<Endpoint> {
    for (const [k, v] of this.map.entries(BATCH)) yield { ip: endpointCodec.decodeKey(k), ...endpointCodec.decodeValue(v) }
  }

  list(): Endpoint[] {
    return sortByIp([...this.entries()], (e) => e.ip)
  }
}

/** podnet_peers: the node IPs of the routes map, the only senders whose
 * VXLAN the datapath decapsulates. RouteMap keeps it in step. */
export class PeerMap {
  constructor(readonly map: MapFd) {}

  has(ip: string): boolean {
    return this.map.lookup(peerCodec.encodeKey(ip)) !== null
  }

  add(ip: string): void {
    this.map.update(peerCodec.encodeKey(ip), peerCodec.encodeValue())
  }

  delete(ip: string): boolean {
    return this.map.delete(peerCodec.encodeKey(ip))
  }

  list(): string[] {
    return sortByIp(
      [...this.map.entries(BATCH)].map(([k]) => peerCodec.decodeKey(k)),
      (ip) => ip,
    )
  }
}

export class RouteMap {
  /** set once the kernel refuses batch operations on LPM tries */
  private static noBatch = false

  /** peers: kept in step when given (every DatapathMaps does); a bare
   * RouteMap on a foreign fd only touches the routes. */
  constructor(
    readonly map: MapFd,
    private readonly peers: PeerMap | null = null,
  ) {}

  get(cidr: string): Route | null {
    const v = this.map.lookup(routeCodec.encodeKey(cidr))
    return v ? { cidr, ...routeCodec.decodeValue(v) } : null
  }

  set(r: Route): void {
    this.peers?.add(r.nodeIp)
    this.map.update(routeCodec.encodeKey(r.cidr), routeCodec.encodeValue(r))
    this.prunePeers()
  }

  delete(cidr: string): boolean {
    const had = this.map.delete(routeCodec.encodeKey(cidr))
    this.prunePeers()
    return had
  }

  /** A peer is added before its first route (its VXLAN is accepted as soon
   * as the route exists) and removed after its last one is gone: one pass
   * over both maps, as cheap as the route listing every change does anyway. */
  private prunePeers(): void {
    if (!this.peers) return
    const used = new Set<string>()
    for (const r of this.entries()) used.add(r.nodeIp)
    for (const ip of this.peers.list()) if (!used.has(ip)) this.peers.delete(ip)
  }

  /** Batch updates where the kernel has them for LPM tries (6.x does);
   * one update per route where it answers EINVAL/ENOTSUPP. */
  setMany(routes: readonly Route[]): void {
    if (this.peers) for (const ip of new Set(routes.map((r) => r.nodeIp))) this.peers.add(ip)
    this.setManyRoutes(routes)
    if (routes.length) this.prunePeers()
  }

  private setManyRoutes(routes: readonly Route[]): void {
    for (let i = 0; i < routes.length; i += BATCH) {
      const chunk = routes.slice(i, i + BATCH)
      const { keySize, valueSize } = routeCodec
      const keys = Buffer.alloc(chunk.length * keySize)
      const vals = Buffer.alloc(chunk.length * valueSize)
      chunk.forEach((r, j) => {
        routeCodec.encodeKey(r.cidr, keys, j * keySize)
        routeCodec.encodeValue(r, vals, j * valueSize)
      })
      if (!RouteMap.noBatch) {
        try {
          this.map.updateBatch(keys, vals, chunk.length)
          continue
        } catch (e) {
          if (!isBpfError(e, 'EINVAL', 'ENOTSUPP', 'EOPNOTSUPP')) throw e
          RouteMap.noBatch = true
        }
      }
      for (let j = 0; j < chunk.length; j++) {
        this.map.update(keys.subarray(j * keySize, (j + 1) * keySize), vals.subarray(j * valueSize, (j + 1) * valueSize))
      }
    }
  }

  /** Batch deletes where the kernel has them (absent CIDRs are skipped),
   * one delete per route otherwise; returns how many were there. */
  deleteMany(cidrs: readonly string[]): number {
    const deleted = this.deleteManyRoutes(cidrs)
    if (cidrs.length) this.prunePeers()
    return deleted
  }

  private deleteManyRoutes(cidrs: readonly string[]): number {
    let deleted = 0
    for (let i = 0; i < cidrs.length; i += BATCH) {
      const chunk = cidrs.slice(i, i + BATCH)
      const { keySize } = routeCodec
      const keys = Buffer.alloc(chunk.length * keySize)
      chunk.forEach((c, j) => routeCodec.encodeKey(c, keys, j * keySize))
      if (!RouteMap.noBatch) {
        try {
          deleted += this.map.deleteBatch(keys, chunk.length)
          continue
        } catch (e) {
          if (!isBpfError(e, 'EINVAL', 'ENOTSUPP', 'EOPNOTSUPP')) throw e
          RouteMap.noBatch = true
        }
      }
      for (let j = 0; j < chunk.length; j++) if (this.map.delete(keys.subarray(j * keySize, (j + 1) * keySize))) deleted++
    }
    return deleted
  }

  *entries(): Generator<Route> {
    for (const [k, v] of this.map.entries(BATCH)) yield { cidr: routeCodec.decodeKey(k), ...routeCodec.decodeValue(v) }
  }

  list(): Route[] {
    return sortByIp([...this.entries()], (r) => r.cidr.slice(0, r.cidr.indexOf('/')))
  }
}

export class MetricsMap {
  constructor(readonly map: MapFd) {}

  /** Non-zero counters, summed over CPUs, read in one batch pass. */
  read(): Counter[] {
    const cpus = numPossibleCpus()
    const out: Counter[] = []
    for (const [k, v] of this.map.entries(METRICS_ENTRIES)) {
      let packets = 0n
      let bytes = 0n
      for (let c = 0; c < cpus; c++) {
        const m = metricCodec.decode(v, c * metricCodec.perCpuStride)
        packets += m.packets
        bytes += m.bytes
      }
      if (packets === 0n) continue
      const idx = k.readUInt32LE(0)
      const dir = Math.floor(idx / REASON_MAX)
      if (dir >= DIR_MAX) continue
      out.push({ dir, reason: idx % REASON_MAX, packets, bytes })
    }
    return out
  }
}

export class SettingsMap {
  constructor(readonly map: MapFd) {}

  /** podnet_settings is an array of one: its key is index 0 */
  private static key(): Buffer {
    return Buffer.alloc(4)
  }

  private read(): Settings {
    const v = this.map.lookup(SettingsMap.key())
    return v ? settingsCodec.decode(v) : { monitorFlags: 0, traceOwner: 0 }
  }

  private write(s: Settings): void {
    this.map.update(SettingsMap.key(), settingsCodec.encode(s))
  }

  get monitorFlags(): number {
    return this.read().monitorFlags
  }

  set monitorFlags(flags: number) {
    this.write({ ...this.read(), monitorFlags: flags })
  }

  /** pid of the tracing monitor that last turned tracing on (0: none recorded) */
  get traceOwner(): number {
    return this.read().traceOwner
  }

  set traceOwner(pid: number) {
    this.write({ ...this.read(), traceOwner: pid })
  }
}

/** The pinned maps of one node; close() releases the fds. */
export class DatapathMaps {
  readonly endpoints: EndpointMap
  readonly routes: RouteMap
  readonly peers: PeerMap
  readonly metrics: MetricsMap
  readonly settings: SettingsMap

  private constructor(
    readonly pinDir: string,
    private readonly fds: MapFd[],
  ) {
    const [e, r, p, m, s] = fds as [MapFd, MapFd, MapFd, MapFd, MapFd]
    this.endpoints = new EndpointMap(e)
    this.peers = new PeerMap(p)
    this.routes = new RouteMap(r, this.peers)
    this.metrics = new MetricsMap(m)
    this.settings = new SettingsMap(s)
  }

  static open(pinDir: string): DatapathMaps {
    const opened: MapFd[] = []
    try {
      for (const k of ['endpoints', 'routes', 'peers', 'metrics', 'settings'] as const) opened.push(MapFd.fromPin(mapPinPath(pinDir, k)))
      return new DatapathMaps(pinDir, opened)
    } catch (e) {
      for (const f of opened) f.close()
      throw e
    }
  }

  close(): void {
    for (const f of this.fds) f.close()
  }
}

/** Sorted by address, each address parsed once (not per comparison). */
function sortByIp<T>(xs: T[], ip: (x: T) => string): T[] {
  const keyed = xs.map((x) => ({ x, k: ipToInt(ip(x)) }))
  keyed.sort((a, b) => a.k - b.k)
  return keyed.map((e) => e.x)
}
