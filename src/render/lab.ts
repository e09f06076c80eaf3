// The lab as text: nodes, pods, the path between each pair of nodes, BGP
// sessions; `lab status` and `lab up` print it.
import { table } from '../cli/base.js'
import type { LabAgent, LabStatus, UpResult } from '../services/lab/lab.js'
import type { LabPath, LabState } from '../services/lab/state.js'
import type { RouterStatus } from '../services/lab/router.js'
import { DEFAULT_LAB, NODE_ASN } from '../services/lab/plan.js'
import { BGP_SESSION_HEADERS, bgpSessionCells } from './bgp.js'

/** Nodes, pods and the path each node takes to each peer, as text. */
function agentCell(a: LabAgent | null | undefined): string {
  if (!a) return 'none'
  if (!a.running) return 'stopped'
  const lease = a.leaseExpiresAt ? `, lease to ${a.leaseExpiresAt.slice(11, 19)}` : ''
  return a.ready ? `ready, ${a.peers} peers${lease}` : `NOT READY: ${a.reason ?? '?'}`
}

function pathCell(p: LabPath | undefined): string {
  if (!p) return '?'
  if (p.encap === 'vxlan') return 'vxlan'
  return p.via === 'router' ? `direct via router ${p.nodeIp}` : 'direct'
}

/** Every BGP session: the router's (one per node), then each node's (with the router). */
function renderBgp(
  router: RouterStatus | null | undefined,
  nodes: LabState['nodes'],
  agents: Record<string, LabAgent | null> | undefined,
): string {
  const head = router
    ? `BGP: router ${router.ns} AS ${router.asn} at ${router.addresses.join(' / ')}, BIRD ${router.running ? `pid ${router.pid}` : 'NOT RUNNING'}; ` +
      `nodes AS ${NODE_ASN}, eBGP with the router, no node-to-node mesh`
    : 'BGP: no router'
  type S = RouterStatus['sessions'][number]
  const row = (who: string, x: S) => [who, x.peer, String(x.asn), ...bgpSessionCells(x)]
  const rows = [
    ...(router?.sessions ?? []).map((x) => row('router', x)),
    ...nodes.flatMap((n) => (agents?.[n.name]?.bgp?.sessions ?? []).map((x) => row(n.name, x))),
  ]
  const rib = router ? `router RIB (pod CIDRs learned): ${router.routes.join(' ') || 'none'}` : ''
  return [head, table(['SPEAKER', 'PEER', 'ASN', ...BGP_SESSION_HEADERS], rows), rib].filter(Boolean).join('\n')
}

export function renderLab(
  lab: Pick<LabState, 'name' | 'mode' | 'nodes' | 'routerNs'> & {
    podDevice?: LabState['podDevice'] | null
    datastore?: LabState['datastore'] | null
    routing?: LabState['routing'] | null
    agents?: Record<string, LabAgent | null>
    router?: RouterStatus | null
  },
): string {
  const etcd = lab.datastore === 'etcd'
  const nodes = table(
    ['NODE', 'NAMESPACE', 'UNDERLAY IP', 'SUBNET', 'POD CIDR', 'POD MTU', 'PODS', ...(etcd ? ['AGENT'] : [])],
    lab.nodes.map((n) => [
      n.name,
      n.ns,
      n.ip,
      n.subnet === 'a' ? 'A (bridge)' : 'B (routed)',
      n.podCidr,
      n.podMtu ?? '-',
      n.pods.length,
      ...(etcd ? [agentCell(lab.agents?.[n.name])] : []),
    ]),
  )
  const pods = table(
    ['POD', 'NODE', 'IP', 'NAMESPACE'],
    lab.nodes.flatMap((n) => n.pods.map((p) => [p.name, n.name, p.ip, p.ns])),
  )
  const names = lab.nodes.map((n) => n.name)
  const paths = table(
    ['FROM \\ TO', ...names],
    lab.nodes.map((n) => [n.name, ...names.map((peer) => (peer === n.name ? 'local' : pathCell(n.paths.find((p) => p.peer === peer))))]),
  )
  const pairs = lab.podDevice ? `, ${lab.podDevice} pods` : ''
  const store = etcd ? ', etcd + agents (pod CIDRs leased by the agents)' : lab.datastore === 'static' ? ', static routes' : ''
  const bgp = lab.routing === 'bgp'
  return [
    `lab ${lab.name}: mode ${lab.mode}, ${lab.nodes.length} nodes${pairs}${store}${bgp ? ', routes over BGP' : ''}${lab.routerNs ? `, router ${lab.routerNs}` : ''}`,
    '',
    nodes,
    '',
    pods,
    '',
    'Cross-node path chosen per peer:',
    paths,
    ...(bgp ? ['', renderBgp(lab.router, lab.nodes, lab.agents)] : []),
  ].join('\n')
}

/** One lab of `lab status`: health, what to do about it, and the lab itself when its state is known. */
export function renderLabStatus(s: LabStatus, bin: string): string {
  const unhealthy = s.health === 'crashed' || s.health === 'leftovers' || s.health === 'degraded'
  return [
    `${s.name}: ${s.health}${s.createdAt ? ` (created ${s.createdAt})` : ''}`,
    ...(s.missing.length ? [`  missing namespaces: ${s.missing.join(', ')}`] : []),
    ...(unhealthy ? [`  clean up with: ${bin} lab down --name ${s.name}`] : []),
    ...(s.mode ? [renderLab({ ...s, mode: s.mode })] : []),
    '',
  ].join('\n')
}

/** What `lab up` prints once the lab is up: the lab, and a first command to try. */
export function renderLabUp(r: UpResult, st: LabStatus | null, bin: string): string {
  const last = r.lab.nodes.at(-1)!
  const named = r.lab.name === DEFAULT_LAB ? '' : ` --name ${r.lab.name}`
  return [
    '',
    renderLab({ ...r.lab, agents: st?.agents, router: st?.router }),
    '',
    `up in ${r.seconds.toFixed(1)}s. Try: ${bin} lab ping node1-pod1 ${last.pods[0]?.name ?? last.name}${named}`,
  ].join('\n')
}
