// tc (clsact) attachment of our programs: one filter per hook, always at the
// same handle/priority, so a re-attach is an atomic in-place replace.
import { tcAttach, tcDetach, tcHookCreate, tcHookDestroy, tcQuery, type TcPoint } from '../libbpf/index.js'

export const TC_HANDLE = 0x706e // "pn"
export const TC_PRIORITY = 1
const opts = { handle: TC_HANDLE, priority: TC_PRIORITY }

export interface Hook {
  ifindex: number
  point: TcPoint
}

/** Returns whether the clsact qdisc was created here (detach removes only those). */
export function ensureClsact(ifindex: number): boolean {
  return tcHookCreate(ifindex)
}

/** Attaches or atomically replaces our filter on a hook; returns the program id now live there. */
export function attachProgram(hook: Hook, progFd: number): number {
  return tcAttach(hook.ifindex, hook.point, progFd, { ...opts, replace: true }).progId
}

export function detachProgram(hook: Hook): boolean {
  return tcDetach(hook.ifindex, hook.point, opts)
}

export function queryProgram(hook: Hook): number | null {
  return tcQuery(hook.ifindex, hook.point, opts)?.progId ?? null
}

export function removeClsact(ifindex: number): void {
  tcHookDestroy(ifindex)
}
