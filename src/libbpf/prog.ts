// SPDX-License-Identifier: Apache-2.0
// A loaded BPF program by fd: info and BPF_PROG_TEST_RUN.

import { check, checkLibc } from './check.js'
import { addressOf, cString, libbpf, libc, withLive } from './ffi.js'

/*
 * struct bpf_prog_info (linux/bpf.h; we pass the 232 bytes our header knows,
 * the kernel fills min(its size, ours)):
 *   0 type  4 id  8 tag[8]  16 jited_prog_len  20 xlated_prog_len
 *  24 jited_prog_insns  32 xlated_prog_insns  40 load_time (ns since boot)
 *  48 created_by_uid  52 nr_map_ids  56 map_ids (__u64 user pointer)
 *  64 name[16]  80 ifindex ... 128 btf_id ... 192 run_time_ns  200 run_cnt
 *  208 recursion_misses  216 verified_insns
 */
const PROG_INFO_SIZE = 232

export interface ProgInfo {
  id: number
  type: number
  name: string
  /** 8-byte program tag as 16 hex chars (as bpftool prints it). */
  tag: string
  /** ns since boot (CLOCK_BOOTTIME). */
  loadTime: bigint
  /** Only counted while stats are enabled (enableBpfStats / kernel.bpf_stats_enabled). */
  runTimeNs: bigint
  runCnt: bigint
  btfId: number
  mapIds: number[]
  jited: boolean
  verifiedInsns: number
}

const infoBuf = Buffer.alloc(PROG_INFO_SIZE)
const infoLen = Buffer.alloc(4)

/** bpf_obj_get_info_by_fd on a program fd; second call only when it uses maps. */
export function progInfoByFd(fd: number): ProgInfo {
  const lb = libbpf()
  infoBuf.fill(0)
  infoLen.writeUInt32LE(PROG_INFO_SIZE, 0)
  check(lb.bpf_obj_get_info_by_fd(fd, infoBuf, infoLen), `bpf_obj_get_info_by_fd(prog fd ${fd})`)
  const nMaps = infoBuf.readUInt32LE(52)
  let mapIds: number[] = []
  if (nMaps > 0) {
    const ids = Buffer.alloc(nMaps * 4)
    infoBuf.fill(0)
    infoBuf.writeUInt32LE(nMaps, 52)
    infoBuf.writeBigUInt64LE(addressOf(ids), 56)
    infoLen.writeUInt32LE(PROG_INFO_SIZE, 0)
    withLive([ids], () => check(lb.bpf_obj_get_info_by_fd(fd, infoBuf, infoLen), `bpf_obj_get_info_by_fd(prog fd ${fd}, map ids)`))
    const n = Math.min(nMaps, infoBuf.readUInt32LE(52))
    mapIds = Array.from({ length: n }, (_, i) => ids.readUInt32LE(i * 4))
  }
  return {
    type: infoBuf.readUInt32LE(0),
    id: infoBuf.readUInt32LE(4),
    tag: infoBuf.toString('hex', 8, 16),
    jited: infoBuf.readUInt32LE(16) > 0,
    loadTime: infoBuf.readBigUInt64LE(40),
    name: cString(infoBuf, 64, 16),
    btfId: infoBuf.readUInt32LE(128),
    runTimeNs: infoBuf.readBigUInt64LE(192),
    runCnt: infoBuf.readBigUInt64LE(200),
    verifiedInsns: infoBuf.readUInt32LE(216),
    mapIds,
  }
}

/*
 * struct bpf_test_run_opts (libbpf 1.1 bpf.h; sizeof 80):
 *   0 sz  8 data_in  16 data_out  24 data_size_in  28 data_size_out
 *  32 ctx_in  40 ctx_out  48 ctx_size_in  52 ctx_size_out  56 retval
 *  60 repeat  64 duration  68 flags  72 cpu  76 batch_size
 */
const TEST_RUN_OPTS_SIZE = 80
const testRunOpts = Buffer.alloc(TEST_RUN_OPTS_SIZE)

