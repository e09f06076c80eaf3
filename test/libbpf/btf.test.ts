// SPDX-License-Identifier: Apache-2.0
// The pure-TS BTF parser: against vmlinux BTF (every kind, cross-checked with
// bpftool), the test object's struct layouts, and hand-built blobs for decoding.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BTF_KIND, btfRawFromFile, decodeValue, kernelBtfRaw, parseBtf, type BtfKind } from '../../src/libbpf/index.js'
import { execFileSync } from 'node:child_process'
import { compileFixture, tempEnv, type TempEnv } from './helpers.js'

/** Minimal BTF writer for tests (little-endian, version 1). */
class BtfBuilder {
  private strs: Buffer[] = [Buffer.from([0])]
  private strLen = 1
  private recs: Buffer[] = []
  private n = 0

  str(s: string): number {
    if (s === '') return 0
    const off = this.strLen
    const b = Buffer.from(`${s}\0`)
    this.strs.push(b)
    this.strLen += b.length
    return off
  }

  /** Adds a type record; returns its id. */
  type(name: string, kind: BtfKind, vlen: number, kflag: boolean, sizeOrType: number, extra: number[] = []): number {
    const b = Buffer.alloc(12 + 4 * extra.length)
    b.writeUInt32LE(this.str(name), 0)
    b.writeUInt32LE((((kflag ? 1 : 0) << 31) | (BTF_KIND[kind] << 24) | vlen) >>> 0, 4)
    b.writeUInt32LE(sizeOrType >>> 0, 8)
    extra.forEach((x, i) => b.writeUInt32LE(x >>> 0, 12 + 4 * i))
    this.recs.push(b)
    return ++this.n
  }

  build(): Buffer {
    const types = Buffer.concat(this.recs)
    const strings = Buffer.concat(this.strs)
    const hdr = Buffer.alloc(24)
    hdr.writeUInt16LE(0xeb9f, 0)
    hdr[2] = 1
    hdr.writeUInt32LE(24, 4)
    hdr.writeUInt32LE(0, 8)
    hdr.writeUInt32LE(types.length, 12)
    hdr.writeUInt32LE(types.length, 16)
    hdr.writeUInt32LE(strings.length, 20)
    return Buffer.concat([hdr, types, strings])
  }
}

let env: TempEnv
let objPath: string

beforeAll(() => {
  env = tempEnv('pn-libbpf-btf')
  objPath = compileFixture('t_prog', env.dir)
})

afterAll(() => env?.cleanup())

describe('parseBtf on vmlinux BTF', () => {
  it('reads every type with the same kinds bpftool reports', () => {
    const btf = parseBtf(kernelBtfRaw())
    const dump = execFileSync('bpftool', ['btf', 'dump', 'file', '/sys/kernel/btf/vmlinux'], {
      encoding: 'utf8',
      maxBuffer: 1 << 30,
    })
    const tool = new Map<string, number>()
    let maxId = 0
    for (const m of dump.matchAll(/^\[(\d+)\] ([A-Z_0-9]+) /gm)) {
      tool.set(m[2]!, (tool.get(m[2]!) ?? 0) + 1)
      maxId = Math.max(maxId, Number(m[1]))
    }
    expect(btf.types.length).toBe(maxId + 1)
    const mine = new Map<string, number>()
    for (const t of btf.types.slice(1)) mine.set(t.kind, (mine.get(t.kind) ?? 0) + 1)
    expect(mine).toEqual(tool)
  }, 60_000)

  it('lays out kernel structs as the uapi headers do', () => {
    const btf = parseBtf(kernelBtfRaw())
    const skb = btf.findByName('__sk_buff', 'STRUCT')!
    const cb = btf.fields(skb.id).find((f) => f.name === 'cb')!
    expect([cb.offset, cb.size, btf.typeName(cb.type)]).toEqual([48, 20, '__u32[5]'])

    const ip = btf.findByName('iphdr', 'STRUCT')!
    const fields = btf.fields(ip.id)
    const ihl = fields.find((f) => f.name === 'ihl')!
    const version = fields.find((f) => f.name === 'version')!
    expect([ihl.bitOffset, ihl.bitfieldSize, version.bitOffset, version.bitfieldSize]).toEqual([0, 4, 4, 4])
    expect(btf.resolveSize(ip.id)).toBe(20)
    // iphdr's saddr/daddr live in an anonymous union (6.x): decoding merges it
    const hdr = Buffer.from('450000540000400040010000c0a80001c0a80002', 'hex')
    const v = decodeValue(btf, ip.id, hdr) as Record<string, unknown>
    expect(v['version']).toBe(4)
    expect(v['ihl']).toBe(5)
    expect(v['ttl']).toBe(64)
    expect(v['saddr']).toBe(0x0100a8c0)

    const e64 = btf.types.find((t) => t.kind === 'ENUM64')
    expect(e64 && e64.kind === 'ENUM64' && typeof e64.values[0]?.value).toBe('bigint')
    expect(btf.findAllByName('sk_buff', 'STRUCT').length).toBe(1)
  }, 60_000)
})

