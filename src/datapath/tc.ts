// Where our programs sit. On a device's ingress/egress: a tcx link (Linux >=
// 6.6), pinned per hook in the node's pin dir so it outlives the command, or
// on older kernels a tc (clsact) filter at a fixed handle/priority. Either
// way a re-attach swaps the program in place (link update, filter replace).
// On netkit pods: the peer hook (bpf_mprog), where our program is found by
// its name and replaced in place the same way.
import { existsSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import {
  closeFd,
  isBpfError,
  linkDetach,
  bpfLinkInfo,
  linkUpdate,
  objGet,
  objPin,
  ProgFd,
  netkitAttach,
  netkitDetach,
  netkitQuery,
  tcAttach,
  tcDetach,
  tcHookCreate,
  tcHookDestroy,
  tcQuery,
  tcxLinkCreate,
  tcxQuery,
  tcxSupported,
  type TcPoint,
} from '../libbpf/index.js'

export const TC_HANDLE = 0x706e // "pn"
export const TC_PRIORITY = 1
const opts = { handle: TC_HANDLE, priority: TC_PRIORITY }

/** netkit-peer: the pod's transmit, hooked on the host-side (primary) device */
export type HookPoint = TcPoint | 'netkit-peer'

export interface Hook {
  ifindex: number
  point: HookPoint
}

/** How programs go on ingress/egress hooks: tcx links or tc cls_bpf filters. */
export type AttachMode = 'tcx' | 'tc'

/** The mode, and the pin dir that holds a node's tcx links. */
export interface AttachVia {
  mode: AttachMode
  pinDir: string
}

/** Every program we ship is named pn_*; nothing else on a netkit or tcx hook is ours. */
const OUR_PREFIX = 'pn_'

/** Pin of the tcx link on a hook: one per device and direction. */
export function linkPinName(hook: Hook): string {
  return `tcx_${hook.point}_${hook.ifindex}`
}

/** Whether a file name in a pin dir is one of our link pins. */
export function isLinkPinName(name: string): boolean {
  return /^tcx_(ingress|egress)_\d+$/.test(name)
}

/** Whether this kernel has tcx (probed with a query on `ifindex`). */
export function tcxAvailable(ifindex = 1): boolean {
  return tcxSupported(ifindex)
}

/** Returns whether the clsact qdisc was created here (detach removes only those). */
export function ensureClsact(ifindex: number): boolean {
  return tcHookCreate(ifindex)
}

/** The first of `ids` whose name says it is ours, or null. */
function ours(ids: number[]): number | null {
  for (const id of ids) {
    let p: ProgFd
    try {
      p = ProgFd.fromId(id)
    } catch (e) {
      if (isBpfError(e, 'ENOENT')) continue // someone else's, detached since the query
      throw e
    }
    try {
      if (p.info().name.startsWith(OUR_PREFIX)) return id
    } finally {
      p.close()
    }
  }
  return null
}

/** Ours on a tcx hook; null also on a kernel without tcx. */
function tcxOurs(hook: Hook & { point: TcPoint }): number | null {
  try {
    return ours(tcxQuery(hook.ifindex, hook.point))
  } catch (e) {
    if (isBpfError(e, 'EINVAL')) return null // no tcx in this kernel
    throw e
  }
}

/** The pinned link of a hook, if it is still attached to that very hook
 * (fd: caller closes); a pin of a link whose device went away is removed. */
function openLink(hook: Hook & { point: TcPoint }, pinDir: string): number | null {
  const pin = join(pinDir, linkPinName(hook))
  if (!existsSync(pin)) return null
  const fd = objGet(pin)
  const info = bpfLinkInfo(fd)
  if (info.tcx && info.tcx.ifindex === hook.ifindex && info.tcx.point === hook.point) return fd
  closeFd(fd)
  unlinkSync(pin) // defunct (device gone, its ifindex maybe reused): releases it
  return null
}

/** Creates the hook's link and pins it, or swaps the program of the pinned one. */
function tcxAttach(hook: Hook & { point: TcPoint }, progFd: number, pinDir: string): void {
  const live = openLink(hook, pinDir)
  if (live !== null) {
    try {
      linkUpdate(live, progFd)
    } finally {
      closeFd(live)
    }
    return
  }
  // until pinned, only this fd holds the link: a failure (or a crash) here releases it
  const fd = tcxLinkCreate(hook.ifindex, hook.point, progFd)
  try {
    objPin(fd, join(pinDir, linkPinName(hook)))
  } finally {
    closeFd(fd)
  }
}

/** Detaches and unpins the hook's link; false if there was none attached. */
function tcxDetach(hook: Hook & { point: TcPoint }, pinDir: string): boolean {
  const fd = openLink(hook, pinDir)
  if (fd === null) return false
  try {
    linkDetach(fd)
  } finally {
    closeFd(fd)
    unlinkSync(join(pinDir, linkPinName(hook)))
  }
  return true
}

/** Removes our tc filter; false if none (or no clsact qdisc at all). */
function tcFilterDetach(hook: Hook & { point: TcPoint }): boolean {
  try {
    return tcDetach(hook.ifindex, hook.point, opts)
  } catch (e) {
    if (isBpfError(e, 'EINVAL')) return false // no clsact
    throw e
  }
}

/** Ours among the programs on a netkit hook, or null. */
function netkitOurs(ifindex: number): number | null {
  return ours(netkitQuery(ifindex, 'peer'))
}

function netkitAttachOurs(ifindex: number, progFd: number): number {
  const newId = ProgFd.fromFd(progFd).info().id
  const old = netkitOurs(ifindex)
  if (old === newId) return newId
  if (old === null) {
    netkitAttach(ifindex, 'peer', progFd)
  } else {
    const o = ProgFd.fromId(old)
    try {
      netkitAttach(ifindex, 'peer', progFd, o.fd)
    } finally {
      o.close()
    }
  }
  return newId
}

/** Attaches or atomically replaces our program on a hook; returns the program
 * id now live there. Switching mode (tc → tcx after a kernel upgrade, or
 * back) puts the new attachment on first, then takes the old one off, so the
 * hook is never without our program. */
export function attachProgram(hook: Hook, progFd: number, via: AttachVia): number {
  if (hook.point === 'netkit-peer') return netkitAttachOurs(hook.ifindex, progFd)
  const h = { ifindex: hook.ifindex, point: hook.point }
  if (via.mode === 'tcx') {
    tcxAttach(h, progFd, via.pinDir)
    tcFilterDetach(h)
    return ProgFd.fromFd(progFd).info().id
  }
  const id = tcAttach(h.ifindex, h.point, progFd, { ...opts, replace: true }).progId
  tcxDetach(h, via.pinDir)
  return id
}

/** Removes our program from a hook, however it is attached (tcx link and/or tc filter). */
export function detachProgram(hook: Hook, pinDir: string): boolean {
  if (hook.point !== 'netkit-peer') {
    const h = { ifindex: hook.ifindex, point: hook.point }
    const link = tcxDetach(h, pinDir)
    return tcFilterDetach(h) || link
  }
  const id = netkitOurs(hook.ifindex)
  if (id === null) return false
  const p = ProgFd.fromId(id)
  try {
    return netkitDetach(hook.ifindex, 'peer', p.fd)
  } finally {
    p.close()
  }
}

export type AttachedVia = AttachMode | 'netkit'

/** Our program live on a hook and how it is attached, or null. */
export function queryAttachment(hook: Hook): { id: number; via: AttachedVia } | null {
  if (hook.point === 'netkit-peer') {
    const id = netkitOurs(hook.ifindex)
    return id === null ? null : { id, via: 'netkit' }
  }
  const h = { ifindex: hook.ifindex, point: hook.point }
  const tcx = tcxOurs(h)
  if (tcx !== null) return { id: tcx, via: 'tcx' }
  const tc = tcQuery(h.ifindex, h.point, opts)
  return tc ? { id: tc.progId, via: 'tc' } : null
}

export function queryProgram(hook: Hook): number | null {
  return queryAttachment(hook)?.id ?? null
}

export function removeClsact(ifindex: number): void {
  tcHookDestroy(ifindex)
}

/** Detaches the link pinned at `path` (if it is still attached) and unlinks the pin. */
export function unpinLink(path: string): void {
  try {
    const fd = objGet(path)
    try {
      if (bpfLinkInfo(fd).tcx?.ifindex) linkDetach(fd)
    } finally {
      closeFd(fd)
    }
  } catch (e) {
    if (!isBpfError(e)) throw e // not a link (or already detached): the unlink below is all there is to do
  }
  if (existsSync(path)) unlinkSync(path)
}

/** Where a pod's from-pod program sits: tc ingress of its host veth, or the
 * peer hook of its netkit pair (the pod's own transmit). */
export function podHook(e: { ifindex: number; device?: 'veth' | 'netkit' | undefined }): Hook {
  return { ifindex: e.ifindex, point: e.device === 'netkit' ? 'netkit-peer' : 'ingress' }
}

/** Removes from-pod from a pod device whose kind may be unknown (an endpoint
 * only the map remembers): both hooks are tried, and "not that kind of
 * device / no such hook here" is not an error. Returns whether one was there. */
export function detachPodProgram(ifindex: number, device: 'veth' | 'netkit' | undefined, pinDir: string): boolean {
  let removed = false
  const points: HookPoint[] = device ? [podHook({ ifindex, device }).point] : ['ingress', 'netkit-peer']
  for (const point of points) {
    try {
      if (detachProgram({ ifindex, point }, pinDir)) removed = true
    } catch (e) {
      // ENXIO: not netkit; EINVAL: no clsact, or a kernel without netkit;
      // EACCES: the peer end; ENODEV/ENOENT: gone
      if (!isBpfError(e, 'ENXIO', 'EINVAL', 'EACCES', 'ENODEV', 'ENOENT')) throw e
    }
  }
  return removed
}

/** A pinned program, opened for attaching it to more hooks. */
export interface PinnedProgram {
  readonly fd: number
  close(): void
}

export function openPinnedProgram(path: string): PinnedProgram {
  return ProgFd.fromPin(path)
}
