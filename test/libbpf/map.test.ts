// SPDX-License-Identifier: Apache-2.0
// MapFd against the real kernel: CRUD, flags, batch ops, streaming iteration
// (hash, per-CPU array, LPM trie), pins, ids and error codes.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { join } from 'node:path'
import {
  BPF_ANY,
  BPF_EXIST,
  BPF_F_NO_PREALLOC,
  BPF_MAP_TYPE,
  BPF_NOEXIST,
  MapFd,
  closeFd,
  numPossibleCpus,
  objGet,
  objPin,
} from '../../src/libbpf/index.js'
import { tempEnv, u32, type TempEnv } from './helpers.js'

let env: TempEnv
const maps: MapFd[] = []

function create(type: number, name: string, k: number, v: number, max: number, flags = 0): MapFd {
  const m = MapFd.create(type, name, k, v, max, flags)
  maps.push(m)
  return m
}

function u64(n: bigint | number): Buffer {
  const b = Buffer.alloc(8)
  b.writeBigUInt64LE(BigInt(n), 0)
  return b
}

/** LPM key {prefixlen u32, addr[4]} for an IPv4 prefix. */
function lpmKey(cidr: string): Buffer {
  const [addr, len] = cidr.split('/') as [string, string]
  const k = Buffer.alloc(8)
  k.writeUInt32LE(Number(len), 0)
  addr.split('.').forEach((o, i) => (k[4 + i] = Number(o)))
  return k
}

beforeAll(() => {
  env = tempEnv('pn-libbpf-map')
})

afterAll(() => {
  for (const m of maps) m.close()
  env?.cleanup()
})

describe('MapFd on a hash map', () => {
  it('creates, updates, looks up, iterates and deletes', () => {
    const m = create(BPF_MAP_TYPE.HASH, 't_hash', 4, 8, 128)
    expect(m.info()).toMatchObject({ type: BPF_MAP_TYPE.HASH, name: 't_hash', keySize: 4, valueSize: 8, maxEntries: 128, flags: 0 })
    expect(m.lookup(u32(1))).toBeNull()
    m.update(u32(1), u64(100))
    expect(m.lookup(u32(1))?.readBigUInt64LE(0)).toBe(100n)
    m.update(u32(1), u64(101), BPF_EXIST)
    expect(() => m.update(u32(1), u64(1), BPF_NOEXIST)).toThrow(
      expect.objectContaining({ code: 'EEXIST', op: expect.stringContaining('bpf_map_update_elem') }),
    )
    expect(() => m.update(u32(2), u64(1), BPF_EXIST)).toThrow(expect.objectContaining({ code: 'ENOENT' }))
    m.update(u32(2), u64(200), BPF_ANY)
    const keys: number[] = []
    for (let k = m.nextKey(null); k !== null; k = m.nextKey(k)) keys.push(k.readUInt32LE(0))
    expect(keys.sort()).toEqual([1, 2])
    expect(m.delete(u32(1))).toBe(true)
    expect(m.delete(u32(1))).toBe(false)
    expect(() => m.lookup(Buffer.alloc(2))).toThrow(RangeError)
  })

  it('does batch update, lookup (to the end) and delete in single calls', () => {
    const m = create(BPF_MAP_TYPE.HASH, 't_batch', 4, 8, 1024)
    const n = 300
    const keys = Buffer.alloc(4 * n)
    const values = Buffer.alloc(8 * n)
    for (let i = 0; i < n; i++) {
      keys.writeUInt32LE(i + 1, 4 * i)
      values.writeBigUInt64LE(BigInt((i + 1) * 10), 8 * i)
    }
    m.updateBatch(keys, values, n)
    // batch elem_flags only accept BPF_F_LOCK (generic_map_update_batch)
    expect(() => m.updateBatch(keys, values, 1, BPF_NOEXIST)).toThrow(expect.objectContaining({ code: 'EINVAL' }))

    const seen = new Map<number, bigint>()
    let batch: Buffer | null = null
    let calls = 0
    for (;;) {
      const r = m.lookupBatch(batch, 64)
      calls++
      for (let i = 0; i < r.count; i++) seen.set(r.keys.readUInt32LE(4 * i), r.values.readBigUInt64LE(8 * i))
      if (r.nextBatch === null) break
      batch = r.nextBatch
    }
    expect(calls).toBeGreaterThanOrEqual(5)
    expect(seen.size).toBe(n)
    expect(seen.get(7)).toBe(70n)

    const streamed = [...m.entries(50)].map(([k, v]) => [k.readUInt32LE(0), v.readBigUInt64LE(0)] as const)
    expect(new Map(streamed)).toEqual(seen)

    // delete 1..100 plus two absent keys in the middle: all present ones go
    const del = Buffer.alloc(4 * 102)
    for (let i = 0; i < 50; i++) del.writeUInt32LE(i + 1, 4 * i)
    del.writeUInt32LE(9999, 4 * 50)
    del.writeUInt32LE(9998, 4 * 51)
    for (let i = 50; i < 100; i++) del.writeUInt32LE(i + 1, 4 * (i + 2))
    expect(m.deleteBatch(del, 102)).toBe(100)
    expect([...m.entries()].length).toBe(200)
    expect(m.lookup(u32(50))).toBeNull()
    expect(m.lookup(u32(101))).not.toBeNull()
  })

  it('streams an empty map as nothing', () => {
    const m = create(BPF_MAP_TYPE.HASH, 't_empty', 4, 4, 8)
    expect([...m.entries()]).toEqual([])
    const r = m.lookupBatch(null, 8)
    expect(r.count).toBe(0)
    expect(r.nextBatch).toBeNull()
  })

  it('grows the chunk when a hash bucket does not fit (ENOSPC)', () => {
    const m = create(BPF_MAP_TYPE.HASH, 't_small', 4, 4, 4096)
    for (let i = 0; i < 3000; i++) m.update(u32(i), u32(i))
    expect([...m.entries(1)].length).toBe(3000)
  })
})