export interface TestRunOptions {
  /** Packet (for tc/XDP: starts with the Ethernet header, ≥ 14 bytes). */
  data: Buffer
  /** Context in, e.g. a struct __sk_buff (192 bytes) with cb[] set. */
  ctx?: Buffer
  repeat?: number
  /** Size of the data_out buffer (default data.length + 512; 0 = no data out). */
  dataSizeOut?: number
  /** Size of the ctx_out buffer (default ctx.length when ctx is given, else 0). */
  ctxSizeOut?: number
  /** BPF_F_TEST_* flags. */
  flags?: number
}

export interface TestRunResult {
  retval: number
  /** Packet after the program ran (bytes actually written). */
  data: Buffer
  /** Context out, or null when no ctx_out was requested. */
  ctx: Buffer | null
  /** Average duration per repetition, ns. */
  durationNs: number
}

/** bpf_prog_test_run_opts. */
export function progTestRun(fd: number, o: TestRunOptions): TestRunResult {
  const dataOut = Buffer.alloc(o.dataSizeOut ?? o.data.length + 512)
  const ctxOutSize = o.ctxSizeOut ?? o.ctx?.length ?? 0
  const ctxOut = ctxOutSize > 0 ? Buffer.alloc(ctxOutSize) : null
  const t = testRunOpts
  t.fill(0)
  t.writeBigUInt64LE(BigInt(TEST_RUN_OPTS_SIZE), 0)
  t.writeBigUInt64LE(addressOf(o.data), 8)
  t.writeUInt32LE(o.data.length, 24)
  if (dataOut.length > 0) {
    t.writeBigUInt64LE(addressOf(dataOut), 16)
    t.writeUInt32LE(dataOut.length, 28)
  }
  if (o.ctx !== undefined && o.ctx.length > 0) {
    t.writeBigUInt64LE(addressOf(o.ctx), 32)
    t.writeUInt32LE(o.ctx.length, 48)
  }
  if (ctxOut) {
    t.writeBigUInt64LE(addressOf(ctxOut), 40)
    t.writeUInt32LE(ctxOut.length, 52)
  }
  t.writeInt32LE(o.repeat ?? 1, 60)
  t.writeUInt32LE(o.flags ?? 0, 68)
  const live = [o.data, dataOut, ...(o.ctx ? [o.ctx] : []), ...(ctxOut ? [ctxOut] : [])]
  withLive(live, () => check(libbpf().bpf_prog_test_run_opts(fd, t), `bpf_prog_test_run_opts(prog fd ${fd})`))
  return {
    retval: t.readUInt32LE(56) | 0,
    data: dataOut.subarray(0, Math.min(t.readUInt32LE(28), dataOut.length)),
    ctx: ctxOut ? ctxOut.subarray(0, Math.min(t.readUInt32LE(52), ctxOut.length)) : null,
    durationNs: t.readUInt32LE(64),
  }
}

/** A BPF program by fd (from a pin or an id). Owns its fd unless created with fromFd(fd, false). */
export class ProgFd {
  private _fd: number
  private readonly owned: boolean

  private constructor(fd: number, owned: boolean) {
    this._fd = fd
    this.owned = owned
  }

  static fromPin(path: string): ProgFd {
    return new ProgFd(check(libbpf().bpf_obj_get(path), `bpf_obj_get(${path})`), true)
  }

  static fromId(id: number): ProgFd {
    return new ProgFd(check(libbpf().bpf_prog_get_fd_by_id(id), `bpf_prog_get_fd_by_id(${id})`), true)
  }

  /** Wrap an fd you already have (e.g. BpfProgram.fd()); `owned` decides whether close() closes it. */
  static fromFd(fd: number, owned = false): ProgFd {
    return new ProgFd(fd, owned)
  }

  get fd(): number {
    if (this._fd < 0) throw new Error('ProgFd is closed')
    return this._fd
  }

  info(): ProgInfo {
    return progInfoByFd(this.fd)
  }

  testRun(o: TestRunOptions): TestRunResult {
    return progTestRun(this.fd, o)
  }

  /** Idempotent. */
  close(): void {
    if (this._fd < 0) return
    const fd = this._fd
    this._fd = -1
    if (this.owned) checkLibc(libc().close(fd), `close(${fd})`)
  }
}
