// The BIRD 2 configuration of one node, rendered from the agent's view: its
// own pod CIDR (announced), the other nodes (iBGP mesh peers, and who owns
// which CIDR for the import filter), explicit peers (routers) and the
// cluster network. Pure: the same input gives the same text, so the
// supervisor reconfigures only when something really changed.
import { UserError } from '../../errors.js'
import { cidrContains, cidrString, parseCidr, type Cidr } from '../../util/ipv4.js'
import type { BgpConfig, BgpPeer } from './config.js'

export interface BgpNode {
  name: string
  nodeIp: string
  podCidr: string
}

export interface RenderInput {
  bgp: BgpConfig
  self: BgpNode
  /** every pod CIDR lies inside it; nothing else is accepted */
  clusterCidr: string
  /** the other nodes the datastore knows */
  nodes: readonly BgpNode[]
  /** subnets of the node's device: mesh peers on them are one hop away */
  subnets: readonly Cidr[]
}

export interface SessionSpec {
  /** BIRD protocol name */
  name: string
  address: string
  asn: number
  kind: 'mesh' | 'router'
  /** node name for a mesh peer */
  node?: string
  password?: string
}

export interface Rendered {
  text: string
  sessions: SessionSpec[]
  /** mesh peers left out (not one hop away), for the log */
  skipped: string[]
}

const ipName = (ip: string) => ip.replaceAll('.', '_')

/** Who peers with this node, validated against it. */
export function sessionsOf(input: RenderInput): { sessions: SessionSpec[]; skipped: string[] } {
  const { bgp, self } = input
  const explicit = bgp.peers.filter((p: BgpPeer) => p.node === undefined || p.node === self.name)
  for (const p of explicit) {
    if (p.address === self.nodeIp) {
      throw new UserError(`BGP peer ${p.address} is this node's own IP`, 'list routers and other nodes as peers, not the node itself')
    }
  }
  const sessions: SessionSpec[] = explicit.map((p) => ({
    name: `peer_${ipName(p.address)}`,
    address: p.address,
    asn: p.asn,
    kind: 'router',
    password: p.password,
  }))
  const skipped: string[] = []
  if (bgp.mesh) {
    const taken = new Set(explicit.map((p) => p.address))
    for (const n of [...input.nodes].sort((a, b) => a.nodeIp.localeCompare(b.nodeIp))) {
      if (n.nodeIp === self.nodeIp || taken.has(n.nodeIp)) continue
      if (!input.subnets.some((s) => cidrContains(s, n.nodeIp))) {
        skipped.push(`${n.name} (${n.nodeIp})`)
        continue
      }
      taken.add(n.nodeIp)
      sessions.push({ name: `mesh_${ipName(n.nodeIp)}`, address: n.nodeIp, asn: bgp.asn, kind: 'mesh', node: n.name })
    }
  }
  return { sessions, skipped }
}

/**
 * The import rule, as a BIRD function (true = accept):
 * - inside the cluster network, not the node's own CIDR;
 * - a CIDR the datastore assigns to a node: exactly that CIDR (no more
 *   specific prefix), and only from that node, or from a router whose AS path
 *   starts at the cluster's AS (a router re-announcing it);
 * - a CIDR no known node owns: no longer than the node's own CIDR.
 */
function importFunction(input: RenderInput): string {
  const cluster = parseCidr(input.clusterCidr)
  const own = parseCidr(input.self.podCidr)
  const owners = [...input.nodes]
    .filter((n) => n.nodeIp !== input.self.nodeIp)
    .sort((a, b) => a.podCidr.localeCompare(b.podCidr))
    .map((n) => {
      const c = cidrString(parseCidr(n.podCidr))
      return [
        `  if net ~ [ ${c}+ ] then {`,
        `    if net.len != ${parseCidr(n.podCidr).len} then { print "podnet: refused ", net, " from ", from, ": more specific than ${c} of ${n.name}"; return false; }`,
        `    if from = ${n.nodeIp} || (from_router && bgp_path.len > 0 && bgp_path.last = ${input.bgp.asn}) then return true;`,
        `    print "podnet: refused ", net, " from ", from, ": ${c} belongs to ${n.name} (${n.nodeIp})";`,
        `    return false;`,
        `  }`,
      ].join('\n')
    })
  return [
    'function podnet_import(bool from_router) {',
    `  if net.type != NET_IP4 then return false;`,
    `  if ! (net ~ [ ${cidrString(cluster)}{${cluster.len},32} ]) then { print "podnet: refused ", net, " from ", from, ": outside the cluster network ${cidrString(cluster)}"; return false; }`,
    `  if net ~ [ ${cidrString(own)}+ ] then { print "podnet: refused ", net, " from ", from, ": this node's own pod CIDR"; return false; }`,
    ...owners,
    `  if net.len > ${own.len} then { print "podnet: refused ", net, " from ", from, ": longer than /${own.len}"; return false; }`,
    '  return true;',
    '}',
  ].join('\n')
}

