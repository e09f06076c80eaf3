// Typed access to the pinned datapath maps of one node (one pin dir).
import { join } from 'node:path'
import { isBpfError, MapFd, numPossibleCpus } from '../libbpf/index.js'
import { ipToInt } from '../util/ipv4.js'
import {
  DIR_MAX,
  endpointCodec,
  EndpointLayout,
  MapName,
  METRICS_ENTRIES,
  REASON_MAX,
  routeCodec,
  type Endpoint,
  type Route,
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
      const keys = Buffer.alloc(chunk.length * 4)
      const vals = Buffer.alloc(chunk.length * EndpointLayout.size)
      chunk.forEach((e, j) => {
        endpointCodec.encodeKey(e.ip).copy(keys, j * 4)
        endpointCodec.encodeValue(e, vals, j * EndpointLayout.size)
      })
      this.map.updateBatch(keys, vals, chunk.length)
    }
  }

  deleteMany(ips: readonly string[]): void {
    for (let i = 0; i < ips.length; i += BATCH) {
      const chunk = ips.slice(i, i + BATCH)
      const keys = Buffer.alloc(chunk.length * 4)
      chunk.forEach((ip, j) => endpointCodec.encodeKey(ip).copy(keys, j * 4))
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

export class RouteMap {
  /** set once the kernel refuses batch operations on LPM tries */
  private static noBatch = false

  constructor(readonly map: MapFd) {}

  get(cidr: string): Route | null {
    const v = this.map.lookup(routeCodec.encodeKey(cidr))
    return v ? { cidr, ...routeCodec.decodeValue(v) } : null
  }

  set(r: Route): void {
    this.map.update(routeCodec.encodeKey(r.cidr), routeCodec.encodeValue(r))
  }

  delete(cidr: string): boolean {
    return this.map.delete(routeCodec.encodeKey(cidr))
  }

  /** Batch updates where the kernel has them for LPM tries (6.x does);
   * one update per route where it answers EINVAL/ENOTSUPP. */
  setMany(routes: readonly Route[]): void {
    for (let i = 0; i < routes.length; i += BATCH) {
      const chunk = routes.slice(i, i + BATCH)
      const keys = Buffer.alloc(chunk.length * 8)
      const vals = Buffer.alloc(chunk.length * 8)
      chunk.forEach((r, j) => {
        routeCodec.encodeKey(r.cidr, keys, j * 8)
        routeCodec.encodeValue(r, vals, j * 8)
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
      for (let j = 0; j < chunk.length; j++) this.map.update(keys.subarray(j * 8, j * 8 + 8), vals.subarray(j * 8, j * 8 + 8))
    }
  }

  /** Batch deletes where the kernel has them (absent CIDRs are skipped),
   * one delete per route otherwise; returns how many were there. */
  deleteMany(cidrs: readonly string[]): number {
    let deleted = 0
    for (let i = 0; i < cidrs.length; i += BATCH) {
      const chunk = cidrs.slice(i, i + BATCH)
      const keys = Buffer.alloc(chunk.length * 8)
      chunk.forEach((c, j) => routeCodec.encodeKey(c, keys, j * 8))
      if (!RouteMap.noBatch) {
        try {
          deleted += this.map.deleteBatch(keys, chunk.length)
          continue
        } catch (e) {
          if (!isBpfError(e, 'EINVAL', 'ENOTSUPP', 'EOPNOTSUPP')) throw e
          RouteMap.noBatch = true
        }
      }
      for (let j = 0; j < chunk.length; j++) if (this.map.delete(keys.subarray(j * 8, j * 8 + 8))) deleted++
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
        packets += v.readBigUInt64LE(c * 16)
        bytes += v.readBigUInt64LE(c * 16 + 8)
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

  get monitorFlags(): number {
    const v = this.map.lookup(Buffer.alloc(4))
    return v ? v.readUInt32LE(0) : 0
  }

  set monitorFlags(flags: number) {
    const v = Buffer.alloc(8)
    v.writeUInt32LE(flags, 0)
    this.map.update(Buffer.alloc(4), v)
  }
}

/** The pinned maps of one node; close() releases the fds. */
export class DatapathMaps {
  readonly endpoints: EndpointMap
  readonly routes: RouteMap
  readonly metrics: MetricsMap
  readonly settings: SettingsMap

  private constructor(
    readonly pinDir: string,
    private readonly fds: MapFd[],
  ) {
    const [e, r, m, s] = fds as [MapFd, MapFd, MapFd, MapFd]
    this.endpoints = new EndpointMap(e)
    this.routes = new RouteMap(r)
    this.metrics = new MetricsMap(m)
    this.settings = new SettingsMap(s)
  }

  static open(pinDir: string): DatapathMaps {
    const opened: MapFd[] = []
    try {
      for (const k of ['endpoints', 'routes', 'metrics', 'settings'] as const) opened.push(MapFd.fromPin(mapPinPath(pinDir, k)))
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
