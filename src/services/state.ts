// What attach created on this node, so later commands and detach act on
// exactly that. One JSON file per pin dir, written atomically.
import { readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { z } from '../util/zod.js'
import { readJsonFile, writeJsonAtomic } from '../util/jsonfile.js'
import { EncapSchema, NodeConfigSchema } from './config.js'

export const NodeStateSchema = z.object({
  version: z.literal(1),
  pinDir: z.string(),
  config: NodeConfigSchema,
  deviceIfindex: z.number(),
  deviceMtu: z.number(),
  podMtu: z.number(),
  vxlan: z.object({ ifindex: z.number(), created: z.boolean() }).nullable(),
  build: z.string(),
  programs: z.record(z.string(), z.object({ id: z.number(), hash: z.string() })),
  /** how the programs are attached (resolved from config.attachMode); state
   * written before tcx has none: its programs are tc filters */
  attachMode: z.enum(['tcx', 'tc']).default('tc'),
  /** ifindexes whose clsact qdisc we created */
  clsactCreated: z.array(z.number()),
  /** sysctls we changed, with the value to restore */
  sysctls: z.array(z.object({ path: z.string(), old: z.string() })),
  /** encapsulation as requested per route ('default' follows the node mode); one enum, not a union:
   * a union records a failed branch for every 'default' route, a cost every routes sync paid per route */
  routeEncap: z.record(z.string(), z.enum([...EncapSchema.options, 'default'])),
  /** endpoint IP → host-side device (veth, or the primary of a netkit pair;
   * state written before netkit pods has no `device`: veth) */
  endpoints: z.record(
    z.string(),
    z.object({ ifname: z.string(), ifindex: z.number(), device: z.enum(['veth', 'netkit']).default('veth') }),
  ),
  attachedAt: z.string(),
  /** the network namespace attached in (absent in state written before it was recorded) */
  netns: z.object({ dev: z.number(), ino: z.number() }).optional(),
})
export type NodeState = z.infer<typeof NodeStateSchema>

export function stateDir(): string {
  return process.env.PODNET_STATE_DIR ?? '/run/podnet-bpf'
}

export function statePath(pinDir: string): string {
  return join(stateDir(), `${pinDir.replace(/\//g, '_')}.json`)
}

export function loadState(pinDir: string): NodeState | null {
  return readJsonFile(statePath(pinDir), NodeStateSchema)
}

export function saveState(s: NodeState): void {
  writeJsonAtomic(statePath(s.pinDir), s)
}

export function removeState(pinDir: string): void {
  rmSync(statePath(pinDir), { force: true })
}

/** The node's lock file (see datapath/lock.ts), beside its state file. */
export function lockPath(pinDir: string): string {
  return join(stateDir(), `${pinDir.replace(/\//g, '_')}.lock`)
}

/** The lock serialising attaches within one network namespace (one podnet per namespace). */
export function netnsLockPath(netns: { dev: number; ino: number }): string {
  return join(stateDir(), `netns-${netns.dev}-${netns.ino}.lock`)
}

/** Every node state in the state dir that parses (others' files are skipped). */
export function listStates(): NodeState[] {
  let names: string[]
  try {
    names = readdirSync(stateDir())
  } catch {
    return []
  }
  const out: NodeState[] = []
  for (const f of names) {
    if (!f.startsWith('_') || !f.endsWith('.json')) continue
    try {
      const r = NodeStateSchema.safeParse(JSON.parse(readFileSync(join(stateDir(), f), 'utf8')))
      if (r.success) out.push(r.data)
    } catch {
      /* unreadable or mid-write: not a node we can reason about */
    }
  }
  return out
}