describe('parseBtf on the test object', () => {
  it('gives member names and offsets of the map value struct', () => {
    const btf = parseBtf(btfRawFromFile(objPath))
    const t = btf.findByName('t_val', 'STRUCT')!
    expect(t.size).toBe(32)
    expect(btf.fields(t.id).map((f) => [f.name, f.offset, f.size, f.bitfieldSize])).toEqual([
      ['a', 0, 4, 0],
      ['b', 4, 2, 0],
      ['mac', 6, 6, 0],
      ['d', 16, 8, 0],
      ['flag', 24, 4, 1],
      ['level', 24, 4, 7],
      ['neg', 28, 4, 0],
    ])
    expect(btf.typeName(t.members[2]!.type)).toBe('__u8[6]')
    expect(btf.findByName('t_ret', 'FUNC')).toBeDefined()
    expect(btf.findByName('t_pinned', 'VAR')).toBeDefined()
  })
})

describe('decodeValue', () => {
  it('decodes every value kind', () => {
    const b = new BtfBuilder()
    const u32 = b.type('unsigned int', 'INT', 0, false, 4, [32])
    const s8 = b.type('signed char', 'INT', 0, false, 1, [(1 << 24) | 8])
    const u64 = b.type('unsigned long long', 'INT', 0, false, 8, [64])
    const s64 = b.type('long long', 'INT', 0, false, 8, [(1 << 24) | 64])
    const u128 = b.type('__int128 unsigned', 'INT', 0, false, 16, [128])
    const dbl = b.type('double', 'FLOAT', 0, false, 8)
    const flt = b.type('float', 'FLOAT', 0, false, 4)
    const td = b.type('__u32', 'TYPEDEF', 0, false, u32)
    const cv = b.type('', 'CONST', 0, false, td)
    const vol = b.type('', 'VOLATILE', 0, false, cv)
    const tag = b.type('user', 'TYPE_TAG', 0, false, vol)
    const ptr = b.type('', 'PTR', 0, false, u32)
    const restr = b.type('', 'RESTRICT', 0, false, ptr)
    const arr = b.type('', 'ARRAY', 0, false, 0, [s8, u32, 3])
    const en = b.type('sign', 'ENUM', 2, true, 4, [b.str('NEG'), -1, b.str('POS'), 1])
    const en64 = b.type('big', 'ENUM64', 1, false, 8, [b.str('HUGE'), 0, 1])
    const inner = b.type('', 'STRUCT', 2, false, 8, [b.str('x'), u32, 0, b.str('y'), u32, 32])
    const un = b.type('', 'UNION', 2, false, 8, [b.str('w'), u64, 0, b.str('half'), u32, 0])
    // struct s { u32 a; s8 c[3]; u8 pad; float f; enum sign e; double d; u64 q; s64 neg;
    //            struct { u32 x, y; }; union { u64 w; u32 half; } u; big e64; u128 wide; u32 *p; tag u32 t; legacy:4 }
    const legacyBits = b.type('unsigned int', 'INT', 0, false, 4, [4]) // 4-bit int (pre-kflag bitfields)
    const s = b.type('s', 'STRUCT', 15, false, 96, [
      b.str('a'),
      tag,
      0,
      b.str('c'),
      arr,
      32,
      b.str('f'),
      flt,
      64,
      b.str('e'),
      en,
      96,
      b.str('d'),
      dbl,
      128,
      b.str('q'),
      u64,
      192,
      b.str('neg'),
      s64,
      256,
      0,
      inner,
      320,
      b.str('u'),
      un,
      384,
      b.str('e64'),
      en64,
      448,
      b.str('wide'),
      u128,
      512,
      b.str('p'),
      restr,
      640,
      b.str('t'),
      td,
      704,
      b.str('lg'),
      legacyBits,
      740,
      b.str('end'),
      u32,
      736,
    ])
    const kbits = b.type('kb', 'STRUCT', 2, true, 4, [b.str('lo'), s8, (3 << 24) | 0, b.str('hi'), u32, (5 << 24) | 3])
    const fwd = b.type('later', 'FWD', 0, true, 0)
    const proto = b.type('', 'FUNC_PROTO', 1, false, u32, [b.str('arg'), u32])
    const fn = b.type('f', 'FUNC', 1, false, proto)
    const v = b.type('gv', 'VAR', 0, false, u32, [1])
    const sec = b.type('.data', 'DATASEC', 1, false, 4, [v, 0, 4])
    const dtag = b.type('ctx', 'DECL_TAG', 0, false, s, [-1 >>> 0])

    const btf = parseBtf(b.build())
    expect(btf.types.length).toBe(dtag + 1)
    expect(btf.get(fwd)).toMatchObject({ kind: 'FWD', union: true, name: 'later' })
    expect(btf.get(fn)).toMatchObject({ kind: 'FUNC', type: proto, linkage: 1 })
    expect(btf.get(proto)).toMatchObject({ kind: 'FUNC_PROTO', params: [{ name: 'arg', type: u32 }] })
    expect(btf.get(dtag)).toMatchObject({ kind: 'DECL_TAG', componentIdx: -1, type: s })
    expect(btf.get(en)).toMatchObject({
      signed: true,
      values: [
        { name: 'NEG', value: -1 },
        { name: 'POS', value: 1 },
      ],
    })
    expect(btf.get(en64)).toMatchObject({ values: [{ name: 'HUGE', value: 1n << 32n }] })
    expect(btf.resolveSize(s)).toBe(96)
    expect(btf.resolveSize(arr)).toBe(3)
    expect(btf.typeName(tag)).toBe('volatile const __u32')
    expect(btf.typeName(restr)).toBe('restrict unsigned int *')

    const buf = Buffer.alloc(96)
    buf.writeUInt32LE(0xdeadbeef, 0)
    buf.writeInt8(-2, 4)
    buf.writeInt8(3, 5)
    buf.writeInt8(-128, 6)
    buf.writeFloatLE(1.5, 8)
    buf.writeInt32LE(-1, 12)
    buf.writeDoubleLE(-2.25, 16)
    buf.writeBigUInt64LE(0xffffffffffffffffn, 24)
    buf.writeBigInt64LE(-5n, 32)
    buf.writeUInt32LE(10, 40)
    buf.writeUInt32LE(20, 44)
    buf.writeBigUInt64LE(0x1122334455667788n, 48)
    buf.writeBigUInt64LE(1n << 32n, 56)
    buf.writeBigUInt64LE(1n, 64)
    buf.writeBigUInt64LE(2n, 72)
    buf.writeBigUInt64LE(0x7f0000001000n, 80)
    buf.writeUInt32LE(0xab, 88)
    buf.writeUInt32LE(0x70 | 0x123000, 92) // lg = bits 4..7 = 7; end = whole word
    expect(decodeValue(btf, s, buf)).toEqual({
      a: 0xdeadbeef,
      c: [-2, 3, -128],
      f: 1.5,
      e: -1,
      d: -2.25,
      q: 0xffffffffffffffffn,
      neg: -5n,
      x: 10,
      y: 20,
      u: { w: 0x1122334455667788n, half: 0x55667788 },
      e64: 1n << 32n,
      wide: (2n << 64n) | 1n,
      p: 0x7f0000001000n,
      t: 0xab,
      lg: 7,
      end: 0x123070,
    })

    const kb = Buffer.alloc(4)
    kb.writeUInt32LE((0b10110 << 3) | 0b101, 0) // lo (signed 3 bits) = -3, hi (5 bits at 3) = 22
    expect(decodeValue(btf, kbits, kb)).toEqual({ lo: -3, hi: 22 })
    expect(decodeValue(btf, sec, Buffer.from([7, 0, 0, 0]))).toEqual({ gv: 7 })
    expect(() => decodeValue(btf, s, Buffer.alloc(10))).toThrow(RangeError)
    expect(() => decodeValue(btf, fn, buf)).toThrow(/cannot decode FUNC/)
  })

  it('rejects blobs that are not BTF', () => {
    expect(() => parseBtf(Buffer.alloc(24))).toThrow(/bad magic/)
    expect(() => parseBtf(Buffer.alloc(4))).toThrow(/too short/)
  })
})
