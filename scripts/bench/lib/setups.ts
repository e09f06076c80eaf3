// The five two-node setups. Each: node namespaces n1, n2 joined by an underlay
// veth `eth0` (192.168.77.1/24 ↔ .2/24); for the pod setups one pod per node
// (eth0 in the pod, `hv0` on the node) with 10.244.1.10 ↔ 10.244.2.10.
import { join } from 'node:path'
import { addNs, deleteNs, ip, link, nsenter, sysctl } from './netns.js'
import { parseAttachJson, podnet, REPO_ROOT, registerPodnetCleanup, setNodeCli } from './podnet.js'
import { exec, execSync } from './exec.js'

export const SETUP_IDS = [
  'limit',
  'kernel-routing',
  'kernel-vxlan',
  'podnet-direct',
  'podnet-vxlan',
  'podnet-direct-base',
  'podnet-vxlan-base',
] as const
export type SetupId = (typeof SETUP_IDS)[number]
/** The podnet setups again, driven by another checkout (--baseline): A/B in one run. */
export const BASELINE_IDS: readonly SetupId[] = ['podnet-direct-base', 'podnet-vxlan-base']

export const SETUP_LABEL: Record<SetupId, string> = {
  limit: 'limit (node↔node underlay)',
  'kernel-routing': 'kernel routing (Calico-BGP style)',
  'kernel-vxlan': 'kernel VXLAN (Flannel style)',
  'podnet-direct': 'podnet-bpf direct',
  'podnet-vxlan': 'podnet-bpf VXLAN',
  'podnet-direct-base': 'podnet-bpf direct, baseline',
  'podnet-vxlan-base': 'podnet-bpf VXLAN, baseline',
}

const SHORT: Record<SetupId, string> = {
  limit: 'lim',
  'kernel-routing': 'krt',
  'kernel-vxlan': 'kvx',
  'podnet-direct': 'pnd',
  'podnet-vxlan': 'pnv',
  'podnet-direct-base': 'pndb',
  'podnet-vxlan-base': 'pnvb',
}

let baselineCheckout: string | null = null
/** The checkout the *-base setups are built with. */
export function setBaseline(dir: string | null): void {
  baselineCheckout = dir
}

export const NODE_IP = ['192.168.77.1', '192.168.77.2'] as const
export const POD_CIDR = ['10.244.1.0/24', '10.244.2.0/24'] as const
export const POD_IP = ['10.244.1.10', '10.244.2.10'] as const
export const POD_GW = '169.254.1.1'
export const VNI = 1
export const VXLAN_PORT = 8472

export interface Setup {
  id: SetupId
  nodes: [string, string]
  pods: [string, string] | null
  /** namespace the clients run in, and the server's namespace + address */
  client: string
  server: string
  clientIp: string
  serverIp: string
  /** MTU of the client's interface (pod eth0, or the underlay for limit) */
  mtu: number
  /** true when node-to-node traffic is VXLAN on the underlay */
  encapsulated: boolean
  /** true when traffic must cross the nodes' kernel IP forwarding */
  kernelForwards: boolean
}

