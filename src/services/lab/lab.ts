// `podnet-bpf lab`: a multi-node cluster in network namespaces on this host.
//
//   underlay ns:  bridge br-a (subnet A)  [bridge br-b (subnet B)]
//                  |  n1   n2 …             |  n3 …
//   node ns:      eth0 (192.168.77.i/24)   eth0 (192.168.88.i/24)
//                  |  pn-podJ (host veth)    …
//   pod ns:       eth0 (10.244.i.(9+J)/32, gateway 169.254.1.1)
//   router ns:    eth-a 192.168.77.254 ── eth-b 192.168.88.254 (forwarding, rp_filter 0)
//
// Each node is attached with podnet-bpf in its own namespace and pin dir by a
// node agent (node-agent.ts) started with nsenter; the nodes run in parallel.
import { existsSync, readdirSync, rmdirSync, rmSync, unlinkSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { UserError } from '../../errors.js'
import { requirePrivileges } from '../preflight.js'
import { stateDir, statePath } from '../state.js'
import type { RouteView } from '../routes.js'
import type { AgentReply, AgentRequest } from './node-agent.js'
import { labIpamDir } from './cni-client.js'
import { addNetns, deleteNetns, ipBatch, listNetns, netnsExists, nsenterArgs, nsSysctl, spawnAsync } from './netns.js'
import {
  BPFFS,
  LAB_NS_PREFIX,
  NODE_DEVICE,
  NODE_ASN,
  ROUTER_ASN,
  ROUTER_HOST,
  SUBNETS,
  etcdNs,
  labPrefix,
  planLab,
  planNamespaces,
  routerIp,
  validateLabName,
  type LabPlan,
  type PlanInput,
} from './plan.js'
import {
  CLUSTER_NETWORK,
  ETCD_MEMBERS,
  buildEtcdNamespaces,
  etcdEndpoints,
  initCluster,
  readRoutes,
  removeLabDir,
  startAgent,
  startEtcd,
  stopProcessesIn,
  timeUntil,
  waitAgentReady,
} from './cluster.js'
import { readAgentStatus } from '../agent-status.js'
import type { BgpSession } from '../bird.js'
import { killStrayRouter, routerStatus, startRouter, type RouterStatus } from './router.js'
import { listLabNames, loadLab, removeLab, saveLab, type LabNode, type LabPod, type LabState } from './state.js'
import { pidAlive } from '../../util/process.js'

export type Progress = (line: string) => void

/** The compiled agent (also when this module runs from sources under vitest). */
export function agentPath(): string {
  const here = fileURLToPath(import.meta.url)
  if (here.endsWith('.js')) return join(dirname(here), 'node-agent.js')
  return resolve(dirname(here), '../../../dist/services/lab/node-agent.js')
}

export async function runAgent(ns: string, req: AgentRequest, timeoutMs = 60_000): Promise<AgentReply> {
  const r = await spawnAsync('nsenter', nsenterArgs(ns, [process.execPath, agentPath()]), { input: JSON.stringify(req), timeoutMs })
  const last = r.stdout.trim().split('\n').pop() ?? ''
  try {
    return JSON.parse(last) as AgentReply
  } catch {
    const why = r.signal ? `killed by ${r.signal}` : `exit ${r.status}`
    return {
      ok: false,
      error: {
        message: `node agent in ${ns} failed (${why}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' / ')}`,
        hint: null,
        user: false,
      },
    }
  }
}

function lanOf(p: LabPlan): { a: string[]; b: string[] } {
  return { a: p.nodes.filter((n) => n.subnet === 'a').map((n) => n.name), b: p.nodes.filter((n) => n.subnet === 'b').map((n) => n.name) }
}

// ---------------------------------------------------------------- up

export interface UpInput extends PlanInput {
  onProgress?: Progress
}

export interface UpResult {
  lab: LabState
  seconds: number
}

export async function labUp(input: UpInput): Promise<UpResult> {
  const t0 = performance.now()
  const say = (s: string) => input.onProgress?.(`[${((performance.now() - t0) / 1000).toFixed(2)}s] ${s}`)
  requirePrivileges()
  const plan = planLab(input)
  const prefix = labPrefix(plan.name)
  const existing = loadLab(plan.name)
  const leftovers = listNetns().filter((n) => n.startsWith(prefix))
  if (existing || leftovers.length) {
    const crashed = existing?.status === 'creating' && !pidAlive(existing.pid)
    throw new UserError(
      `lab "${plan.name}" already exists${crashed ? ' (its `lab up` crashed)' : existing ? '' : ` (leftover namespaces: ${leftovers.slice(0, 3).join(', ')}…)`}`,
      `remove it first: podnet-bpf lab down --name ${plan.name}, or pick another --name`,
    )
  }
  if (!existsSync(agentPath())) throw new UserError(`node agent ${agentPath()} not found`, 'build podnet-bpf first: npm run build')

  const state: LabState = {
    version: 1,
    name: plan.name,
    mode: plan.mode,
    podDevice: plan.podDevice,
    datastore: plan.datastore,
    routing: plan.routing,
    status: 'creating',
    createdAt: new Date().toISOString(),
    pid: process.pid,
    underlayNs: plan.underlayNs,
    routerNs: plan.routerNs,
    nodes: plan.nodes.map((n) => ({ ...n, podMtu: null, paths: [] })),
  }
  saveLab(state)
  try {
    await buildUnderlay(plan, say)
    if (plan.datastore === 'etcd') await startCluster(plan, state, say)
    else await attachNodes(plan, state, say)
    state.status = 'ready'
    saveLab(state)
    say(`lab "${plan.name}" is up`)
    return { lab: state, seconds: (performance.now() - t0) / 1000 }
  } catch (e) {
    say(`failed: ${(e as Error).message.split('\n')[0]}; removing what was created`)
    await labDown({ name: plan.name }).catch(() => {})
    throw e
  }
}

async function buildUnderlay(plan: LabPlan, say: Progress): Promise<void> {
  const all = planNamespaces(plan)
  const lan = lanOf(plan)
  say(
    `creating ${all.length} namespaces: underlay${plan.routerNs ? ', router' : ''}, ${plan.nodes.length} nodes, ${plan.nodes.reduce((s, n) => s + n.pods.length, 0)} pods`,
  )
  addNetns(all)
  // sysctls before any link exists, so `default` applies to every new device
  const noV6 = ['net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']
  await Promise.all(
    all.map((ns) =>
      nsSysctl(
        ns,
        ns === plan.routerNs
          ? [...noV6, 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0']
          : noV6,
      ),
    ),
  )

  const bridges = plan.routerNs ? ['br-a', 'br-b'] : ['br-a']
  const ul: string[][] = []
  for (const br of bridges) ul.push(['link', 'add', br, 'type', 'bridge'], ['link', 'set', br, 'up'])
  for (const n of plan.nodes) {
    ul.push(['link', 'add', n.underlayPort, 'type', 'veth', 'peer', 'name', NODE_DEVICE, 'netns', n.ns])
    ul.push(['link', 'set', n.underlayPort, 'master', `br-${n.subnet}`, 'up'])
  }
  if (plan.routerNs) {
    for (const s of ['a', 'b'] as const) {
      ul.push(['link', 'add', `rtr-${s}`, 'type', 'veth', 'peer', 'name', `eth-${s}`, 'netns', plan.routerNs])
      ul.push(['link', 'set', `rtr-${s}`, 'master', `br-${s}`, 'up'])
    }
  }
  ipBatch(plan.underlayNs, ul)
  if (plan.routerNs) {
    ipBatch(plan.routerNs, [
      ['link', 'set', 'lo', 'up'],
      ['addr', 'add', `${SUBNETS.a}.${ROUTER_HOST}/24`, 'dev', 'eth-a'],
      ['addr', 'add', `${SUBNETS.b}.${ROUTER_HOST}/24`, 'dev', 'eth-b'],
      ['link', 'set', 'eth-a', 'up'],
      ['link', 'set', 'eth-b', 'up'],
    ])
  }
  for (const n of plan.nodes) {
    const other = n.subnet === 'a' ? 'b' : 'a'
    ipBatch(n.ns, [
      ['link', 'set', 'lo', 'up'],
      ['addr', 'add', `${n.ip}/24`, 'dev', NODE_DEVICE],
      ['link', 'set', NODE_DEVICE, 'up'],
      // the other subnet through the router (node namespaces only; never the host's)
      ...(plan.routerNs
        ? [['route', 'add', `${SUBNETS[other]}.0/24`, 'via', `${SUBNETS[n.subnet]}.${ROUTER_HOST}`, 'dev', NODE_DEVICE]]
        : []),
    ])
  }
  say(
    `underlay: ${SUBNETS.a}.0/24 [${lan.a.join(' ')}]` +
      (plan.routerNs ? `, ${SUBNETS.b}.0/24 [${lan.b.join(' ')}] behind router ${plan.routerNs}` : ''),
  )
}

async function attachNodes(plan: LabPlan, state: LabState, say: Progress): Promise<void> {
  const failures: string[] = []
  await Promise.all(
    plan.nodes.map(async (n, i) => {
      const t = performance.now()
      const peers = plan.nodes.filter((p) => p !== n)
      const reply = await runAgent(n.ns, {
        op: 'setup',
        nodeNs: n.ns,
        pinDir: n.pinDir,
        nodeIp: n.ip,
        podCidr: n.podCidr,
        device: NODE_DEVICE,
        mode: plan.mode,
        podDevice: plan.podDevice,
        pods: n.pods.map((p) => ({ ns: p.ns, ip: p.ip })),
        routes: peers.map((p) => ({ cidr: p.podCidr, nodeIp: p.ip })),
      })
      if (!reply.ok) {
        failures.push(`${n.name}: ${reply.error.message}${reply.error.hint ? ` (${reply.error.hint})` : ''}`)
        return
      }
      const node = state.nodes[i]!
      node.podMtu = reply.podMtu ?? null
      node.paths = (reply.routes ?? []).map((r: RouteView) => ({
        peer: peers.find((p) => p.podCidr === r.cidr)?.name ?? '?',
        cidr: r.cidr,
        nodeIp: r.nodeIp,
        encap: r.encap,
        via: 'node' as const,
      }))
      const vx = node.paths.filter((p) => p.encap === 'vxlan').length
      say(
        `${n.name} (${n.ip}): attached ${plan.mode}, pod MTU ${node.podMtu}, ${n.pods.length} pods, ` +
          `${node.paths.length} routes (${node.paths.length - vx} direct, ${vx} vxlan) in ${((performance.now() - t) / 1000).toFixed(2)}s ` +
          `(${Object.entries(reply.timings)
            .map(([k, v]) => `${k} ${(v / 1000).toFixed(2)}s`)
            .join(', ')})`,
      )
    }),
  )
  if (failures.length)
    throw new UserError(`attaching the lab nodes failed:\n  ${failures.join('\n  ')}`, 'see `podnet-bpf doctor`; the lab was removed again')
}

/** etcd + agents: members up, cluster init, every agent started at once;
 * once each is ready its leased pod CIDR decides the pods' IPs, and the
 * pods are created on the attached node. */
async function startCluster(plan: LabPlan, state: LabState, say: Progress): Promise<void> {
  const nsOf = (k: number) => etcdNs(plan.name, k)
  addNetns(Array.from({ length: ETCD_MEMBERS }, (_, i) => nsOf(i + 1)))
  await buildEtcdNamespaces(plan, nsOf)
  startEtcd(plan.name, nsOf)
  await initCluster(nsOf(1), plan.mode)
  say(`etcd: ${ETCD_MEMBERS} members (${etcdEndpoints()}), cluster network ${CLUSTER_NETWORK}, /24 per node`)
  if (plan.routing === 'bgp') {
    // up before the agents, so their first connect finds it
    const pid = await startRouter(plan)
    say(
      `router: BIRD (pid ${pid}) in ${plan.routerNs} as top-of-rack router, AS ${ROUTER_ASN} at ${routerIp('a')} and ${routerIp('b')}; ` +
        `eBGP with each node's agent (AS ${NODE_ASN}), no node-to-node mesh`,
    )
  }
  const t0 = Date.now()
  for (const n of plan.nodes) startAgent(plan.name, n, plan.mode, plan.routing)
  const failures: string[] = []
  await Promise.all(
    plan.nodes.map(async (n, i) => {
      try {
        const { podCidr } = await waitAgentReady(plan.name, n)
        const node = state.nodes[i]!
        node.podCidr = podCidr
        const base = podCidr.split('/')[0]!.split('.').map(Number)
        for (const [j, p] of node.pods.entries()) p.ip = `${base[0]}.${base[1]}.${base[2]}.${base[3]! + 10 + j}`
        say(`${n.name} (${n.ip}): agent ready after ${((Date.now() - t0) / 1000).toFixed(2)}s, leased ${podCidr}`)
      } catch (e) {
        failures.push(`${n.name}: ${(e as Error).message}`)
      }
    }),
  )
  if (failures.length) throw new UserError(`starting the lab agents failed:\n  ${failures.join('\n  ')}`, 'see `podnet-bpf lab logs NODE`')
  saveLab(state)
  await createPods(plan, state, say)
  if (plan.routing === 'bgp') await waitSessions(state)
}

/** BGP: until every agent says its router session is Established with every
 * peer's CIDR (agents read BIRD every 2 s), so the status `lab up` prints is
 * current; never fails (lab status shows what is missing). */
async function waitSessions(state: LabState, timeoutMs = 10_000): Promise<void> {
  const up = (n: LabNode) => {
    const s = labAgent(n.pinDir)?.bgp?.sessions ?? []
    // and has taken every other node's CIDR from it
    return s.length > 0 && s.every((x) => x.state === 'Established' && x.prefixes.accepted >= state.nodes.length - 1)
  }
  for (const end = Date.now() + timeoutMs; !state.nodes.every(up) && Date.now() < end;) await new Promise((r) => setTimeout(r, 100))
}

/** Pods on agent-run nodes (the agent owns the routes), then each node's paths once its routes converged. */
export async function createPods(
  plan: Pick<LabPlan, 'mode' | 'podDevice'> & { nodes: LabPlan['nodes'] },
  state: LabState,
  say: Progress,
): Promise<void> {
  const failures: string[] = []
  await Promise.all(
    plan.nodes.map(async (n) => {
      const node = state.nodes.find((x) => x.name === n.name)!
      const reply = await runAgent(n.ns, {
        op: 'setup',
        nodeNs: n.ns,
        pinDir: n.pinDir,
        nodeIp: n.ip,
        podCidr: node.podCidr,
        device: NODE_DEVICE,
        mode: plan.mode,
        podDevice: plan.podDevice,
        pods: node.pods.map((p) => ({ ns: p.ns, ip: p.ip })),
      })
      if (!reply.ok) return void failures.push(`${n.name}: ${reply.error.message}${reply.error.hint ? ` (${reply.error.hint})` : ''}`)
      node.podMtu = reply.podMtu ?? null
    }),
  )
  if (failures.length) throw new UserError(`creating the lab pods failed:\n  ${failures.join('\n  ')}`, 'see `podnet-bpf lab logs NODE`')
  await refreshPaths(state)
  say(`pods created; every node routes to its ${state.nodes.length - 1} peers`)
}

/** Each node's path per peer, from its routes map, after waiting for the agents to converge. */
export async function refreshPaths(state: LabState, timeoutMs = 30_000): Promise<void> {
  const want = (n: LabNode) => state.nodes.filter((p) => p !== n).map((p) => p.podCidr)
  // a direct route whose next hop is the router (BGP: the peer is in the other subnet)
  const routers = new Set(state.routerNs ? [routerIp('a'), routerIp('b')] : [])
  for (const n of state.nodes) {
    await timeUntil([n], (c) => want(n).every((x) => c.has(x)), Date.now(), timeoutMs)
    n.paths = readRoutes(n.pinDir).map((r) => ({
      peer: state.nodes.find((p) => p.podCidr === r.cidr)?.name ?? '?',
      cidr: r.cidr,
      nodeIp: r.nodeIp,
      encap: r.vxlan ? ('vxlan' as const) : ('direct' as const),
      via: !r.vxlan && routers.has(r.nodeIp) ? ('router' as const) : ('node' as const),
    }))
  }
  saveLab(state)
}

// ---------------------------------------------------------------- down

export interface DownResult {
  name: string
  existed: boolean
  detached: string[]
  namespaces: string[]
  pinDirs: string[]
  warnings: string[]
}

function pinDirsWithPrefix(prefix: string): string[] {
  try {
    return readdirSync(BPFFS)
      .filter((f) => f.startsWith(prefix))
      .map((f) => join(BPFFS, f))
  } catch {
    return []
  }
}

function removePinDir(dir: string): void {
  for (const f of existsSync(dir) ? readdirSync(dir) : []) unlinkSync(join(dir, f))
  try {
    rmdirSync(dir)
  } catch {
    /* already gone */
  }
}

/** Removes everything of lab `name`, from its state file and by prefix
 * (namespaces, pin dirs, node state files), so a crashed `lab up` is cleaned
 * too. Idempotent. Detaches each node first (the path an operator would
 * take), then deletes the namespaces, which takes their devices with them. */
export async function labDown(input: { name: string; onProgress?: Progress }): Promise<DownResult> {
  const name = validateLabName(input.name)
  const say = input.onProgress ?? (() => {})
  requirePrivileges()
  const prefix = labPrefix(name)
  let state: LabState | null = null
  const warnings: string[] = []
  try {
    state = loadLab(name)
  } catch (e) {
    warnings.push((e as Error).message)
  }
  const namespaces = listNetns().filter((n) => n.startsWith(prefix))
  const pinDirs = [...new Set([...(state?.nodes.map((n) => n.pinDir) ?? []), ...pinDirsWithPrefix(prefix)])]
  const existed = state !== null || namespaces.length > 0 || pinDirs.some((d) => existsSync(d))
  const res: DownResult = { name, existed, detached: [], namespaces, pinDirs: pinDirs.filter((d) => existsSync(d)), warnings }
  if (!existed) return res

  // 0. agents, etcd members and node agents of a crashed `lab up` in our namespaces
  const killed = await stopProcessesIn(namespaces)
  if (killed) say(`stopped ${killed} processes in the lab's namespaces (agents, etcd)`)
  // 1. detach every node whose namespace and pins are still there
  const nodeNs = (dir: string) => dir.slice(BPFFS.length + 1)
  const toDetach = pinDirs.filter((d) => existsSync(d) && netnsExists(nodeNs(d)))
  if (toDetach.length) say(`detaching ${toDetach.length} nodes`)
  await Promise.all(
    toDetach.map(async (dir) => {
      const pods = state?.nodes.find((n) => n.pinDir === dir)?.pods.map((p) => ({ ns: p.ns, ip: p.ip })) ?? []
      const req = { op: 'detach' as const, nodeNs: nodeNs(dir), pinDir: dir, podDevice: state?.podDevice ?? 'veth', pods }
      const r = await runAgent(nodeNs(dir), req, 30_000 + pods.length * 2_000)
      if (r.ok) res.detached.push(nodeNs(dir))
      else warnings.push(`detach ${nodeNs(dir)}: ${r.error.message}`)
    }),
  )
  // 2. namespaces (pods before nodes before the underlay: deepest names first)
  if (namespaces.length) say(`deleting ${namespaces.length} namespaces`)
  deleteNetns([...namespaces].sort((a, b) => b.length - a.length))
  // 3. whatever detach could not remove: pins and the nodes' state files
  for (const d of pinDirs) removePinDir(d)
  const nodeStatePrefix = statePath(`${BPFFS}/${prefix}`)
    .split('/')
    .pop()!
    .replace(/\.json$/, '')
  try {
    // node state files, the agents' status files next to them, and their BIRD run dirs (BGP)
    for (const f of readdirSync(stateDir()))
      if ([nodeStatePrefix, `agent${nodeStatePrefix}`, `bgp${nodeStatePrefix}`].some((p) => f.startsWith(p)))
        rmSync(join(stateDir(), f), { recursive: true, force: true })
  } catch {
    /* no state dir */
  }
  // IPAM allocations and CNI attachment records of pods a crash left behind
  rmPrefixed(labIpamDir(), prefix)
  rmPrefixed(join(stateDir(), 'cni'), nodeStatePrefix)
  removeLab(name)
  // a router BIRD whose namespace was already gone (its pid file is all that is left)
  killStrayRouter(name)
  removeLabDir(name)

  const left = [...listNetns().filter((n) => n.startsWith(prefix)), ...pinDirsWithPrefix(prefix)]
  if (left.length) throw new Error(`lab down left items behind: ${left.join(', ')}`)
  say(`lab "${name}" removed`)
  return res
}

function rmPrefixed(dir: string, prefix: string): void {
  try {
    for (const f of readdirSync(dir)) if (f.startsWith(prefix)) rmSync(join(dir, f), { recursive: true, force: true })
  } catch {
    /* no such dir */
  }
}

/** Labs known by state file or found by namespace / pin prefix. */
export function findLabs(): string[] {
  const names = new Set(listLabNames())
  const re = new RegExp(`^${LAB_NS_PREFIX}([a-z][a-z0-9]*)-`)
  for (const n of [...listNetns(), ...pinDirsWithPrefix(LAB_NS_PREFIX).map((d) => d.slice(BPFFS.length + 1))]) {
    const m = re.exec(n)
    if (m) names.add(m[1]!)
  }
  return [...names].sort()
}

// ---------------------------------------------------------------- status

export interface LabAgent {
  running: boolean
  ready: boolean
  reason: string | null
  podCidr: string | null
  leaseExpiresAt: string | null
  peers: number
  lastSync: string | null
  /** BGP labs: the agent's BIRD and its sessions (with the router) */
  bgp: { asn: number; pid: number | null; routes: number; error: string | null; sessions: BgpSession[] } | null
}

export interface LabStatus {
  name: string
  datastore: LabState['datastore'] | null
  routing: LabState['routing'] | null
  /** BGP labs: the top-of-rack router's BIRD, its sessions and the prefixes it learned */
  router: RouterStatus | null
  /** per node name, for labs on etcd */
  agents: Record<string, LabAgent | null>
  health: 'ready' | 'creating' | 'crashed' | 'degraded' | 'leftovers'
  mode: LabState['mode'] | null
  podDevice: LabState['podDevice'] | null
  createdAt: string | null
  underlayNs: string | null
  routerNs: string | null
  nodes: (LabNode & { present: boolean })[]
  missing: string[]
}

function labAgent(pinDir: string): LabAgent | null {
  const a = readAgentStatus(pinDir)
  if (!a) return null
  const exp = a.datastoreDetail.leaseExpiresAt
  const b = a.bgp
  return {
    running: a.running,
    ready: a.running && a.ready,
    reason: a.reason,
    podCidr: a.podCidr,
    leaseExpiresAt: typeof exp === 'string' ? exp : null,
    peers: a.peers,
    lastSync: a.lastSync?.at ?? null,
    bgp: b ? { asn: b.asn, pid: a.running ? b.daemon.pid : null, routes: b.routes, error: b.error, sessions: b.sessions } : null,
  }
}

export function labStatus(name: string): LabStatus | null {
  validateLabName(name)
  const s = loadLab(name)
  const prefix = labPrefix(name)
  if (!s) {
    const left = listNetns().filter((n) => n.startsWith(prefix))
    if (!left.length && !pinDirsWithPrefix(prefix).length) return null
    return {
      name,
      health: 'leftovers',
      datastore: null,
      routing: null,
      router: null,
      agents: {},
      mode: null,
      podDevice: null,
      createdAt: null,
      underlayNs: null,
      routerNs: null,
      nodes: [],
      missing: [],
    }
  }
  const missing = [s.underlayNs, ...(s.routerNs ? [s.routerNs] : []), ...s.nodes.flatMap((n) => [n.ns, ...n.pods.map((p) => p.ns)])].filter(
    (ns) => !netnsExists(ns),
  )
  const router = s.routing === 'bgp' && s.routerNs && netnsExists(s.routerNs) ? routerStatus(s) : null
  const routerDown = s.routing === 'bgp' && !router?.running
  const health: LabStatus['health'] =
    s.status === 'creating' ? (pidAlive(s.pid) ? 'creating' : 'crashed') : missing.length || routerDown ? 'degraded' : 'ready'
  return {
    name,
    health,
    datastore: s.datastore,
    routing: s.routing,
    router,
    agents: s.datastore === 'etcd' ? Object.fromEntries(s.nodes.map((n) => [n.name, labAgent(n.pinDir)])) : {},
    mode: s.mode,
    podDevice: s.podDevice,
    createdAt: s.createdAt,
    underlayNs: s.underlayNs,
    routerNs: s.routerNs,
    nodes: s.nodes.map((n) => ({ ...n, present: netnsExists(n.ns) })),
    missing,
  }
}

// ---------------------------------------------------------------- targets

export type Target =
  | { kind: 'pod'; name: string; ns: string; ip: string; pod: LabPod; node: LabNode }
  | { kind: 'node'; name: string; ns: string; ip: string; node: LabNode }
  | { kind: 'underlay' | 'router'; name: string; ns: string; ip: null }

export function requireLab(name: string): LabState {
  validateLabName(name)
  const s = loadLab(name)
  if (!s) throw new UserError(`no lab named "${name}"`, 'start one with `podnet-bpf lab up` (see `podnet-bpf lab status`)')
  if (s.status !== 'ready')
    throw new UserError(
      `lab "${name}" is not ready (status ${s.status})`,
      `wait for \`lab up\` to finish, or remove it: podnet-bpf lab down --name ${name}`,
    )
  return s
}

/** A pod or node by name, IP or namespace; or `underlay` / `router`. */
export function resolveTarget(s: LabState, what: string): Target {
  for (const node of s.nodes) {
    if (what === node.name || what === node.ip || what === node.ns) return { kind: 'node', name: node.name, ns: node.ns, ip: node.ip, node }
    for (const pod of node.pods) {
      if (what === pod.name || what === pod.ip || what === pod.ns) return { kind: 'pod', name: pod.name, ns: pod.ns, ip: pod.ip, pod, node }
    }
  }
  if (what === 'underlay' || what === s.underlayNs) return { kind: 'underlay', name: 'underlay', ns: s.underlayNs, ip: null }
  if (s.routerNs && (what === 'router' || what === s.routerNs)) return { kind: 'router', name: 'router', ns: s.routerNs, ip: null }
  const names = s.nodes.flatMap((n) => [n.name, ...n.pods.map((p) => p.name)])
  throw new UserError(
    `"${what}" is not a pod or node of lab "${s.name}"`,
    `use one of: ${names.join(', ')}, underlay${s.routerNs ? ', router' : ''} (or their IPs)`,
  )
}

/** The namespace and environment `lab exec` runs a command in: on a node,
 * PODNET_PIN_DIR points at that node's pins so `podnet-bpf …` just works. */
export function execContext(s: LabState, target: string): { target: Target; argsPrefix: string[]; env: NodeJS.ProcessEnv } {
  const t = resolveTarget(s, target)
  const env: NodeJS.ProcessEnv = { ...process.env }
  // bin/run.js's #! line set NODE_EXTRA_CA_CERTS aside; the user's command gets it back
  const ca = env.PODNET_NODE_EXTRA_CA_CERTS
  delete env.PODNET_NODE_EXTRA_CA_CERTS
  if (ca) env.NODE_EXTRA_CA_CERTS = ca
  if (t.kind === 'node') env.PODNET_PIN_DIR = t.node.pinDir
  // `podnet-bpf cluster nodes` on a lab node talks to the lab's etcd
  if (s.datastore === 'etcd' && t.kind !== 'pod') env.PODNET_ETCD_ENDPOINTS = etcdEndpoints()
  return { target: t, argsPrefix: nsenterArgs(t.ns, []), env }
}

export interface PingPlan {
  src: Target
  dstIp: string
  dstName: string
  path: string
}

/** Where a ping from src to dst goes, in words (from the lab's route table). */
export function planPing(s: LabState, src: string, dst: string): PingPlan {
  const from = resolveTarget(s, src)
  if (from.kind !== 'pod' && from.kind !== 'node')
    throw new UserError(`ping from a pod or a node, not the ${from.kind}`, 'use e.g. node1-pod1 or node2')
  let to: Target | null = null
  try {
    to = resolveTarget(s, dst)
  } catch (e) {
    if (!/^\d+\.\d+\.\d+\.\d+$/.test(dst)) throw e
  }
  if (to && to.ip === null) throw new UserError(`${to.name} has no lab address to ping`, 'ping a pod or a node')
  const dstIp = to ? to.ip! : dst
  const srcNode = from.node
  let path: string
  if (!to) path = 'outside the lab: host stack of the node'
  else if (to.kind === 'node')
    path =
      from.kind === 'pod'
        ? `pod → node IP: host stack of ${srcNode.name}${to.node === srcNode ? '' : ' then the underlay'}`
        : to.node === srcNode
          ? 'local'
          : 'underlay'
  else if (to.node === srcNode)
    path = from.kind === 'pod' ? `same node: redirect_peer on ${srcNode.name}` : `node → local pod: kernel route on ${srcNode.name}`
  else {
    const p = srcNode.paths.find((x) => x.peer === to.node.name)
    path = !p
      ? `no route from ${srcNode.name} to ${to.node.podCidr}`
      : p.via === 'router'
        ? `direct ${srcNode.name} (${srcNode.ip}) → via router ${p.nodeIp} → ${to.node.name} (${to.node.ip}), learned over BGP`
        : `${p.encap === 'vxlan' ? 'VXLAN' : 'direct'} ${srcNode.name} (${srcNode.ip}) → ${to.node.name} (${p.nodeIp})`
  }
  return { src: from, dstIp, dstName: to ? to.name : dst, path }
}
