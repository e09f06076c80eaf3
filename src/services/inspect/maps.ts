// The pinned podnet maps of a node, listed and dumped. Keys and values are
// decoded with the BTF the kernel holds for each map (its btf_id and
// key/value type ids), so field names and layout come from the loaded
// program, not from a table kept here; only the rendering of well-known
// field shapes (IPv4 addresses, MACs, flags, reasons) is added on top.
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import {
  BPF_MAP_TYPE,
  MapFd,
  decodeValue,
  mapBtf,
  numPossibleCpus,
  type Btf,
  type BtfValue,
  type MapInfo,
} from '../../datapath/introspect.js'
import { UserError } from '../../errors.js'
import { MapName, MONITOR_F_TRACE, REASON_MAX, ROUTE_F_VXLAN } from '../../datapath/abi.js'
import { requireState } from '../node.js'
import { dirLabel, nboU32ToIp, reasonLabel } from './common.js'

const TYPE_NAMES = new Map<number, string>(Object.entries(BPF_MAP_TYPE).map(([k, v]) => [v, k.toLowerCase()]))
export function mapTypeName(t: number): string {
  return TYPE_NAMES.get(t) ?? `type-${t}`
}

export interface MapSummary {
  name: string
  id: number
  type: string
  keyType: string | null
  valueType: string | null
  keySize: number
  valueSize: number
  /** Entries present (hash, LPM trie), slots (arrays), null for ring buffers. */
  entries: number | null
  maxEntries: number
  pinPath: string
}

/** Pinned podnet_* maps in the pin dir, by name. */
export function pinnedMapNames(pinDir: string): string[] {
  return readdirSync(pinDir)
    .filter((f) => f.startsWith('podnet_'))
    .sort()
}

function isArray(type: number): boolean {
  return type === BPF_MAP_TYPE.ARRAY || type === BPF_MAP_TYPE.PERCPU_ARRAY
}

/** Loads the map's own BTF from the kernel (null if it was created without BTF). */
function countEntries(m: MapFd, info: MapInfo): number | null {
  if (info.type === BPF_MAP_TYPE.RINGBUF) return null
  if (isArray(info.type)) return info.maxEntries
  let n = 0
  // keys only, one at a time: constant memory whatever the map size
  for (let k = m.nextKey(null); k !== null; k = m.nextKey(k)) n++
  return n
}

export function summarizeMap(pinDir: string, name: string): MapSummary {
  const pinPath = join(pinDir, name)
  const m = MapFd.fromPin(pinPath)
  try {
    const info = m.info()
    const btf = mapBtf(info)
    return {
      name,
      id: info.id,
      type: mapTypeName(info.type),
      keyType: btf && info.btfKeyTypeId ? btf.typeName(info.btfKeyTypeId) : null,
      valueType: btf && info.btfValueTypeId ? btf.typeName(info.btfValueTypeId) : null,
      keySize: info.keySize,
      valueSize: info.valueSize,
      entries: countEntries(m, info),
      maxEntries: info.maxEntries,
      pinPath,
    }
  } finally {
    m.close()
  }
}

export function listMaps(pinDirFlag?: string): MapSummary[] {
  const state = requireState(pinDirFlag, { mapsOnly: true })
  return pinnedMapNames(state.pinDir).map((n) => summarizeMap(state.pinDir, n))
}

// ---- readable rendering of decoded values ----

export type Rendered = string | number | boolean | null | Rendered[] | { [k: string]: Rendered }

const IP_FIELD = /^(addr|ip|saddr|daddr|node_ip|nexthop)$/
const MAC_FIELD = /mac$/
/** Flag words whose bits the ABI header names. */
const FLAG_BITS: Record<string, Record<string, number>> = {
  'podnet_route.flags': { vxlan: ROUTE_F_VXLAN },
  'podnet_settings.monitor_flags': { trace: MONITOR_F_TRACE },
}

function flagNames(v: number, bits: Record<string, number>): string[] {
  const out: string[] = []
  let rest = v
  for (const [n, b] of Object.entries(bits)) {
    if (v & b) out.push(n)
    rest &= ~b
  }
  if (rest) out.push(`0x${rest.toString(16)}`)
  return out
}

function plain(v: BtfValue): Rendered {
  if (typeof v === 'bigint') return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString()
  if (Array.isArray(v)) return v.map(plain)
  if (typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]))
  return v
}

function isIntArray(v: BtfValue, len: number): v is number[] {
  return Array.isArray(v) && v.length === len && v.every((x) => typeof x === 'number')
}

/** A decoded struct with readable fields (IPs, MACs, CIDRs, flags, reasons). */
function renderValue(btf: Btf, typeId: number, v: BtfValue): Rendered {
  const t = btf.resolve(typeId)
  if (t.kind !== 'STRUCT' || typeof v !== 'object' || Array.isArray(v)) return plain(v)
  const o = v as Record<string, BtfValue>
  const out: Record<string, Rendered> = {}
  for (const f of btf.fields(typeId)) {
    const x = o[f.name]
    if (x === undefined) continue
    const bits = FLAG_BITS[`${t.name}.${f.name}`]
    if (IP_FIELD.test(f.name) && f.size === 4 && typeof x === 'number') out[f.name] = nboU32ToIp(x)
    else if (MAC_FIELD.test(f.name) && isIntArray(x, 6)) out[f.name] = x.map((b) => b.toString(16).padStart(2, '0')).join(':')
    else if (bits && typeof x === 'number') out[f.name] = flagNames(x, bits)
    else if (f.name === 'reason' && typeof x === 'number') out[f.name] = reasonLabel(x)
    else if (f.name === 'dir' && typeof x === 'number') out[f.name] = dirLabel(x)
    else out[f.name] = renderValue(btf, f.type, x)
  }
  return out
}