function protocolBlock(s: SessionSpec, input: RenderInput): string {
  const { bgp, self } = input
  const ibgp = s.asn === bgp.asn
  const lines = [
    `protocol bgp ${s.name} {`,
    `  description "${s.kind === 'mesh' ? `node ${s.node}` : 'router'}";`,
    `  local ${self.nodeIp} as ${bgp.asn};`,
    `  neighbor ${s.address} as ${s.asn};`,
    '  direct;',
    `  hold time ${bgp.holdTime};`,
    `  keepalive time ${Math.max(1, Math.floor(bgp.holdTime / 3))};`,
    '  connect delay time 1;',
    '  connect retry time 2;',
    '  error wait time 1, 10;',
    bgp.gracefulRestart ? `  graceful restart on;\n  graceful restart time ${bgp.restartTime};` : '  graceful restart off;',
  ]
  if (s.password) lines.push(`  password "${s.password}";`)
  // routes a router re-announces carry the cluster AS (ours too) in the path
  if (s.kind === 'router' && !ibgp) lines.push('  allow local as;')
  lines.push(
    '  ipv4 {',
    '    import keep filtered on;',
    `    import where podnet_import(${s.kind === 'router' ? 'true' : 'false'});`,
    '    export where proto = "podnet_own";',
    '    next hop self;',
  )
  // a router in the cluster's own AS is iBGP: its next hops are on the link
  if (ibgp) lines.push('    gateway direct;')
  lines.push('  };', '}')
  return lines.join('\n')
}

export function renderBird(input: RenderInput, socketNote = ''): Rendered {
  const { bgp, self } = input
  const own = cidrString(parseCidr(input.self.podCidr, 'pod CIDR'))
  const cluster = parseCidr(input.clusterCidr, 'cluster CIDR')
  if (!cidrContains(cluster, parseCidr(own).addr) || parseCidr(own).len < cluster.len) {
    throw new UserError(
      `pod CIDR ${own} is not inside the cluster network ${cidrString(cluster)}`,
      'pass the --cluster-cidr that holds every pod CIDR',
    )
  }
  const { sessions, skipped } = sessionsOf(input)
  const text = [
    `# BIRD 2 configuration of podnet-bpf node ${self.name}${socketNote}.`,
    '# Written by the agent; rewritten on every change (reconfigured, not restarted).',
    `router id ${bgp.routerId ?? self.nodeIp};`,
    'log stderr { info, remote, warning, error, auth, fatal, bug };',
    'timeformat protocol iso long;',
    '# after a restart, install routes once peers re-sent theirs, or after 10 s at most',
    'graceful restart wait 10;',
    '',
    'protocol device { scan time 10; }',
    '',
    '# the pod CIDR this node announces (never installed: only BGP routes go to the kernel)',
    'protocol static podnet_own {',
    '  ipv4;',
    `  route ${own} blackhole;`,
    '}',
    '',
    `# accepted routes into table ${bgp.table}, never main; the agent mirrors it into the BPF routes map`,
    'protocol kernel podnet_kernel {',
    `  kernel table ${bgp.table};`,
    '  scan time 30;',
    '  persist;',
    bgp.gracefulRestart ? '  graceful restart on;' : '  graceful restart off;',
    '  ipv4 { import none; export where source = RTS_BGP; };',
    '}',
    '',
    importFunction(input),
    '',
    ...sessions.map((s) => protocolBlock(s, input) + '\n'),
  ].join('\n')
  return { text, sessions, skipped }
}

/** Checks what needs the node (before anything changes on it); returns the cluster CIDR. */
export function checkBgpSetup(bgp: BgpConfig, self: BgpNode, clusterCidr: string | undefined, nodes: readonly BgpNode[]): string {
  if (!clusterCidr) {
    throw new UserError(
      'BGP routing needs the cluster network and the datastore does not provide it',
      'pass --cluster-cidr CIDR (e.g. 10.244.0.0/16)',
    )
  }
  renderBird({ bgp, self, clusterCidr, nodes, subnets: [] })
  return clusterCidr
}
