// Where our programs sit: tc (clsact) filters, one per hook at a fixed
// handle/priority so a re-attach is an atomic in-place replace; and the peer
// hook of netkit pods (bpf_mprog), where our program is found by its name and
// replaced in place the same way.
import {
  isBpfError,
  ProgFd,
  netkitAttach,
  netkitDetach,
  netkitQuery,
  tcAttach,
  tcDetach,
  tcHookCreate,
  tcHookDestroy,
  tcQuery,
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

/** Every program we ship is named pn_*; nothing else on a netkit hook is ours. */
const OUR_PREFIX = 'pn_'

/** Returns whether the clsact qdisc was created here (detach removes only those). */
export function ensureClsact(ifindex: number): boolean {
  return tcHookCreate(ifindex)
}

/** Ours among the programs on a netkit hook, or null. */
function netkitOurs(ifindex: number): number | null {
  for (const id of netkitQuery(ifindex, 'peer')) {
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

/** Attaches or atomically replaces our program on a hook; returns the program id now live there. */
export function attachProgram(hook: Hook, progFd: number): number {
  if (hook.point !== 'netkit-peer') return tcAttach(hook.ifindex, hook.point, progFd, { ...opts, replace: true }).progId
  const newId = ProgFd.fromFd(progFd).info().id
  const old = netkitOurs(hook.ifindex)
  if (old === newId) return newId
  if (old === null) {
    netkitAttach(hook.ifindex, 'peer', progFd)
  } else {
    const o = ProgFd.fromId(old)
    try {
      netkitAttach(hook.ifindex, 'peer', progFd, o.fd)
    } finally {
      o.close()
    }
  }
  return newId
}

export function detachProgram(hook: Hook): boolean {
  if (hook.point !== 'netkit-peer') return tcDetach(hook.ifindex, hook.point, opts)
  const id = netkitOurs(hook.ifindex)
  if (id === null) return false
  const p = ProgFd.fromId(id)
  try {
    return netkitDetach(hook.ifindex, 'peer', p.fd)
  } finally {
    p.close()
  }
}

export function queryProgram(hook: Hook): number | null {
  if (hook.point === 'netkit-peer') return netkitOurs(hook.ifindex)
  return tcQuery(hook.ifindex, hook.point, opts)?.progId ?? null
}

export function removeClsact(ifindex: number): void {
  tcHookDestroy(ifindex)
}

/** Where a pod's from-pod program sits: tc ingress of its host veth, or the
 * peer hook of its netkit pair (the pod's own transmit). */
export function podHook(e: { ifindex: number; device?: 'veth' | 'netkit' | undefined }): Hook {
  return { ifindex: e.ifindex, point: e.device === 'netkit' ? 'netkit-peer' : 'ingress' }
}

/** Removes from-pod from a pod device whose kind may be unknown (an endpoint
 * only the map remembers): both hooks are tried, and "not that kind of
 * device / no such hook here" is not an error. Returns whether one was there. */
export function detachPodProgram(ifindex: number, device?: 'veth' | 'netkit'): boolean {
  let removed = false
  const points: HookPoint[] = device ? [podHook({ ifindex, device }).point] : ['ingress', 'netkit-peer']
  for (const point of points) {
    try {
      if (detachProgram({ ifindex, point })) removed = true
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
