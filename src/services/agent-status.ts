// The agent's status file: what a running `podnet-bpf agent` reports about
// itself (datastore, lease, last sync, peers), next to the node state, so
// `podnet-bpf status` can show it without talking to the agent.
import { join } from 'node:path'
import { z } from '../util/zod.js'
import { readJsonFile, writeJsonAtomic } from '../util/jsonfile.js'
import { stateDir } from './state.js'
import { pidAlive } from '../util/process.js'

export const AgentStatusSchema = z.object({
  pid: z.number(),
  nodeName: z.string(),
  datastore: z.string(),
  startedAt: z.string(),
  updatedAt: z.string(),
  /** the /healthz /readyz /metrics base URL */
  url: z.string().nullable(),
  ready: z.boolean(),
  reason: z.string().nullable(),
  podCidr: z.string().nullable(),
  nodeIp: z.string().nullable(),
  peers: z.number(),
  routes: z.record(z.string(), z.number()),
  /** origin (static, datastore, bgp) of each route the agent installed, by CIDR */
  routeOrigins: z.record(z.string(), z.string()).optional(),
  lastSync: z
    .object({ at: z.string(), trigger: z.string(), seconds: z.number(), added: z.number(), changed: z.number(), removed: z.number() })
    .nullable(),
  lastError: z.object({ at: z.string(), message: z.string() }).nullable(),
  datastoreDetail: z.record(z.string(), z.unknown()),
  stoppedAt: z.string().nullable(),
  /** BGP mode: daemon and sessions (BgpStatus of src/agent/bgp/controller.ts) */
  bgp: z
    .object({
      asn: z.number(),
      routerId: z.string(),
      table: z.number(),
      daemon: z.object({ pid: z.number().nullable(), restarts: z.number(), config: z.string(), socket: z.string() }),
      sessions: z.array(
        z.object({
          name: z.string(),
          description: z.string(),
          peer: z.string(),
          asn: z.number(),
          state: z.string(),
          since: z.string(),
          uptimeSeconds: z.number(),
          info: z.string(),
          prefixes: z.object({ received: z.number(), accepted: z.number(), rejected: z.number() }),
        }),
      ),
      routes: z.number(),
      error: z.string().nullable(),
    })
    .nullable()
    .optional(),
})
export type AgentStatus = z.infer<typeof AgentStatusSchema>

export function agentStatusPath(pinDir: string): string {
  return join(stateDir(), `agent${pinDir.replace(/\//g, '_')}.json`)
}

export function writeAgentStatus(pinDir: string, s: AgentStatus): void {
  writeJsonAtomic(agentStatusPath(pinDir), s)
}

/** The last status the agent of this pin dir wrote; `running` says whether
 * its process is still there. null: no agent ever ran here. */
export function readAgentStatus(pinDir: string): (AgentStatus & { running: boolean }) | null {
  let s: AgentStatus | null
  try {
    s = readJsonFile(agentStatusPath(pinDir), AgentStatusSchema)
  } catch {
    return null
  }
  if (!s) return null
  return { ...s, running: s.stoppedAt === null && pidAlive(s.pid) }
}
