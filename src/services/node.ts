// The node API: the one way every front door (CLI, CNI plugin, agent, lab)
// opens a node. `withNode` resolves the pin dir, checks privileges, takes the
// node's lock for writers, loads the state, opens the maps and closes them
// again; `withNodeLock` is the lock alone, for callers that do several steps.
import { join } from 'node:path'
import { UserError } from '../errors.js'
import { MapName, Programs, type ProgramKey } from '../datapath/abi.js'
import { readdirSync } from 'node:fs'
import { holdsLock, withFileLock } from '../datapath/lock.js'
import { currentNetns, netnsEntry, sameNetns } from '../datapath/netns.js'
import { DatapathMaps } from '../datapath/maps.js'
import { VXLAN_DEV } from '../datapath/netdev.js'
import { openPinnedProgram, podHook, type Hook, type PinnedProgram } from '../datapath/tc.js'
import { resolvePinDir, type Mode } from './config.js'
import { requirePrivileges } from './preflight.js'
import { loadState, lockPath, saveState, statePath, type NodeState } from './state.js'
import { checkPinsPresent } from './validate.js'

export { loadState } from './state.js'
export type { NodeState } from './state.js'
// attach/detach live in attach.ts; re-exported so `services/node.js` stays a way in
export { attach, detach, teardown, type AttachInput, type AttachResult, type DetachResult } from './attach.js'
export { deviceSubnets, resolveEncap } from './encap.js'

export interface NodeContext {
  pinDir: string
  state: NodeState
  maps: DatapathMaps
  /** writes `state` back (atomically) */
  save(): void
}

export interface NodeOptions {
  /** take the node's exclusive lock (every command that changes the node) */
  write?: boolean
}

/** Runs `fn` on an attached node: state loaded (under the lock when `write`), maps open, closed in finally. */
export function withNode<T>(pinDirFlag: string | undefined, fn: (node: NodeContext) => T, opts: NodeOptions = {}): T {
  const pinDir = resolvePinDir(pinDirFlag)
  const run = (): T => {
    const state = requireState(pinDir)
    const maps = DatapathMaps.open(state.pinDir)
    try {
      return fn({ pinDir, state, maps, save: () => saveState(state) })
    } finally {
      maps.close()
    }
  }
  return opts.write ? withNodeLock(pinDir, run) : run()
}

/** Runs `fn` (synchronous) holding the node's exclusive lock; re-entrant
 * within this process, so a caller holding it can call any service. */
export function withNodeLock<T>(pinDirFlag: string | undefined, fn: (pinDir: string) => T): T {
  const pinDir = resolvePinDir(pinDirFlag)
  requirePrivileges()
  return withFileLock(lockPath(pinDir), { what: `pin dir ${pinDir}` }, () => fn(pinDir))
}

/** True when this process holds the node's lock. */
export function holdsNodeLock(pinDirFlag?: string): boolean {
  return holdsLock(lockPath(resolvePinDir(pinDirFlag)))
}

export interface RequireOptions {
  /** the caller only reads the pinned maps (metrics, maps, monitor): pins are the
   * same from every namespace, so it may run outside the node's (e.g. an exporter on the host) */
  mapsOnly?: boolean
}

/** For commands that need an attached node. */
export function requireState(pinDirFlag?: string, opts: RequireOptions = {}): NodeState {
  const pinDir = resolvePinDir(pinDirFlag)
  requirePrivileges()
  const s = loadState(pinDir)
  if (!s)
    throw new UserError(
      `podnet-bpf is not attached for pin dir ${pinDir}`,
      'run `podnet-bpf attach …` first (or pass the --pin-dir you attached with)',
    )
  if (!opts.mapsOnly) assertOwnNetns(s)
  checkPinsPresent(pinDir, [...Object.values(MapName).filter((n) => n !== MapName.events), progPinName('fromPod')], listDir(pinDir))
  return s
}

/** A pin dir belongs to the network namespace it was attached in: refuse to
 * act on it from any other (its devices and routes are not here). */
export function assertOwnNetns(s: NodeState): void {
  if (!s.netns) return
  const here = currentNetns()
  if (sameNetns(here, s.netns)) return
  const there = netnsEntry(s.netns)
  const label = there.name ? `"${there.name}" (net:[${s.netns.ino}])` : `net:[${s.netns.ino}]`
  throw new UserError(
    `pin dir ${s.pinDir} belongs to network namespace ${label}, not to this one (net:[${here.ino}])`,
    there.path
      ? `run the command in that namespace: nsenter --net=${there.path} podnet-bpf … --pin-dir ${s.pinDir}`
      : `that namespace is gone, and with it the node's devices: remove its leftovers with rm -r ${s.pinDir} ${statePath(s.pinDir)}`,
  )
}

export function progPinName(key: ProgramKey): string {
  return `prog_${key}`
}

export function progPinPath(pinDir: string, key: ProgramKey): string {
  return join(pinDir, progPinName(key))
}

function listDir(dir: string): Set<string> {
  try {
    return new Set(readdirSync(dir))
  } catch {
    return new Set()
  }
}

export function programKeysFor(mode: Mode): ProgramKey[] {
  return mode === 'direct' ? ['fromPod', 'fromNetdev'] : ['fromPod', 'fromNetdev', 'fromOverlay', 'toOverlay']
}

export interface NodeHook {
  key: ProgramKey
  hook: Hook
  device: string
}

/** The hooks each program belongs on, for this state. */
export function hooksOf(state: Pick<NodeState, 'config' | 'deviceIfindex' | 'vxlan' | 'endpoints'>): NodeHook[] {
  const out: NodeHook[] = []
  out.push({ key: 'fromNetdev', hook: { ifindex: state.deviceIfindex, point: 'ingress' }, device: state.config.device })
  if (state.vxlan) {
    out.push({ key: 'fromOverlay', hook: { ifindex: state.vxlan.ifindex, point: 'ingress' }, device: VXLAN_DEV })
    out.push({ key: 'toOverlay', hook: { ifindex: state.vxlan.ifindex, point: 'egress' }, device: VXLAN_DEV })
  }
  const seen = new Set<number>()
  for (const ep of Object.values(state.endpoints)) {
    if (seen.has(ep.ifindex)) continue
    seen.add(ep.ifindex)
    out.push({ key: 'fromPod', hook: podHook(ep), device: ep.ifname })
  }
  return out
}

/** The pinned from-pod program of this node (caller closes it). */
export function openFromPod(state: NodeState): PinnedProgram {
  return openPinnedProgram(progPinPath(state.pinDir, 'fromPod'))
}

export const programName = (key: ProgramKey): string => Programs[key].program
