// The shape of a lab, computed before anything is created: namespace and
// interface names, underlay subnets, node IPs, pod CIDRs and pod IPs.
// Everything a lab owns is named with the prefix `pnlab-<name>-`, so two
// labs coexist and `lab down` finds the leftovers of a crashed one.
import { UserError } from '../../errors.js'
import { z } from '../../util/zod.js'
import { type Mode } from '../config.js'
import { podHostIfName } from '../pods.js'

export const LAB_NS_PREFIX = 'pnlab-'
export const DEFAULT_LAB = 'demo'
export const BPFFS = '/sys/fs/bpf'
export const NODE_DEVICE = 'eth0'
export const MAX_NODES = 32
export const MAX_PODS = 50

/** Subnet A is the bridge every node sits on by default; routed nodes sit
 * on subnet B, behind the router namespace. */
export const SUBNETS = { a: '192.168.77', b: '192.168.88' } as const
export const ROUTER_HOST = 254
/** the router's address on a subnet: the nodes' gateway to the other subnet, and their BGP peer */
export const routerIp = (subnet: 'a' | 'b') => `${SUBNETS[subnet]}.${ROUTER_HOST}`

/** Where the agents' peer routes come from: the datastore (etcd), or BGP
 * with the router namespace as the top-of-rack router. */
export const LabRoutingSchema = z.enum(['datastore', 'bgp'])
export type LabRouting = z.infer<typeof LabRoutingSchema>
/** BGP: eBGP between the router and the nodes. Every node has the agent's
 * default AS (Calico's 64512), so routes the router passes from one node to
 * another carry the nodes' own AS; the agent allows it on router sessions. */
export const ROUTER_ASN = 65000
export const NODE_ASN = 64512

export interface PodPlan {
  /** user-facing name, e.g. node1-pod2 */
  name: string
  node: string
  ns: string
  ip: string
  /** host-side device (veth, or netkit primary) in the node namespace */
  hostIf: string
}

export interface NodePlan {
  name: string
  ns: string
  ip: string
  subnet: 'a' | 'b'
  podCidr: string
  pinDir: string
  /** this node's port on the underlay bridge (in the underlay namespace) */
  underlayPort: string
  pods: PodPlan[]
}

/** veth pairs, or netkit pairs (Linux >= 6.7 with CONFIG_NETKIT): the pod's
 * transmit runs from-pod itself, one backlog queue less per packet */
export const PodDeviceSchema = z.enum(['veth', 'netkit'])
export type PodDevice = z.infer<typeof PodDeviceSchema>

export type LabDatastore = 'etcd' | 'static'

export interface LabPlan {
  name: string
  datastore: LabDatastore
  routing: LabRouting
  mode: Mode
  podDevice: PodDevice
  underlayNs: string
  routerNs: string | null
  nodes: NodePlan[]
}

export interface PlanInput {
  name?: string
  nodes?: number
  podsPerNode?: number
  mode?: Mode
  /** nodes placed on subnet B behind the router */
  routedNodes?: number
  podDevice?: PodDevice
  /** etcd (default): agents allocate pod CIDRs from etcd leases; static: the lab assigns them and types in the routes */
  datastore?: LabDatastore
  /** bgp: the router runs BIRD as top-of-rack router, each agent peers with it */
  routing?: LabRouting
}

export function validateLabName(name: string): string {
  // no '-': `pnlab-a-` must never be a prefix of another lab's names
  if (!/^[a-z][a-z0-9]{0,11}$/.test(name)) {
    throw new UserError(`invalid lab name "${name}"`, 'use 1-12 lowercase letters and digits, starting with a letter (e.g. demo, lab2)')
  }
  return name
}

export function labPrefix(name: string): string {
  return `${LAB_NS_PREFIX}${name}-`
}

/** Default: with auto or BGP, one node in three (at least one) sits behind the router. */
export function defaultRoutedNodes(mode: Mode, nodes: number, routing: LabRouting = 'datastore'): number {
  return (mode === 'auto' || routing === 'bgp') && nodes >= 2 ? Math.max(1, Math.floor(nodes / 3)) : 0
}

function checkRouting(routing: LabRouting, mode: Mode, datastore: LabDatastore): void {
  if (routing !== 'bgp') return
  if (datastore === 'static')
    throw new UserError('--routing bgp needs the agents (each runs BIRD) and --datastore static has none', 'leave out --datastore static')
  if (mode === 'vxlan')
    throw new UserError(
      '--routing bgp routes pods without encapsulation and cannot run in vxlan mode',
      'use --mode auto (the default) or direct',
    )
}

export function planLab(input: PlanInput): LabPlan {
  const name = validateLabName(input.name ?? DEFAULT_LAB)
  const mode = input.mode ?? 'auto'
  const n = input.nodes ?? 3
  const m = input.podsPerNode ?? 2
  if (!Number.isInteger(n) || n < 1 || n > MAX_NODES) throw new UserError(`--nodes ${n} is out of range`, `use 1..${MAX_NODES}`)
  if (!Number.isInteger(m) || m < 0 || m > MAX_PODS) throw new UserError(`--pods-per-node ${m} is out of range`, `use 0..${MAX_PODS}`)
  const routing = input.routing ?? 'datastore'
  const datastore = input.datastore ?? 'etcd'
  checkRouting(routing, mode, datastore)
  const routed = input.routedNodes ?? defaultRoutedNodes(mode, n, routing)
  if (!Number.isInteger(routed) || routed < 0 || routed > n) throw new UserError(`--routed-nodes ${routed} is out of range`, `use 0..${n}`)
  // with BGP the router learns every pod CIDR, so direct routing crosses it
  if (mode === 'direct' && routed > 0 && routing !== 'bgp') {
    throw new UserError('direct mode cannot reach nodes in another subnet', 'use --mode auto or vxlan, --routing bgp, or --routed-nodes 0')
  }
  const prefix = labPrefix(name)
  const nodes: NodePlan[] = []
  for (let i = 1; i <= n; i++) {
    const subnet = i > n - routed ? 'b' : 'a'
    const node = `node${i}`
    const ns = `${prefix}${node}`
    const pods: PodPlan[] = []
    for (let j = 1; j <= m; j++) {
      pods.push({
        name: `${node}-pod${j}`,
        node,
        ns: `${ns}-pod${j}`,
        ip: `10.244.${i}.${9 + j}`,
        hostIf: podHostIfName(`${ns}-pod${j}`, 'eth0'),
      })
    }
    nodes.push({
      name: node,
      ns,
      ip: `${SUBNETS[subnet]}.${i}`,
      subnet,
      podCidr: `10.244.${i}.0/24`,
      pinDir: `${BPFFS}/${ns}`,
      underlayPort: `n${i}`,
      pods,
    })
  }
  return {
    name,
    datastore,
    routing,
    mode,
    podDevice: input.podDevice ?? 'veth',
    underlayNs: `${prefix}underlay`,
    // with BGP the router is the top-of-rack router, even when every node is on subnet A
    routerNs: routed > 0 || routing === 'bgp' ? `${prefix}router` : null,
    nodes,
  }
}

/** The namespace of lab etcd member k (1-based). */
export function etcdNs(lab: string, k: number): string {
  return `${labPrefix(lab)}etcd${k}`
}

/** Every namespace of the plan, underlay first. */
export function planNamespaces(p: LabPlan): string[] {
  return [p.underlayNs, ...(p.routerNs ? [p.routerNs] : []), ...p.nodes.flatMap((n) => [n.ns, ...n.pods.map((x) => x.ns)])]
}
