// `lab add-node` / `lab remove-node` on a lab that runs on etcd + agents:
// how long the cluster takes to converge, measured on every peer's routes
// map (read through its pins, polled every 5 ms). With --routing bgp the
// top-of-rack router gets a session for the new node first, and a leaving
// node's session is removed from it, which withdraws its CIDR everywhere.
import { rmSync } from 'node:fs'
import { UserError } from '../../errors.js'
import { agentStatusPath } from '../agent-status.js'
import { bgpRunDir } from '../bird.js'
import { stateDir } from '../state.js'
import { reconfigureRouter } from './router.js'
import { createPods, refreshPaths, requireLab, runAgent } from './lab.js'
import { addNetns, deleteNetns, ipBatch, nsSysctl, spawnAsync, nsenterArgs } from './netns.js'
import { BPFFS, MAX_NODES, NODE_DEVICE, ROUTER_HOST, SUBNETS, etcdNs, labPrefix } from './plan.js'
import { ETCD_PREFIX, etcdEndpoints, startAgent, stopProcessesIn, timeUntil, waitAgentReady } from './cluster.js'
import { saveLab, type LabNode, type LabState } from './state.js'
import type { Progress } from './lab.js'

export interface MembershipResult {
  lab: LabState
  node: string
  podCidr: string
  /** agent start → lease written (add) */
  leaseMs: number | null
  /** the event `peers` is timed from: lease written (add); lease deleted, or with BGP the router dropping the node's session (remove) */
  from: string
  /** `from` → route present (add) / gone (remove), per peer; null: not within the timeout */
  peers: Record<string, number | null>
}

function requireEtcdLab(name: string): LabState {
  const s = requireLab(name)
  if (s.datastore !== 'etcd')
    throw new UserError(`lab "${name}" runs without agents (--datastore static)`, 'bring up a lab on etcd: podnet-bpf lab up')
  return s
}

async function plumbNode(s: LabState, n: LabNode): Promise<void> {
  addNetns([n.ns, ...n.pods.map((p) => p.ns)])
  await Promise.all(
    [n.ns, ...n.pods.map((p) => p.ns)].map((ns) =>
      nsSysctl(ns, ['net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']),
    ),
  )
  ipBatch(s.underlayNs, [
    ['link', 'add', n.underlayPort, 'type', 'veth', 'peer', 'name', NODE_DEVICE, 'netns', n.ns],
    ['link', 'set', n.underlayPort, 'master', 'br-a', 'up'],
  ])
  ipBatch(n.ns, [
    ['link', 'set', 'lo', 'up'],
    ['addr', 'add', `${n.ip}/24`, 'dev', NODE_DEVICE],
    ['link', 'set', NODE_DEVICE, 'up'],
    ...(s.routerNs ? [['route', 'add', `${SUBNETS.b}.0/24`, 'via', `${SUBNETS.a}.${ROUTER_HOST}`, 'dev', NODE_DEVICE]] : []),
  ])
}

export async function labAddNode(input: { name: string; pods?: number; onProgress?: Progress }): Promise<MembershipResult> {
  const say = input.onProgress ?? (() => {})
  const s = requireEtcdLab(input.name)
  const i = Math.max(0, ...s.nodes.map((n) => Number(n.name.replace(/^node/, '')) || 0)) + 1
  if (i > MAX_NODES) throw new UserError(`lab "${s.name}" has node numbers up to ${MAX_NODES} already`, 'remove a node first')
  const name = `node${i}`
  const ns = `${labPrefix(s.name)}${name}`
  const node: LabNode = {
    name,
    ns,
    ip: `${SUBNETS.a}.${i}`,
    subnet: 'a',
    podCidr: '',
    pinDir: `${BPFFS}/${ns}`,
    underlayPort: `n${i}`,
    pods: Array.from({ length: input.pods ?? 2 }, (_, j) => ({
      name: `${name}-pod${j + 1}`,
      node: name,
      ns: `${ns}-pod${j + 1}`,
      ip: '',
      hostIf: `pn-pod${j + 1}`,
    })),
    podMtu: null,
    paths: [],
  }
  const peers = [...s.nodes]
  s.nodes.push(node)
  saveLab(s)
  await plumbNode(s, node)
  // the router knows the new node before its agent first connects
  if (s.routing === 'bgp') reconfigureRouter(s)
  const t0 = Date.now()
  startAgent(s.name, node, s.mode, s.routing)
  const { podCidr, leasedAt } = await waitAgentReady(s.name, node, 90_000, true)
  node.podCidr = podCidr
  say(`${name} (${node.ip}): lease ${podCidr} after ${leasedAt - t0} ms`)
  // the peers are watched while the new agent is still attaching
  const [times] = await Promise.all([timeUntil(peers, (c) => c.has(podCidr), leasedAt), waitAgentReady(s.name, node)])
  const base = podCidr.split('/')[0]!.split('.').map(Number)
  node.pods.forEach((p, j) => (p.ip = `${base[0]}.${base[1]}.${base[2]}.${base[3]! + 10 + j}`))
  saveLab(s)
  await createPods({ mode: s.mode, podDevice: s.podDevice, nodes: [{ ...node, pods: node.pods }] }, s, say)
  await refreshPaths(s)
  return { lab: s, node: name, podCidr, leaseMs: leasedAt - t0, from: 'lease written', peers: times }
}

