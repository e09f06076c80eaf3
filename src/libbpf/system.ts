// SPDX-License-Identifier: Apache-2.0
// Small libbpf/libc helpers: versions, pins, fds, interfaces, bpffs, stats.

import { mkdirSync } from 'node:fs'
import { check, checkLibc } from './check.js'
import { BpfError } from './errors.js'
import { errno, isNull, libbpf, libc, cString } from './ffi.js'
import { BPF_FS_MAGIC, BPF_STATS_RUN_TIME } from './constants.js'

/** "1.1" */
export function libbpfVersion(): string {
  const lb = libbpf()
  return `${lb.libbpf_major_version()}.${lb.libbpf_minor_version()}`
}

/** libbpf_num_possible_cpus (size of per-CPU map values). */
export function numPossibleCpus(): number {
  return check(libbpf().libbpf_num_possible_cpus(), 'libbpf_num_possible_cpus')
}

/** bpf_obj_get: fd of a pinned map/program/link (caller closes it). */
export function objGet(path: string): number {
  return check(libbpf().bpf_obj_get(path), `bpf_obj_get(${path})`)
}

/** bpf_obj_pin. */
export function objPin(fd: number, path: string): void {
  check(libbpf().bpf_obj_pin(fd, path), `bpf_obj_pin(${path})`)
}

export function closeFd(fd: number): void {
  checkLibc(libc().close(fd), `close(${fd})`)
}

/** if_nametoindex; throws if there is no such interface (in this netns). */
export function ifNameToIndex(name: string): number {
  const i = libc().if_nametoindex(name)
  if (i === 0) {
    const e = errno()
    throw new BpfError(`if_nametoindex(${name})`, e > 0 ? e : 19 /* ENODEV */)
  }
  return i
}

const ifNameBuf = Buffer.alloc(16) // IF_NAMESIZE

/** if_indextoname, or null if there is no such interface. */
export function ifIndexToName(index: number): string | null {
  ifNameBuf.fill(0)
  const p = libc().if_indextoname(index, ifNameBuf)
  return isNull(p) ? null : cString(ifNameBuf)
}

const statfsBuf = Buffer.alloc(256) // struct statfs is 120 bytes on LP64; f_type (long) at 0

/** True if `path` is on a bpf filesystem (false if missing or elsewhere). */
export function isBpffs(path: string): boolean {
  if (libc().statfs(path, statfsBuf) !== 0) return false
  return statfsBuf.readBigInt64LE(0) === BigInt(BPF_FS_MAGIC)
}

/** mkdir -p + mount -t bpf bpf <path>. Throws BpfError (op "mount(bpf, <path>)"). */
export function mountBpffs(path: string): void {
  mkdirSync(path, { recursive: true })
  checkLibc(libc().mount('bpf', path, 'bpf', 0, null), `mount(bpf, ${path})`)
}

/** umount2(path, flags) (MNT_DETACH = 2). */
export function unmount(path: string, flags = 0): void {
  checkLibc(libc().umount2(path, flags), `umount2(${path})`)
}

/** bpf_enable_stats(BPF_STATS_RUN_TIME): run_time_ns/run_cnt are counted while the fd is open. */
export function enableBpfStats(): number {
  return check(libbpf().bpf_enable_stats(BPF_STATS_RUN_TIME), 'bpf_enable_stats(BPF_STATS_RUN_TIME)')
}