function nodePair(tag: string): [string, string] {
  const n1 = addNs(`${tag}-n1`)
  const n2 = addNs(`${tag}-n2`)
  ip(n1, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', n2)
  for (const [i, n] of [n1, n2].entries()) {
    ip(n, 'addr', 'add', `${NODE_IP[i]}/24`, 'dev', 'eth0')
    ip(n, 'link', 'set', 'eth0', 'up')
  }
  return [n1, n2]
}

/** Pod namespace with eth0 = peer of `hv0` in the node; returns the pod's MAC. */
function podNs(tag: string, node: string, i: number): { pod: string; podMac: string; hostMac: string } {
  const pod = addNs(`${tag}-p${i + 1}`)
  ip(node, 'link', 'add', 'hv0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod)
  return { pod, podMac: link(pod, 'eth0').address, hostMac: link(node, 'hv0').address }
}

/** Pod devices of the podnet setups: veth pairs, or netkit pairs (Linux >= 6.7
 * with CONFIG_NETKIT), where from-pod runs in the pod's own transmit. */
export type PodDevice = 'veth' | 'netkit'
let podnetPods: PodDevice = 'veth'

export function setPodnetPodDevice(d: PodDevice): void {
  podnetPods = d
  if (d === 'netkit') for (const id of SETUP_IDS) if (id.startsWith('podnet')) SETUP_LABEL[id] += ' (netkit pods)'
}

/** The primary is born in the node namespace, the peer (eth0) in the pod's:
 * the lab's code, through scripts/netkit-pair.mjs (iproute2 6.1 cannot). */
async function netkitPair(node: string, pod: string, name: string): Promise<void> {
  const r = await exec(nsenter(node, [process.execPath, join(REPO_ROOT, 'scripts/netkit-pair.mjs'), pod, name]), {
    timeoutMs: 30_000,
    allowFail: true,
  })
  if (r.code !== 0) throw new Error(`creating netkit pair ${name} in ${node}: ${r.stderr.trim()}`)
}

/** Can this kernel make netkit pairs? Tried in throwaway namespaces; only
 * the kernel's "not supported" means no, any other failure is reported. */
export async function netkitAvailable(tag: string): Promise<boolean> {
  const [n, p] = [addNs(`${tag}-nk0`), addNs(`${tag}-nk1`)]
  try {
    await netkitPair(n, p, 'probe0')
    return true
  } catch (e) {
    if ((e as Error).message.includes('has no netkit devices')) return false
    throw e
  } finally {
    deleteNs(p)
    deleteNs(n)
  }
}

async function podnetPodNs(tag: string, node: string, i: number): Promise<{ pod: string; podMac: string }> {
  if (podnetPods === 'veth') return podNs(tag, node, i)
  const pod = addNs(`${tag}-p${i + 1}`)
  await netkitPair(node, pod, 'hv0')
  return { pod, podMac: link(pod, 'eth0').address }
}

function limit(tag: string): Setup {
  const nodes = nodePair(tag)
  return {
    id: 'limit',
    nodes,
    pods: null,
    client: nodes[0],
    server: nodes[1],
    clientIp: NODE_IP[0],
    serverIp: NODE_IP[1],
    mtu: link(nodes[0], 'eth0').mtu,
    encapsulated: false,
    kernelForwards: false,
  }
}

/** Calico-BGP style: /32 routes to pods on their host veth, a static
 * neighbour for the gateway in the pod, peer pod CIDR via the peer node IP. */
function kernelRouting(tag: string): Setup {
  const nodes = nodePair(tag)
  const pods: string[] = []
  for (const [i, node] of nodes.entries()) {
    sysctl(node, 'net.ipv4.ip_forward', 1)
    const { pod, podMac, hostMac } = podNs(tag, node, i)
    pods.push(pod)
    ip(node, 'link', 'set', 'hv0', 'up')
    ip(node, 'route', 'add', `${POD_IP[i]}/32`, 'dev', 'hv0', 'scope', 'link')
    ip(node, 'neigh', 'replace', POD_IP[i], 'lladdr', podMac, 'dev', 'hv0', 'nud', 'permanent')
    ip(node, 'route', 'add', POD_CIDR[1 - i], 'via', NODE_IP[1 - i], 'dev', 'eth0')
    ip(pod, 'addr', 'add', `${POD_IP[i]}/32`, 'dev', 'eth0')
    ip(pod, 'link', 'set', 'eth0', 'up')
    ip(pod, 'route', 'add', POD_GW, 'dev', 'eth0', 'scope', 'link')
    ip(pod, 'route', 'add', 'default', 'via', POD_GW, 'dev', 'eth0')
    ip(pod, 'neigh', 'replace', POD_GW, 'lladdr', hostMac, 'dev', 'eth0', 'nud', 'permanent')
  }
  return {
    id: 'kernel-routing',
    nodes,
    pods: [pods[0]!, pods[1]!],
    client: pods[0]!,
    server: pods[1]!,
    clientIp: POD_IP[0],
    serverIp: POD_IP[1],
    mtu: link(pods[0]!, 'eth0').mtu,
    encapsulated: false,
    kernelForwards: true,
  }
}

const FLANNEL_MAC = ['0e:50:4e:42:00:01', '0e:50:4e:42:00:02'] as const
const FLANNEL_MTU = 1450

/** Flannel vxlan backend: cni0 bridge, flannel.1 (VNI 1, 8472, nolearning),
 * per-peer static ARP + FDB entries, pod MTU 1450. */
function kernelVxlan(tag: string): Setup {
  const nodes = nodePair(tag)
  const pods: string[] = []
  for (const [i, node] of nodes.entries()) {
    const j = 1 - i
    sysctl(node, 'net.ipv4.ip_forward', 1)
    ip(node, 'link', 'add', 'cni0', 'mtu', String(FLANNEL_MTU), 'type', 'bridge')
    ip(node, 'addr', 'add', `${POD_CIDR[i].replace(/0\/24$/, '1')}/24`, 'dev', 'cni0')
    ip(node, 'link', 'set', 'cni0', 'up')
    const { pod } = podNs(tag, node, i)
    pods.push(pod)
    ip(node, 'link', 'set', 'hv0', 'mtu', String(FLANNEL_MTU), 'master', 'cni0', 'up')
    ip(pod, 'link', 'set', 'eth0', 'mtu', String(FLANNEL_MTU), 'up')
    ip(pod, 'addr', 'add', `${POD_IP[i]}/24`, 'dev', 'eth0')
    ip(pod, 'route', 'add', 'default', 'via', POD_CIDR[i].replace(/0\/24$/, '1'))
    ip(
      node,
      'link',
      'add',
      'flannel.1',
      'address',
      FLANNEL_MAC[i],
      'mtu',
      String(FLANNEL_MTU),
      'type',
      'vxlan',
      'id',
      String(VNI),
      'local',
      NODE_IP[i],
      'dev',
      'eth0',
      'dstport',
      String(VXLAN_PORT),
      'nolearning',
    )
    ip(node, 'addr', 'add', `${POD_CIDR[i].replace(/\/24$/, '')}/32`, 'dev', 'flannel.1')
    ip(node, 'link', 'set', 'flannel.1', 'up')
    const peerGw = POD_CIDR[j].replace(/\/24$/, '')
    ip(node, 'neigh', 'replace', peerGw, 'lladdr', FLANNEL_MAC[j], 'dev', 'flannel.1', 'nud', 'permanent')
    execSync(['bridge', '-n', node, 'fdb', 'append', FLANNEL_MAC[j], 'dev', 'flannel.1', 'dst', NODE_IP[j]])
    ip(node, 'route', 'add', POD_CIDR[j], 'via', peerGw, 'dev', 'flannel.1', 'onlink')
  }
  return {
    id: 'kernel-vxlan',
    nodes,
    pods: [pods[0]!, pods[1]!],
    client: pods[0]!,
    server: pods[1]!,
    clientIp: POD_IP[0],
    serverIp: POD_IP[1],
    mtu: FLANNEL_MTU,
    encapsulated: true,
    kernelForwards: true,
  }
}

export interface PodnetTimings {
  /** wall ms of each node's attach / endpoints add / routes add process */
  attachMs: number[]
  endpointMs: number[]
  routeMs: number[]
}

/** podnet-bpf in direct or VXLAN mode, driven only through its CLI. */
async function podnetSetup(tag: string, mode: 'direct' | 'vxlan', timings?: PodnetTimings, checkout?: string): Promise<Setup> {
  const nodes = nodePair(tag)
  const pods: string[] = []
  let podMtu = 0
  for (const [i, node] of nodes.entries()) {
    if (checkout) setNodeCli(node, checkout)
    registerPodnetCleanup(node)
    const { pod, podMac } = await podnetPodNs(tag, node, i)
    pods.push(pod)
    const args = ['attach', '--node-ip', NODE_IP[i], '--pod-cidr', POD_CIDR[i], '--device', 'eth0', '--mode', mode]
    if (mode === 'vxlan') args.push('--vni', String(VNI))
    const att = await podnet(node, [...args, '--json'])
    timings?.attachMs.push(att.ms)
    podMtu = parseAttachJson(att.stdout).podMtu
    ip(node, 'link', 'set', 'hv0', 'up')
    ip(pod, 'link', 'set', 'eth0', 'mtu', String(podMtu), 'up')
    ip(pod, 'addr', 'add', `${POD_IP[i]}/32`, 'dev', 'eth0')
    ip(pod, 'route', 'add', POD_GW, 'dev', 'eth0', 'scope', 'link')
    ip(pod, 'route', 'add', 'default', 'via', POD_GW, 'dev', 'eth0')
    const ep = await podnet(node, ['endpoints', 'add', '--ip', POD_IP[i], '--ifname', 'hv0', '--mac', podMac])
    timings?.endpointMs.push(ep.ms)
    const rt = await podnet(node, [
      'routes',
      'add',
      POD_CIDR[1 - i],
      '--node-ip',
      NODE_IP[1 - i],
      '--encap',
      mode === 'vxlan' ? 'vxlan' : 'none',
    ])
    timings?.routeMs.push(rt.ms)
  }
  return {
    id: mode === 'vxlan' ? 'podnet-vxlan' : 'podnet-direct',
    nodes,
    pods: [pods[0]!, pods[1]!],
    client: pods[0]!,
    server: pods[1]!,
    clientIp: POD_IP[0],
    serverIp: POD_IP[1],
    mtu: podMtu,
    encapsulated: mode === 'vxlan',
    kernelForwards: false,
  }
}

/** Build one setup under namespace prefix `${tag}-${short id}`. Every
 * namespace, pin and podnet attachment is registered for cleanup as it is made. */
export async function buildSetup(id: SetupId, tag: string, timings?: PodnetTimings): Promise<Setup> {
  const t = `${tag}-${SHORT[id]}`
  switch (id) {
    case 'limit':
      return limit(t)
    case 'kernel-routing':
      return kernelRouting(t)
    case 'kernel-vxlan':
      return kernelVxlan(t)
    case 'podnet-direct':
      return podnetSetup(t, 'direct', timings)
    case 'podnet-vxlan':
      return podnetSetup(t, 'vxlan', timings)
    case 'podnet-direct-base':
    case 'podnet-vxlan-base': {
      if (!baselineCheckout) throw new Error(`${id} needs --baseline DIR (another built podnet-bpf checkout)`)
      const s = await podnetSetup(t, id === 'podnet-vxlan-base' ? 'vxlan' : 'direct', undefined, baselineCheckout)
      return { ...s, id }
    }
  }
}