export async function labRemoveNode(input: { name: string; node: string; onProgress?: Progress }): Promise<MembershipResult> {
  const say = input.onProgress ?? (() => {})
  const s = requireEtcdLab(input.name)
  const node = s.nodes.find((n) => n.name === input.node || n.ns === input.node)
  if (!node) throw new UserError(`"${input.node}" is not a node of lab "${s.name}"`, `use one of: ${s.nodes.map((n) => n.name).join(', ')}`)
  const peers = s.nodes.filter((n) => n !== node)
  // BGP: the node leaves the fabric when the router drops its session (and withdraws its CIDR);
  // timed before the agent stops, whose daemon would otherwise leave stale routes (graceful restart)
  const viaRouter = s.routing === 'bgp' ? await dropFromRouter(s, peers, node) : null
  // the agent stops as on any SIGTERM (datapath and lease kept); the node leaves by its lease being deleted
  await stopProcessesIn([node.ns, ...node.pods.map((p) => p.ns)])
  const key = `${ETCD_PREFIX}/subnets/${node.podCidr.replace('/', '-')}`
  const r = await spawnAsync('nsenter', nsenterArgs(etcdNs(s.name, 1), ['etcdctl', '--endpoints', etcdEndpoints(), 'del', key]), {
    env: { ...process.env, ETCDCTL_API: '3' },
    timeoutMs: 15_000,
  })
  if (r.status !== 0)
    throw new UserError(`cannot delete the lease of ${node.name}: ${r.stderr.trim()}`, 'is the lab etcd up? see podnet-bpf lab logs etcd1')
  const t0 = Date.now()
  const times = viaRouter ?? (await timeUntil(peers, (c) => !c.has(node.podCidr), t0))
  const from = viaRouter ? 'router dropped its session' : 'lease deleted'
  say(
    `${node.name}: ${from}${viaRouter ? `, lease ${node.podCidr} deleted` : ` (${node.podCidr})`}; routes gone on ${Object.keys(times).length} peers`,
  )
  const pods = node.pods.map((p) => ({ ns: p.ns, ip: p.ip }))
  const d = await runAgent(
    node.ns,
    { op: 'detach', nodeNs: node.ns, pinDir: node.pinDir, podDevice: s.podDevice, pods },
    30_000 + pods.length * 2_000,
  )
  if (!d.ok) say(`detach ${node.name}: ${d.error.message}`)
  deleteNetns([...node.pods.map((p) => p.ns), node.ns])
  rmSync(agentStatusPath(node.pinDir), { force: true })
  rmSync(bgpRunDir(stateDir(), node.pinDir), { recursive: true, force: true })
  s.nodes = peers
  saveLab(s)
  await refreshPaths(s)
  return { lab: s, node: node.name, podCidr: node.podCidr, leaseMs: null, from, peers: times }
}

/** The router's config without the node, applied; ms until each peer's map lost the node's CIDR. */
async function dropFromRouter(s: LabState, peers: LabNode[], node: LabNode): Promise<Record<string, number | null>> {
  const t0 = Date.now()
  reconfigureRouter({ ...s, nodes: peers })
  return timeUntil(peers, (c) => !c.has(node.podCidr), t0)
}