describe('MapFd on a per-CPU array', () => {
  it('exchanges one slot per possible CPU, rounded up to 8 bytes', () => {
    const cpus = numPossibleCpus()
    const m = create(BPF_MAP_TYPE.PERCPU_ARRAY, 't_pcpu', 4, 12, 4)
    expect(m.isPerCpu).toBe(true)
    expect(m.valueBufSize).toBe(16 * cpus)
    const v = Buffer.alloc(16 * cpus)
    for (let c = 0; c < cpus; c++) v.writeUInt32LE(c + 1, 16 * c)
    m.update(u32(2), v)
    const got = m.lookup(u32(2))!
    expect(got.length).toBe(16 * cpus)
    for (let c = 0; c < cpus; c++) expect(got.readUInt32LE(16 * c)).toBe(c + 1)

    const r = m.lookupBatch(null, 4)
    expect(r.count).toBe(4)
    expect(r.values.length).toBe(4 * 16 * cpus)
    expect(r.values.readUInt32LE(2 * 16 * cpus)).toBe(1)

    const keys = Buffer.concat([u32(0), u32(1)])
    const vals = Buffer.alloc(2 * 16 * cpus, 0x01)
    m.updateBatch(keys, vals, 2)
    const all = [...m.entries(3)]
    expect(all.map(([k]) => k.readUInt32LE(0))).toEqual([0, 1, 2, 3])
    expect(all[0]![1].equals(Buffer.alloc(16 * cpus, 0x01))).toBe(true)
    expect(() => m.delete(u32(0))).toThrow(expect.objectContaining({ code: 'EINVAL' }))
  })
})

describe('MapFd on an LPM trie', () => {
  it('streams all prefixes and finds the longest match', () => {
    const m = create(BPF_MAP_TYPE.LPM_TRIE, 't_lpm', 8, 4, 16, BPF_F_NO_PREALLOC)
    const cidrs = ['10.0.0.0/8', '10.1.0.0/16', '192.168.1.0/24', '0.0.0.0/0']
    cidrs.forEach((c, i) => m.update(lpmKey(c), u32(i)))
    // longest-prefix lookup
    expect(m.lookup(lpmKey('10.1.2.3/32'))?.readUInt32LE(0)).toBe(1)
    expect(m.lookup(lpmKey('10.2.2.3/32'))?.readUInt32LE(0)).toBe(0)
    const got = [...m.entries(2)].map(([k, v]) => `${k.subarray(4).join('.')}/${k.readUInt32LE(0)}=${v.readUInt32LE(0)}`)
    expect(got.sort()).toEqual(['0.0.0.0/0=3', '10.0.0.0/8=0', '10.1.0.0/16=1', '192.168.1.0/24=2'])
    expect(m.delete(lpmKey('10.1.0.0/16'))).toBe(true)
    expect([...m.entries()].length).toBe(3)
  })
})

describe('MapFd iteration fallback', () => {
  it('iterates by key when the map type has no batch lookup (ENOTSUPP)', () => {
    const m = create(BPF_MAP_TYPE.DEVMAP, 't_devmap', 4, 4, 4)
    expect(() => m.lookupBatch(null, 4)).toThrow(expect.objectContaining({ code: 'ENOTSUPP' }))
    m.update(u32(1), u32(1)) // slot 1 → lo
    m.update(u32(3), u32(1))
    const got = [...m.entries(2)].map(([k, v]) => [k.readUInt32LE(0), v.readUInt32LE(0)])
    expect(got).toEqual([
      [1, 1],
      [3, 1],
    ])
    const lpm = create(BPF_MAP_TYPE.LPM_TRIE, 't_lpm2', 8, 4, 4, BPF_F_NO_PREALLOC)
    lpm.update(lpmKey('10.0.0.0/8'), u32(7))
    expect([...lpm.entriesByKey()].map(([, v]) => v.readUInt32LE(0))).toEqual([7])
  })
})

describe('MapFd by pin and id', () => {
  it('opens a pinned map and a map by id; freezes', () => {
    const m = create(BPF_MAP_TYPE.ARRAY, 't_arr', 4, 4, 2)
    const pin = join(env.bpffs, 't_arr')
    objPin(m.fd, pin)
    const byPin = MapFd.fromPin(pin)
    const byId = MapFd.fromId(m.info().id)
    byPin.update(u32(1), u32(5))
    expect(byId.lookup(u32(1))?.readUInt32LE(0)).toBe(5)
    const raw = objGet(pin)
    expect(MapFd.fromFd(raw).info().id).toBe(m.info().id)
    closeFd(raw)
    byPin.freeze()
    expect(() => m.update(u32(1), u32(6))).toThrow(expect.objectContaining({ code: 'EPERM' }))
    byPin.close()
    byPin.close()
    byId.close()
    expect(() => byId.fd).toThrow(/closed/)
  })
})
