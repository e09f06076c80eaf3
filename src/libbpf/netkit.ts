// SPDX-License-Identifier: Apache-2.0
// Programs on netkit devices (Linux >= 6.7) through the bpf_mprog attach API:
// the target is the primary (host-side) device's ifindex, `peer` runs in the
// transmit of the other end. Attachments live in the device, like tc filters:
// no pin or link to keep, gone with the device.

import { check } from './check.js'
import { libbpf } from './ffi.js'

const BPF_NETKIT_PRIMARY = 54
const BPF_NETKIT_PEER = 55
const BPF_F_REPLACE = 1 << 2
const ENOENT = 2
const MAX_PROGS = 64 // bpf_mprog's limit

export type NetkitPoint = 'primary' | 'peer'

function type(p: NetkitPoint): number {
  return p === 'peer' ? BPF_NETKIT_PEER : BPF_NETKIT_PRIMARY
}

/*
 * struct bpf_prog_attach_opts (libbpf 1.1; sizeof 16):
 *   0 size_t sz  8 __u32 flags  12 int replace_prog_fd
 */
const ATTACH_OPTS_SIZE = 16

/** Program ids attached at the hook, in run order (empty when none). */
export function netkitQuery(ifindex: number, p: NetkitPoint): number[] {
  const ids = Buffer.alloc(4 * MAX_PROGS)
  const cnt = Buffer.alloc(4)
  cnt.writeUInt32LE(MAX_PROGS)
  const ret = libbpf().bpf_prog_query(ifindex, type(p), 0, null, ids, cnt)
  if (ret === -ENOENT) return []
  check(ret, `bpf_prog_query(netkit ${p}, ifindex ${ifindex})`)
  const n = Math.min(cnt.readUInt32LE(0), MAX_PROGS)
  return Array.from({ length: n }, (_, i) => ids.readUInt32LE(4 * i))
}

/** Appends `progFd`, or swaps it in for `replaceFd` in place (atomically). */
export function netkitAttach(ifindex: number, p: NetkitPoint, progFd: number, replaceFd?: number): void {
  const o = Buffer.alloc(ATTACH_OPTS_SIZE)
  o.writeBigUInt64LE(BigInt(ATTACH_OPTS_SIZE), 0)
  if (replaceFd !== undefined) {
    o.writeUInt32LE(BPF_F_REPLACE, 8)
    o.writeInt32LE(replaceFd, 12)
  }
  check(libbpf().bpf_prog_attach_opts(progFd, ifindex, type(p), o), `bpf_prog_attach(netkit ${p}, ifindex ${ifindex})`)
}

/** Removes `progFd` from the hook; false if it was not there. */
export function netkitDetach(ifindex: number, p: NetkitPoint, progFd: number): boolean {
  const ret = libbpf().bpf_prog_detach2(progFd, ifindex, type(p))
  if (ret === -ENOENT) return false
  check(ret, `bpf_prog_detach(netkit ${p}, ifindex ${ifindex})`)
  return true
}
