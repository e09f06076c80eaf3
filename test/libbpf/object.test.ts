// SPDX-License-Identifier: Apache-2.0
// BpfObject against the real kernel: open with pin root, .rodata config,
// pinned map reuse, prog info, BPF_PROG_TEST_RUN, ring buffer, BTF of maps.

import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  BPF_MAP_TYPE,
  BpfError,
  BpfObject,
  MapFd,
  ProgFd,
  RingBuffer,
  btfRawFromFile,
  btfRawFromKernel,
  decodeValue,
  enableBpfStats,
  closeFd,
  parseBtf,
  progTestRun,
  objGet,
} from '../../src/libbpf/index.js'
import { compileFixture, packet, run, skbCtx, tempEnv, u32, type TempEnv } from './helpers.js'

let env: TempEnv
let objPath: string
const objs: BpfObject[] = []

function open(pinRoot = env.bpffs): BpfObject {
  const o = BpfObject.open(objPath, { pinRoot })
  objs.push(o)
  return o
}

/** struct t_val (32 bytes) as laid out by the fixture. */
function tVal(v: { a: number; b?: number; mac?: number[]; d?: bigint; flag?: number; level?: number; neg?: number }): Buffer {
  const b = Buffer.alloc(32)
  b.writeUInt32LE(v.a, 0)
  b.writeUInt16LE(v.b ?? 0, 4)
  Buffer.from(v.mac ?? [0, 0, 0, 0, 0, 0]).copy(b, 6)
  b.writeBigUInt64LE(v.d ?? 0n, 16)
  b.writeUInt32LE(((v.flag ?? 0) & 1) | (((v.level ?? 0) & 0x7f) << 1), 24)
  b.writeInt32LE(v.neg ?? 0, 28)
  return b
}

beforeAll(() => {
  env = tempEnv('pn-libbpf-obj')
  objPath = compileFixture('t_prog', env.dir)
})

afterAll(() => {
  for (const o of objs) o.close()
  env?.cleanup()
})

