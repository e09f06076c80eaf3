// SPDX-License-Identifier: Apache-2.0
// A BPF map by fd (from a pin, an id, or created here): element and batch ops.

import { check, checkLibc } from './check.js'
import { BpfError, isBpfError } from './errors.js'
import { cString, libbpf, libc } from './ffi.js'
import { BPF_MAP_TYPE } from './constants.js'

const ENOENT = 2

/*
 * struct bpf_map_info (linux/bpf.h; sizeof 88 in our header):
 *   0 type  4 id  8 key_size  12 value_size  16 max_entries  20 map_flags
 *  24 name[16]  40 ifindex  44 btf_vmlinux_value_type_id  48 netns_dev
 *  56 netns_ino  64 btf_id  68 btf_key_type_id  72 btf_value_type_id  80 map_extra
 */
const MAP_INFO_SIZE = 88

/*
 * struct bpf_map_create_opts (libbpf 1.1 bpf.h; sizeof 48):
 *   0 sz  8 btf_fd  12 btf_key_type_id  16 btf_value_type_id
 *  20 btf_vmlinux_value_type_id  24 inner_map_fd  28 map_flags  32 map_extra
 *  40 numa_node  44 map_ifindex
 */
const MAP_CREATE_OPTS_SIZE = 48

/*
 * struct bpf_map_batch_opts (libbpf 1.1 bpf.h; sizeof 24):
 *   0 sz  8 elem_flags (__u64)  16 flags (__u64)
 */
const BATCH_OPTS_SIZE = 24

export interface MapInfo {
  id: number
  type: number
  name: string
  keySize: number
  valueSize: number
  maxEntries: number
  flags: number
  btfId: number
  btfKeyTypeId: number
  btfValueTypeId: number
}

export interface BatchResult {
  /** count × keySize bytes. */
  keys: Buffer
  /** count × valueBufSize bytes (per-CPU maps: roundup(valueSize, 8) × possible CPUs per entry). */
  values: Buffer
  count: number
  /** Opaque token for the next call; null once the end of the map was reached. */
  nextBatch: Buffer | null
}

// Scratch buffers reused across calls (all FFI calls are synchronous).
const infoBuf = Buffer.alloc(MAP_INFO_SIZE)
const infoLen = Buffer.alloc(4)
const countBuf = Buffer.alloc(4)
const batchOpts = Buffer.alloc(BATCH_OPTS_SIZE)
batchOpts.writeBigUInt64LE(BigInt(BATCH_OPTS_SIZE), 0)

const PERCPU_TYPES = new Set<number>([
  BPF_MAP_TYPE.PERCPU_HASH,
  BPF_MAP_TYPE.PERCPU_ARRAY,
  BPF_MAP_TYPE.LRU_PERCPU_HASH,
  BPF_MAP_TYPE.PERCPU_CGROUP_STORAGE,
])

let possibleCpus = 0
function nCpus(): number {
  if (possibleCpus === 0) possibleCpus = check(libbpf().libbpf_num_possible_cpus(), 'libbpf_num_possible_cpus')
  return possibleCpus
}

/** bpf_obj_get_info_by_fd on a map fd. */
export function mapInfoByFd(fd: number): MapInfo {
  infoBuf.fill(0)
  infoLen.writeUInt32LE(MAP_INFO_SIZE, 0)
  check(libbpf().bpf_obj_get_info_by_fd(fd, infoBuf, infoLen), `bpf_obj_get_info_by_fd(map fd ${fd})`)
  return {
    type: infoBuf.readUInt32LE(0),
    id: infoBuf.readUInt32LE(4),
    keySize: infoBuf.readUInt32LE(8),
    valueSize: infoBuf.readUInt32LE(12),
    maxEntries: infoBuf.readUInt32LE(16),
    flags: infoBuf.readUInt32LE(20),
    name: cString(infoBuf, 24, 16),
    btfId: infoBuf.readUInt32LE(64),
    btfKeyTypeId: infoBuf.readUInt32LE(68),
    btfValueTypeId: infoBuf.readUInt32LE(72),
  }
}

interface MapShape {
  type: number
  keySize: number
  valueSize: number
  valueBufSize: number
  perCpu: boolean
}

/** A BPF map by fd. Owns its fd unless created with fromFd(fd, false). */
export class MapFd {
  private _fd: number
  private readonly owned: boolean
  private shape: MapShape | undefined

  private constructor(fd: number, owned: boolean) {
    this._fd = fd
    this.owned = owned
  }

  static fromPin(path: string): MapFd {
    return new MapFd(check(libbpf().bpf_obj_get(path), `bpf_obj_get(${path})`), true)
  }

