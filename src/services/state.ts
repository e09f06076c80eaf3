// What attach created on this node, so later commands and detach act on
// exactly that. One JSON file per pin dir, written atomically.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'
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
  /** ifindexes whose clsact qdisc we created */
  clsactCreated: z.array(z.number()),
  /** sysctls we changed, with the value to restore */
  sysctls: z.array(z.object({ path: z.string(), old: z.string() })),
  /** encapsulation as requested per route ('default' follows the node mode) */
  routeEncap: z.record(z.string(), z.union([EncapSchema, z.literal('default')])),
  /** endpoint IP → host veth name */
  endpoints: z.record(z.string(), z.object({ ifname: z.string(), ifindex: z.number() })),
  attachedAt: z.string(),
})
export type NodeState = z.infer<typeof NodeStateSchema>

export function stateDir(): string {
  return process.env.PODNET_STATE_DIR ?? '/run/podnet-bpf'
}

export function statePath(pinDir: string): string {
  return join(stateDir(), `${pinDir.replace(/\//g, '_')}.json`)
}

export function loadState(pinDir: string): NodeState | null {
  let text: string
  try {
    text = readFileSync(statePath(pinDir), 'utf8')
  } catch {
    return null
  }
  const r = NodeStateSchema.safeParse(JSON.parse(text))
  if (!r.success) throw new Error(`corrupt state file ${statePath(pinDir)}: ${r.error.message}`)
  return r.data
}

export function saveState(s: NodeState): void {
  mkdirSync(stateDir(), { recursive: true })
  const p = statePath(s.pinDir)
  const tmp = `${p}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(s, null, 2))
  renameSync(tmp, p)
}

export function removeState(pinDir: string): void {
  rmSync(statePath(pinDir), { force: true })
}