/** Keys: an LPM key {prefixlen, addr} is a CIDR; a bare u32 keyed by pod IP is an address. */
function renderKey(btf: Btf, typeId: number, v: BtfValue, mapName: string): Rendered {
  const t = btf.resolve(typeId)
  if (t.kind === 'STRUCT' && typeof v === 'object' && !Array.isArray(v)) {
    const o = v as Record<string, BtfValue>
    const names = t.members.map((m) => m.name)
    if (names.length === 2 && names.includes('prefixlen') && names.includes('addr')) {
      return `${nboU32ToIp(o.addr as number)}/${o.prefixlen as number}`
    }
    return renderValue(btf, typeId, v)
  }
  if (typeof v === 'number') {
    if (mapName === MapName.endpoints || mapName === MapName.peers) return nboU32ToIp(v)
    if (mapName === MapName.metrics) return `${dirLabel(Math.floor(v / REASON_MAX))}/${reasonLabel(v % REASON_MAX)}`
  }
  return plain(v)
}

/** Sums every integer field of per-CPU copies of one struct (counters). */
function sumValues(vals: BtfValue[]): BtfValue {
  const first = vals[0]!
  if (typeof first === 'number') return vals.reduce<number>((a, x) => a + (x as number), 0)
  if (typeof first === 'bigint') return vals.reduce<bigint>((a, x) => a + (x as bigint), 0n)
  if (typeof first === 'object' && !Array.isArray(first)) {
    const o: Record<string, BtfValue> = {}
    for (const k of Object.keys(first)) o[k] = sumValues(vals.map((v) => (v as Record<string, BtfValue>)[k]!))
    return o
  }
  return first
}

function isZero(v: BtfValue): boolean {
  if (typeof v === 'number') return v === 0
  if (typeof v === 'bigint') return v === 0n
  if (Array.isArray(v)) return v.every(isZero)
  return Object.values(v).every(isZero)
}

export interface DumpHeader {
  name: string
  id: number
  type: string
  keyType: string
  valueType: string
  maxEntries: number
  perCpu: boolean
  /** Why there are no entries to stream (ring buffer), or null. */
  note: string | null
}

export interface DumpEntry {
  key: Rendered
  value: Rendered
  /** Per-CPU maps: the value on each possible CPU (`value` is their sum). */
  perCpu?: Rendered[]
}

export interface MapDump {
  header: DumpHeader
  /** Streams decoded entries chunk by chunk; call close() when done. */
  entries: Generator<DumpEntry>
  /** Per-CPU arrays: all-zero slots left out so far. */
  skipped(): number
  close(): void
}

export function resolveMapName(arg: string, pinDir: string): string {
  const names = pinnedMapNames(pinDir)
  const full = arg.startsWith('podnet_') ? arg : `podnet_${arg}`
  if (!names.includes(full))
    throw new UserError(`no map "${arg}" in ${pinDir}`, `one of: ${names.join(', ')} (see \`podnet-bpf maps list\`)`)
  return full
}

/** Opens a map for a streaming dump. `all`: include all-zero per-CPU array slots. */
export function dumpMap(nameArg: string, o: { pinDir?: string; all?: boolean } = {}): MapDump {
  const state = requireState(o.pinDir, { mapsOnly: true })
  const name = resolveMapName(nameArg, state.pinDir)
  const m = MapFd.fromPin(join(state.pinDir, name))
  try {
    const info = m.info()
    const btf = mapBtf(info)
    const ring = info.type === BPF_MAP_TYPE.RINGBUF
    if (!ring && (!btf || !info.btfKeyTypeId || !info.btfValueTypeId)) {
      throw new UserError(
        `map ${name} has no BTF for its key and value`,
        'it was not created by a podnet-bpf object built with -g; re-attach',
      )
    }
    const perCpu = m.isPerCpu
    const header: DumpHeader = {
      name,
      id: info.id,
      type: mapTypeName(info.type),
      keyType: btf && info.btfKeyTypeId ? btf.typeName(info.btfKeyTypeId) : '-',
      valueType: btf && info.btfValueTypeId ? btf.typeName(info.btfValueTypeId) : '-',
      maxEntries: info.maxEntries,
      perCpu,
      note: ring ? 'a ring buffer holds a stream of records, not entries: watch it with `podnet-bpf monitor`' : null,
    }
    let skipped = 0
    const skipZero = perCpu && isArray(info.type) && !o.all
    function* gen(): Generator<DumpEntry> {
      if (ring || !btf) return
      const cpus = perCpu ? numPossibleCpus() : 1
      const stride = perCpu ? Math.ceil(info.valueSize / 8) * 8 : info.valueSize
      for (const [k, v] of m.entries(1024)) {
        const key = decodeValue(btf, info.btfKeyTypeId, k)
        if (perCpu) {
          const each = Array.from({ length: cpus }, (_, c) => decodeValue(btf, info.btfValueTypeId, v, c * stride))
          const sum = sumValues(each)
          if (skipZero && isZero(sum)) {
            skipped++
            continue
          }
          yield {
            key: renderKey(btf, info.btfKeyTypeId, key, name),
            value: renderValue(btf, info.btfValueTypeId, sum),
            perCpu: each.map((x) => renderValue(btf, info.btfValueTypeId, x)),
          }
        } else {
          yield {
            key: renderKey(btf, info.btfKeyTypeId, key, name),
            value: renderValue(btf, info.btfValueTypeId, decodeValue(btf, info.btfValueTypeId, v)),
          }
        }
      }
    }
    return { header, entries: gen(), skipped: () => skipped, close: () => m.close() }
  } catch (e) {
    m.close()
    throw e
  }
}
