// One lab node's work in one process, started by `lab up` / `lab down` as
// `nsenter --net=/run/netns/<node> node node-agent.js` (so every service
// below acts on the node's namespace while the pins stay visible). Reads one
// JSON request on stdin, writes one JSON reply on stdout. Batching a node's
// attach + pods + endpoints + routes here costs one Node.js start per node
// instead of one per CLI command.
import { UserError } from '../../errors.js'
import { formatZodError } from '../config.js'
import { attach, detach } from '../node.js'
import { listRoutes, syncRoutes, type RouteView } from '../routes.js'
import { AgentRequestSchema, type AgentRequest } from './agent-request.js'
import { removeLabIpam, runPluginAll } from './cni-client.js'

export type { AgentRequest }

export type AgentReply =
  | { ok: true; podMtu?: number; routes?: RouteView[]; removed?: number; timings: Record<string, number> }
  | { ok: false; error: { message: string; hint: string | null; user: boolean } }

async function setup(req: Extract<AgentRequest, { op: 'setup' }>): Promise<AgentReply> {
  const timings: Record<string, number> = {}
  let t = performance.now()
  const lap = (k: string) => {
    const now = performance.now()
    timings[k] = Math.round(now - t)
    t = now
  }
  const a = attach({ flags: { nodeIp: req.nodeIp, podCidr: req.podCidr, device: req.device, mode: req.mode }, pinDir: req.pinDir })
  lap('attach')

  // pods as a runtime makes them: the CNI plugin, ADD per pod, all at once
  const failed = await runPluginAll('ADD', { ns: req.nodeNs, pinDir: req.pinDir }, req.podDevice, req.pods)
  if (failed.length) throw new Error(failed.join('; '))
  lap('pods')
  // absent when a podnet-bpf agent owns this node's routes (lab on etcd)
  if (req.routes) syncRoutes(req.routes, req.pinDir)
  const routes = listRoutes(req.pinDir)
  lap('routes')
  return { ok: true, podMtu: a.podMtu, routes, timings }
}

async function handle(req: AgentRequest): Promise<AgentReply> {
  // no node lock held here: the plugin processes ADD/DEL pods under it themselves
  if (req.op === 'setup') return setup(req)
  const t = performance.now()
  // DEL per pod, as a runtime does when it removes them; then the node
  const errors = await runPluginAll('DEL', { ns: req.nodeNs, pinDir: req.pinDir }, req.podDevice, req.pods)
  const tDel = performance.now()
  const r = detach(req.pinDir)
  removeLabIpam(req.nodeNs)
  if (errors.length) throw new Error(errors.join('; '))
  return { ok: true, removed: r.removed.length, timings: { del: Math.round(tDel - t), detach: Math.round(performance.now() - tDel) } }
}

async function main(): Promise<void> {
  let input = ''
  for await (const chunk of process.stdin) input += chunk
  let reply: AgentReply
  try {
    const parsed = AgentRequestSchema.safeParse(JSON.parse(input))
    if (!parsed.success) throw formatZodError(parsed.error, 'lab node agent request')
    reply = await handle(parsed.data)
  } catch (e) {
    const user = e instanceof UserError
    reply = { ok: false, error: { message: (e as Error).message, hint: user ? (e.hint ?? null) : null, user } }
  }
  process.stdout.write(JSON.stringify(reply) + '\n')
  process.exitCode = reply.ok ? 0 : 1
}

await main()
