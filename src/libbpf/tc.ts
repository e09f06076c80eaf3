// SPDX-License-Identifier: Apache-2.0
// tc clsact hooks and BPF filters through libbpf's bpf_tc_* (netlink inside
// libbpf). All functions act on the network namespace of the calling thread.

import { check } from './check.js'
import { libbpf } from './ffi.js'

const ENOENT = 2
const EEXIST = 17
const EINVAL = 22

/*
 * struct bpf_tc_hook (libbpf 1.1 libbpf.h; sizeof 24):
 *   0 size_t sz  8 int ifindex  12 enum bpf_tc_attach_point attach_point  16 __u32 parent
 * struct bpf_tc_opts (sizeof 32):
 *   0 size_t sz  8 int prog_fd  12 __u32 flags  16 __u32 prog_id  20 __u32 handle  24 __u32 priority
 */
const TC_HOOK_SIZE = 24
const TC_OPTS_SIZE = 32
const BPF_TC_INGRESS = 1
const BPF_TC_EGRESS = 2
const BPF_TC_F_REPLACE = 1

export type TcPoint = 'ingress' | 'egress'

export interface TcFilterId {
  /** Filter handle (default 1). */
  handle?: number
  /** Filter priority, 1..65535 (default 1). */
  priority?: number
}

const hook = Buffer.alloc(TC_HOOK_SIZE)
const opts = Buffer.alloc(TC_OPTS_SIZE)

function setHook(ifindex: number, attachPoint: number): Buffer {
  hook.fill(0)
  hook.writeBigUInt64LE(BigInt(TC_HOOK_SIZE), 0)
  hook.writeInt32LE(ifindex, 8)
  hook.writeUInt32LE(attachPoint, 12)
  return hook
}

function setOpts(progFd: number, flags: number, id: TcFilterId | undefined): Buffer {
  opts.fill(0)
  opts.writeBigUInt64LE(BigInt(TC_OPTS_SIZE), 0)
  opts.writeInt32LE(progFd, 8)
  opts.writeUInt32LE(flags, 12)
  opts.writeUInt32LE(id?.handle ?? 1, 20)
  opts.writeUInt32LE(id?.priority ?? 1, 24)
  return opts
}

function point(p: TcPoint): number {
  return p === 'ingress' ? BPF_TC_INGRESS : BPF_TC_EGRESS
}

/** Creates the clsact qdisc on `ifindex`. Returns false if it already existed (EEXIST is success). */
export function tcHookCreate(ifindex: number): boolean {
  const ret = libbpf().bpf_tc_hook_create(setHook(ifindex, BPF_TC_INGRESS))
  if (ret === -EEXIST) return false
  check(ret, `bpf_tc_hook_create(ifindex ${ifindex})`)
  return true
}

/** Removes the clsact qdisc (both points, with their filters). Absent qdisc/device is tolerated. */
export function tcHookDestroy(ifindex: number): void {
  const ret = libbpf().bpf_tc_hook_destroy(setHook(ifindex, BPF_TC_INGRESS | BPF_TC_EGRESS))
  if (ret === -ENOENT || ret === -EINVAL) return
  check(ret, `bpf_tc_hook_destroy(ifindex ${ifindex})`)
}

/** Attaches a BPF filter (direct-action). `replace` swaps the program of an existing filter with that handle/priority. */
export function tcAttach(ifindex: number, p: TcPoint, progFd: number, o: TcFilterId & { replace?: boolean } = {}): { progId: number } {
  const h = setHook(ifindex, point(p))
  const opt = setOpts(progFd, o.replace === true ? BPF_TC_F_REPLACE : 0, o)
  check(libbpf().bpf_tc_attach(h, opt), `bpf_tc_attach(ifindex ${ifindex} ${p})`)
  return { progId: opt.readUInt32LE(16) }
}

/** Removes the filter with that handle/priority; false if there was none. */
export function tcDetach(ifindex: number, p: TcPoint, o: TcFilterId = {}): boolean {
  const ret = libbpf().bpf_tc_detach(setHook(ifindex, point(p)), setOpts(0, 0, o))
  if (ret === -ENOENT) return false
  check(ret, `bpf_tc_detach(ifindex ${ifindex} ${p})`)
  return true
}

/** The program id of the filter with that handle/priority, or null if there is none (or no clsact). */
export function tcQuery(ifindex: number, p: TcPoint, o: TcFilterId = {}): { progId: number } | null {
  const opt = setOpts(0, 0, o)
  const ret = libbpf().bpf_tc_query(setHook(ifindex, point(p)), opt)
  if (ret === -ENOENT || ret === -EINVAL) return null
  check(ret, `bpf_tc_query(ifindex ${ifindex} ${p})`)
  return { progId: opt.readUInt32LE(16) }
}