  static fromId(id: number): MapFd {
    return new MapFd(check(libbpf().bpf_map_get_fd_by_id(id), `bpf_map_get_fd_by_id(${id})`), true)
  }

  /** Wrap an fd you already have (e.g. BpfObjectMap.fd()); `owned` decides whether close() closes it. */
  static fromFd(fd: number, owned = false): MapFd {
    return new MapFd(fd, owned)
  }

  /** bpf_map_create. LPM tries need flags = BPF_F_NO_PREALLOC. */
  static create(type: number, name: string, keySize: number, valueSize: number, maxEntries: number, flags = 0): MapFd {
    const o = Buffer.alloc(MAP_CREATE_OPTS_SIZE)
    o.writeBigUInt64LE(BigInt(MAP_CREATE_OPTS_SIZE), 0)
    o.writeUInt32LE(flags >>> 0, 28)
    const fd = libbpf().bpf_map_create(type, name, keySize, valueSize, maxEntries, o)
    return new MapFd(check(fd, `bpf_map_create(${name})`), true)
  }

  get fd(): number {
    if (this._fd < 0) throw new Error('MapFd is closed')
    return this._fd
  }

  info(): MapInfo {
    return mapInfoByFd(this.fd)
  }

  private get s(): MapShape {
    if (this.shape === undefined) {
      const i = this.info()
      const perCpu = PERCPU_TYPES.has(i.type)
      this.shape = {
        type: i.type,
        keySize: i.keySize,
        valueSize: i.valueSize,
        valueBufSize: perCpu ? Math.ceil(i.valueSize / 8) * 8 * nCpus() : i.valueSize,
        perCpu,
      }
    }
    return this.shape
  }

  get type(): number {
    return this.s.type
  }
  get keySize(): number {
    return this.s.keySize
  }
  get valueSize(): number {
    return this.s.valueSize
  }
  /** Bytes of one value as exchanged with the kernel (per-CPU: roundup(valueSize, 8) × possible CPUs). */
  get valueBufSize(): number {
    return this.s.valueBufSize
  }
  get isPerCpu(): boolean {
    return this.s.perCpu
  }

  private checkKey(key: Buffer, n = 1): void {
    if (key.length < this.s.keySize * n) throw new RangeError(`key buffer is ${key.length} bytes, map needs ${this.s.keySize * n}`)
  }
  private checkValue(value: Buffer, n = 1): void {
    const need = this.s.valueBufSize * n
    if (value.length < need) throw new RangeError(`value buffer is ${value.length} bytes, map needs ${need}`)
  }

  /** The value (a new Buffer), or null if the key is absent. */
  lookup(key: Buffer): Buffer | null {
    this.checkKey(key)
    const value = Buffer.alloc(this.s.valueBufSize)
    const ret = libbpf().bpf_map_lookup_elem(this.fd, key, value)
    if (ret === -ENOENT) return null
    check(ret, `bpf_map_lookup_elem(map fd ${this._fd})`)
    return value
  }

  /** flags: BPF_ANY (0), BPF_NOEXIST (1), BPF_EXIST (2), BPF_F_LOCK (4). */
  update(key: Buffer, value: Buffer, flags = 0): void {
    this.checkKey(key)
    this.checkValue(value)
    check(libbpf().bpf_map_update_elem(this.fd, key, value, flags), `bpf_map_update_elem(map fd ${this._fd})`)
  }

  /** False if the key was absent. */
  delete(key: Buffer): boolean {
    this.checkKey(key)
    const ret = libbpf().bpf_map_delete_elem(this.fd, key)
    if (ret === -ENOENT) return false
    check(ret, `bpf_map_delete_elem(map fd ${this._fd})`)
    return true
  }

  /** The key after `key` (null: the first key); null at the end. */
  nextKey(key: Buffer | null): Buffer | null {
    if (key !== null) this.checkKey(key)
    const next = Buffer.alloc(this.s.keySize)
    const ret = libbpf().bpf_map_get_next_key(this.fd, key, next)
    if (ret === -ENOENT) return null
    check(ret, `bpf_map_get_next_key(map fd ${this._fd})`)
    return next
  }