describe('BpfObject', () => {
  it('lists programs and maps of the object, including internal maps', () => {
    const o = open()
    expect(o.programNames().sort()).toEqual(['t_cb', 't_map', 't_ret', 't_ring'])
    const names = o.mapNames()
    expect(names).toEqual(expect.arrayContaining(['t_pinned', 't_events', 't_prog.rodata', 't_prog.bss']))
    expect(o.rodata().name).toBe('t_prog.rodata')
    expect(o.map('.rodata').name).toBe('t_prog.rodata')
    expect(o.map('t_prog.rodata').valueSize).toBe(12)
    const m = o.map('t_pinned')
    expect([m.type, m.keySize, m.valueSize, m.maxEntries]).toEqual([BPF_MAP_TYPE.HASH, 4, 32, 64])
    expect(m.pinPath()).toBe(join(env.bpffs, 't_pinned'))
    expect(o.program('t_ret').sectionName).toBe('tc')
    o.close()
    o.close() // idempotent
    expect(() => o.map('t_pinned')).toThrow(/closed/)
  })

  it('throws BpfError ENOENT for a missing file, map or program', () => {
    expect(() => BpfObject.open(join(env.dir, 'nope.o'))).toThrow(BpfError)
    try {
      BpfObject.open(join(env.dir, 'nope.o'))
    } catch (e) {
      expect((e as BpfError).code).toBe('ENOENT')
      expect((e as BpfError).message).toMatch(/^bpf_object__open_file\(.*nope\.o\) failed: ENOENT \(No such file or directory\)$/)
    }
    const o = open()
    expect(() => o.map('nope')).toThrow(expect.objectContaining({ code: 'ENOENT' }))
    expect(() => o.program('nope')).toThrow(expect.objectContaining({ code: 'ENOENT' }))
    o.close()
  })

  it('attaches the verifier log to the BpfError of a failed load', () => {
    const bad = BpfObject.open(compileFixture('t_bad', env.dir))
    objs.push(bad)
    let err: unknown
    try {
      bad.load()
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(BpfError)
    const e = err as BpfError
    expect(e.op).toContain('bpf_object__load')
    expect(['EACCES', 'EINVAL', 'EPERM']).toContain(e.code)
    expect(e.log).toMatch(/invalid access to packet|R\d+ invalid mem access|processed \d+ insns/)
    expect(bad.isLoaded).toBe(false)
    bad.close()
  })

  it('sees .rodata written before load in the program (retval of a test run)', () => {
    const o = open()
    const btf = parseBtf(o.btfRaw()!)
    const sec = btf.findByName('.rodata', 'DATASEC')
    expect(sec).toBeDefined()
    const ro = o.rodata()
    const init = ro.initialValue()
    expect(init.length).toBe(12)
    expect(decodeValue(btf, sec!.id, init)).toEqual({ CONFIG: { retval: 1, mark: 0 }, t_extra: 5 })

    const cfgVar = sec!.vars.find((v) => btf.get(v.type).name === 'CONFIG')!
    const cfgType = btf.resolve(cfgVar.type)
    expect(cfgType.kind).toBe('STRUCT')
    const retvalOff = btf.fields(cfgType.id).find((f) => f.name === 'retval')!.offset
    init.writeUInt32LE(42, cfgVar.offset + retvalOff)
    ro.setInitialValue(init)
    expect(() => ro.setInitialValue(Buffer.alloc(3))).toThrow(expect.objectContaining({ code: 'EINVAL' }))
    o.load()
    expect(o.isLoaded).toBe(true)

    const r = progTestRun(o.program('t_ret').fd(), { data: packet() })
    expect(r.retval).toBe(42)
    expect(r.data.equals(packet())).toBe(true)
    expect(ro.initialValue().readUInt32LE(cfgVar.offset + retvalOff)).toBe(42)
    o.close()
  })

  it('reuses a map pinned by name: written via one object, read by the other', () => {
    const a = open()
    a.load()
    const pin = join(env.bpffs, 't_pinned')
    expect(existsSync(pin)).toBe(true)
    const b = open()
    b.load()

    const viaA = MapFd.fromFd(a.map('t_pinned').fd())
    const viaB = MapFd.fromFd(b.map('t_pinned').fd())
    const viaPin = MapFd.fromPin(pin)
    expect(viaA.info().id).toBe(viaB.info().id)
    expect(viaPin.info().id).toBe(viaA.info().id)

    viaA.update(u32(3), tVal({ a: 77 }))
    expect(viaB.lookup(u32(3))?.readUInt32LE(0)).toBe(77)
    const r = progTestRun(b.program('t_map').fd(), { data: packet(), ctx: skbCtx([3]) })
    expect(r.retval).toBe(77)
    expect(progTestRun(b.program('t_map').fd(), { data: packet(), ctx: skbCtx([4]) }).retval).toBe(-1)

    viaPin.close()
    viaA.close() // not owned: the object's fd stays open
    expect(a.map('t_pinned').fd()).toBeGreaterThan(0)
    a.map('t_pinned').unpin()
    expect(existsSync(pin)).toBe(false)
    a.close()
    b.close()
  })

  it('pins a program and reports its info (id, tag, maps)', () => {
    const o = open()
    o.load()
    const prog = o.program('t_map')
    const pinPath = join(env.bpffs, 'prog_t_map')
    prog.pin(pinPath)
    const byPin = ProgFd.fromPin(pinPath)
    const info = byPin.info()
    expect(info.id).toBe(prog.id())
    expect(info.name).toBe('t_map')
    expect(info.type).toBe(3) // BPF_PROG_TYPE_SCHED_CLS
    expect(info.tag).toMatch(/^[0-9a-f]{16}$/)
    expect(info.loadTime).toBeGreaterThan(0n)
    expect(info.btfId).toBeGreaterThan(0)

    const tool = JSON.parse(run('bpftool', ['-j', 'prog', 'show', 'id', String(info.id)])) as {
      tag: string
      map_ids: number[]
      jited?: boolean
    }
    expect(info.tag).toBe(tool.tag)
    expect(info.mapIds.sort()).toEqual([...tool.map_ids].sort())
    const pinnedMapId = MapFd.fromFd(o.map('t_pinned').fd()).info().id
    expect(info.mapIds).toContain(pinnedMapId)
    expect(info.jited).toBe(true)

    const byId = ProgFd.fromId(info.id)
    expect(byId.info().tag).toBe(info.tag)
    byId.close()
    byId.close()
    byPin.close()
    prog.unpin(pinPath)
    expect(existsSync(pinPath)).toBe(false)
    o.close()
  })

  it('returns retval and ctx out from a test run (cb[0] in → cb[1] out)', () => {
    const o = open()
    o.load()
    const p = ProgFd.fromFd(o.program('t_cb').fd())
    const r = p.testRun({ data: packet(), ctx: skbCtx([0x11, 0, 0, 0, 0]), repeat: 3 })
    expect(r.retval).toBe(0)
    expect(r.ctx).not.toBeNull()
    expect(r.ctx!.readUInt32LE(48)).toBe(0x11)
    expect(r.ctx!.readUInt32LE(52)).toBe(0x111)
    expect(r.durationNs).toBeGreaterThanOrEqual(0)
    // a packet shorter than an Ethernet header is rejected by the kernel
    expect(() => p.testRun({ data: Buffer.alloc(4) })).toThrow(expect.objectContaining({ code: 'EINVAL' }))
    p.close()
    o.close()
  })

  it('counts run time and runs while stats are enabled', () => {
    const o = open()
    o.load()
    const fd = o.program('t_ret').fd()
    const statsFd = enableBpfStats()
    try {
      progTestRun(fd, { data: packet(), repeat: 10 })
    } finally {
      closeFd(statsFd)
    }
    const info = ProgFd.fromFd(fd).info()
    expect(info.runCnt).toBeGreaterThanOrEqual(10n)
    expect(info.runTimeNs).toBeGreaterThan(0n)
    o.close()
  })

  it('delivers ring buffer records written during a test run', () => {
    const o = open()
    o.load()
    const got: Buffer[] = []
    const rb = new RingBuffer(o.map('t_events').fd(), (d) => got.push(d))
    try {
      expect(rb.epollFd()).toBeGreaterThan(0)
      expect(rb.consume()).toBe(0)
      const fd = o.program('t_ring').fd()
      progTestRun(fd, { data: packet(60) })
      progTestRun(fd, { data: packet(70) })
      expect(rb.poll(100)).toBe(2)
      expect(got.map((g) => [g.length, g.readUInt32LE(0), g.readUInt32LE(4), g.readBigUInt64LE(8)])).toEqual([
        [16, 0xfeedbeef, 60, 0n],
        [16, 0xfeedbeef, 70, 1n],
      ])
      // an exception in the callback surfaces from consume()
      const rb2 = new RingBuffer(o.map('t_events').fd(), () => {
        throw new Error('boom')
      })
      progTestRun(fd, { data: packet() })
      expect(() => rb2.consume()).toThrow('boom')
      rb2.close()
    } finally {
      rb.close()
      rb.close()
    }
    o.close()
  })

  it('decodes a map value with the BTF the kernel holds for the map', () => {
    const o = open()
    o.load()
    const m = MapFd.fromFd(o.map('t_pinned').fd())
    const info = m.info()
    expect(info.btfId).toBeGreaterThan(0)
    const btf = parseBtf(btfRawFromKernel(info.btfId))
    const fileBtf = parseBtf(btfRawFromFile(objPath))
    expect(btf.typeName(info.btfValueTypeId)).toBe('struct t_val')
    expect(btf.fields(info.btfValueTypeId)).toEqual(fileBtf.fields(fileBtf.findByName('t_val', 'STRUCT')!.id))

    const val = tVal({ a: 9, b: 0xbeef, mac: [2, 0, 0, 0, 0, 1], d: 1n << 40n, flag: 1, level: 5, neg: -3 })
    m.update(u32(12), val)
    expect(decodeValue(btf, info.btfKeyTypeId, u32(12))).toBe(12)
    expect(decodeValue(btf, info.btfValueTypeId, m.lookup(u32(12))!)).toEqual({
      a: 9,
      b: 0xbeef,
      mac: [2, 0, 0, 0, 0, 1],
      d: 1n << 40n,
      flag: 1,
      level: 5,
      neg: -3,
    })
    m.delete(u32(12))
    o.close()
  })

  it('reuses a map fd given with reuseFd instead of creating one', () => {
    const donor = MapFd.create(BPF_MAP_TYPE.HASH, 't_pinned', 4, 32, 64)
    const o = BpfObject.open(objPath, { pinRoot: env.bpffs, objectName: 'reuse' })
    objs.push(o)
    const m = o.map('t_pinned')
    m.setPinPath(null)
    m.reuseFd(donor.fd)
    o.load()
    expect(MapFd.fromFd(m.fd()).info().id).toBe(donor.info().id)
    expect(o.rodata().name).toBe('reuse.rodata')
    // pin/unpin at an explicit path
    const p = join(env.bpffs, 'reused')
    m.pin(p)
    const fd = objGet(p)
    closeFd(fd)
    m.unpin(p)
    o.close()
    donor.close()
  })
})
