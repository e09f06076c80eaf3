// SPDX-License-Identifier: Apache-2.0
// tcx (Linux >= 6.6): BPF programs on a device's ingress/egress through
// bpf_mprog, attached as BPF links. libbpf 1.1 has no bpf_program__attach_tcx,
// so links are made with bpf_link_create(prog, ifindex, BPF_TCX_*), which
// passes unknown attach types straight to the kernel. A link lives as long
// as an fd or a pin holds it: pin it (objPin) to outlive the process.

import { check } from './check.js'
import { libbpf } from './ffi.js'

const BPF_TCX_INGRESS = 46
const BPF_TCX_EGRESS = 47
const BPF_LINK_TYPE_TCX = 11
const ENOENT = 2
const EINVAL = 22
const MAX_PROGS = 64 // bpf_mprog's limit

export type TcxPoint = 'ingress' | 'egress'

function type(p: TcxPoint): number {
  return p === 'ingress' ? BPF_TCX_INGRESS : BPF_TCX_EGRESS
}

/** Program ids attached at the hook, in run order (empty when none). */
export function tcxQuery(ifindex: number, p: TcxPoint): number[] {
  const ids = Buffer.alloc(4 * MAX_PROGS)
  const cnt = Buffer.alloc(4)
  cnt.writeUInt32LE(MAX_PROGS)
  const ret = libbpf().bpf_prog_query(ifindex, type(p), 0, null, ids, cnt)
  if (ret === -ENOENT) return []
  check(ret, `bpf_prog_query(tcx ${p}, ifindex ${ifindex})`)
  const n = Math.min(cnt.readUInt32LE(0), MAX_PROGS)
  return Array.from({ length: n }, (_, i) => ids.readUInt32LE(4 * i))
}

/** Whether this kernel has tcx: a query on `ifindex` (any device) is EINVAL without it. */
export function tcxSupported(ifindex = 1): boolean {
  const cnt = Buffer.alloc(4)
  const ret = libbpf().bpf_prog_query(ifindex, BPF_TCX_INGRESS, 0, null, null, cnt)
  if (ret === -EINVAL) return false
  check(ret, `bpf_prog_query(tcx ingress, ifindex ${ifindex})`)
  return true
}

/** Creates a tcx link running `progFd` after the programs already there; returns the link fd (caller pins or closes it). */
export function tcxLinkCreate(ifindex: number, p: TcxPoint, progFd: number): number {
  // no flags: appended (bpf_mprog's default is BPF_F_AFTER with no anchor)
  return check(libbpf().bpf_link_create(progFd, ifindex, type(p), null), `bpf_link_create(tcx ${p}, ifindex ${ifindex})`)
}

/** Swaps the link's program in place (atomic: no packet sees no program). */
export function linkUpdate(linkFd: number, progFd: number): void {
  check(libbpf().bpf_link_update(linkFd, progFd, null), `bpf_link_update(link fd ${linkFd})`)
}

/** Detaches the link from its hook now (pins and fds of it stay valid, defunct). */
export function linkDetach(linkFd: number): void {
  check(libbpf().bpf_link_detach(linkFd), `bpf_link_detach(link fd ${linkFd})`)
}

/*
 * struct bpf_link_info (linux/bpf.h): 0 type  4 id  8 prog_id, then a union
 * at 16 (8-aligned) whose tcx member is 16 ifindex  20 attach_type. We pass
 * 64 bytes; the kernel fills min(its size, ours).
 */
const LINK_INFO_SIZE = 64

export interface BpfLinkInfo {
  type: number
  id: number
  progId: number
  /** a tcx link's hook; ifindex 0 once its device is gone (defunct) */
  tcx: { ifindex: number; point: TcxPoint } | null
}

export function bpfLinkInfo(linkFd: number): BpfLinkInfo {
  const info = Buffer.alloc(LINK_INFO_SIZE)
  const len = Buffer.alloc(4)
  len.writeUInt32LE(LINK_INFO_SIZE)
  check(libbpf().bpf_obj_get_info_by_fd(linkFd, info, len), `bpf_obj_get_info_by_fd(link fd ${linkFd})`)
  const type = info.readUInt32LE(0)
  const attachType = info.readUInt32LE(20)
  const isTcx = type === BPF_LINK_TYPE_TCX && (attachType === BPF_TCX_INGRESS || attachType === BPF_TCX_EGRESS)
  return {
    type,
    id: info.readUInt32LE(4),
    progId: info.readUInt32LE(8),
    tcx: isTcx ? { ifindex: info.readUInt32LE(16), point: attachType === BPF_TCX_INGRESS ? 'ingress' : 'egress' } : null,
  }
}