  /**
   * One BPF_MAP_LOOKUP_BATCH call for up to `count` entries, starting at
   * `inBatch` (null: the beginning). ENOENT means the end was reached: the
   * entries returned with it are valid and nextBatch is null. Hash maps fail
   * with ENOSPC when a bucket holds more than `count` entries.
   */
  lookupBatch(inBatch: Buffer | null, count: number): BatchResult {
    const { keySize, valueBufSize } = this.s
    // Hash maps use a __u32 bucket cursor, array maps a key: size it for both.
    const outBatch = Buffer.alloc(Math.max(keySize, 8))
    const keys = Buffer.alloc(keySize * count)
    const values = Buffer.alloc(valueBufSize * count)
    countBuf.writeUInt32LE(count, 0)
    const ret = libbpf().bpf_map_lookup_batch(this.fd, inBatch, outBatch, keys, values, countBuf, null)
    const n = countBuf.readUInt32LE(0)
    if (ret < 0 && ret !== -ENOENT) check(ret, `bpf_map_lookup_batch(map fd ${this._fd})`)
    return {
      keys: keys.subarray(0, n * keySize),
      values: values.subarray(0, n * valueBufSize),
      count: n,
      nextBatch: ret === -ENOENT ? null : outBatch,
    }
  }

  /** One BPF_MAP_UPDATE_BATCH call; `flags` is elem_flags (BPF_ANY/BPF_NOEXIST/BPF_EXIST). */
  updateBatch(keys: Buffer, values: Buffer, count: number, flags = 0): void {
    this.checkKey(keys, count)
    this.checkValue(values, count)
    countBuf.writeUInt32LE(count, 0)
    batchOpts.writeBigUInt64LE(BigInt(flags), 8)
    const ret = libbpf().bpf_map_update_batch(this.fd, keys, values, countBuf, batchOpts)
    if (ret < 0) {
      throw new BpfError(`bpf_map_update_batch(map fd ${this._fd}, ${countBuf.readUInt32LE(0)}/${count} done)`, -ret)
    }
  }

  /**
   * BPF_MAP_DELETE_BATCH: deletes the keys that exist, returns how many were
   * deleted. The kernel stops at the first absent key; we resume after it, so
   * this is one call unless keys are missing.
   */
  deleteBatch(keys: Buffer, count: number): number {
    const ks = this.s.keySize
    this.checkKey(keys, count)
    let deleted = 0
    let start = 0
    while (start < count) {
      const slice = keys.subarray(start * ks, count * ks)
      countBuf.writeUInt32LE(count - start, 0)
      batchOpts.writeBigUInt64LE(0n, 8)
      const ret = libbpf().bpf_map_delete_batch(this.fd, slice, countBuf, batchOpts)
      const n = countBuf.readUInt32LE(0)
      deleted += n
      if (ret === -ENOENT) {
        start += n + 1 // skip the absent key
        continue
      }
      check(ret, `bpf_map_delete_batch(map fd ${this._fd})`)
      break
    }
    return deleted
  }

  /**
   * Streams all entries, `chunk` at a time (BPF_MAP_LOOKUP_BATCH), falling
   * back to get_next_key + lookup for maps without batch support (LPM trie,
   * …). Yielded Buffers are views of per-batch buffers (never reused).
   */
  *entries(chunk = 256): Generator<[Buffer, Buffer]> {
    const { keySize, valueBufSize } = this.s
    let batch: Buffer | null = null
    let first = true
    let size = chunk
    for (;;) {
      let r: BatchResult
      try {
        r = this.lookupBatch(batch, size)
      } catch (e) {
        if (first && isBpfError(e, 'EINVAL', 'ENOTSUPP', 'EOPNOTSUPP')) {
          yield* this.entriesByKey()
          return
        }
        if (isBpfError(e, 'ENOSPC') && size < 1 << 20) {
          size *= 2 // a hash bucket larger than the chunk
          continue
        }
        throw e
      }
      first = false
      for (let i = 0; i < r.count; i++) {
        yield [r.keys.subarray(i * keySize, (i + 1) * keySize), r.values.subarray(i * valueBufSize, (i + 1) * valueBufSize)]
      }
      if (r.nextBatch === null) return
      batch = r.nextBatch
    }
  }

  /** Iteration by get_next_key + lookup (entries deleted meanwhile are skipped). */
  *entriesByKey(): Generator<[Buffer, Buffer]> {
    let key: Buffer | null = null
    for (;;) {
      const next = this.nextKey(key)
      if (next === null) return
      const v = this.lookup(next)
      if (v !== null) yield [next, v]
      key = next
    }
  }

  /** BPF_MAP_FREEZE: no more writes from user space. */
  freeze(): void {
    check(libbpf().bpf_map_freeze(this.fd), `bpf_map_freeze(map fd ${this._fd})`)
  }

  /** Idempotent. */
  close(): void {
    if (this._fd < 0) return
    const fd = this._fd
    this._fd = -1
    if (this.owned) checkLibc(libc().close(fd), `close(${fd})`)
  }
}
