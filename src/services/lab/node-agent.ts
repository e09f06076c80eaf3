// One lab node's work in one process, started by `lab up` / `lab down` as
// `nsenter --net=/run/netns/<node> node node-agent.js` (so every service
// below acts on the node's namespace while the pins stay visible). Reads one
// JSON request on stdin, writes one JSON reply on stdout. Batching a node's
// attach + pods + endpoints + routes here costs one Node.js start per node
// instead of one per CLI command.
import { UserError } from '../../errors.js'
import { type Mode } from '../config.js'
import { addEndpoint } from '../endpoints.js'
import { attach, detach } from '../node.js'
import { listRoutes, syncRoutes, type RouteView } from '../routes.js'
import { createNetkitPod, ipBatch } from './netns.js'
import { POD_GATEWAY, type PodDevice } from './plan.js'

export type AgentRequest =
  | {
      op: 'setup'
      pinDir: string
      nodeIp: string
      podCidr: string
      device: string
      mode: Mode
      podDevice: PodDevice
      pods: { ns: string; ip: string; hostIf: string }[]
      /** absent: a podnet-bpf agent owns this node's routes (attach is then a no-op) */
      routes?: { cidr: string; nodeIp: string }[]
    }
  | { op: 'detach'; pinDir: string }

export type AgentReply =
  | { ok: true; podMtu?: number; routes?: RouteView[]; removed?: number; timings: Record<string, number> }
  | { ok: false; error: { message: string; hint: string | null; user: boolean } }

function setup(req: Extract<AgentRequest, { op: 'setup' }>): AgentReply {
  const timings: Record<string, number> = {}
  let t = performance.now()
  const lap = (k: string) => {
    const now = performance.now()
    timings[k] = Math.round(now - t)
    t = now
  }
  const a = attach({ flags: { nodeIp: req.nodeIp, podCidr: req.podCidr, device: req.device, mode: req.mode }, pinDir: req.pinDir })
  lap('attach')

  // pods per the contract: eth0 in the pod (a veth or netkit peer), one /32, gateway on-link
  const up = req.pods.map((p) => ['link', 'set', p.hostIf, 'up'])
  if (req.podDevice === 'netkit') {
    for (const p of req.pods) createNetkitPod(p.hostIf, p.ns, a.podMtu)
    ipBatch(null, up)
  } else {
    ipBatch(null, [...req.pods.map((p) => ['link', 'add', p.hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', p.ns]), ...up])
  }
  for (const p of req.pods) {
    ipBatch(p.ns, [
      ['link', 'set', 'lo', 'up'],
      ['link', 'set', 'eth0', 'mtu', String(a.podMtu), 'up'],
      ['addr', 'add', `${p.ip}/32`, 'dev', 'eth0'],
      ['route', 'add', POD_GATEWAY, 'dev', 'eth0', 'scope', 'link'],
      ['route', 'add', 'default', 'via', POD_GATEWAY, 'dev', 'eth0'],
    ])
  }
  lap('pods')
  for (const p of req.pods) addEndpoint({ ip: p.ip, ifname: p.hostIf, pinDir: req.pinDir })
  lap('endpoints')
  if (req.routes) syncRoutes(req.routes, req.pinDir)
  const routes = listRoutes(req.pinDir)
  lap('routes')
  return { ok: true, podMtu: a.podMtu, routes, timings }
}

function handle(req: AgentRequest): AgentReply {
  if (req.op === 'setup') return setup(req)
  const t = performance.now()
  const r = detach(req.pinDir)
  return { ok: true, removed: r.removed.length, timings: { detach: Math.round(performance.now() - t) } }
}

async function main(): Promise<void> {
  let input = ''
  for await (const chunk of process.stdin) input += chunk
  let reply: AgentReply
  try {
    reply = handle(JSON.parse(input) as AgentRequest)
  } catch (e) {
    const user = e instanceof UserError
    reply = { ok: false, error: { message: (e as Error).message, hint: user ? (e.hint ?? null) : null, user } }
  }
  process.stdout.write(JSON.stringify(reply) + '\n')
  process.exitCode = reply.ok ? 0 : 1
}

await main()
