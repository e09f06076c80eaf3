// BIRD as a top-of-rack router for the lab and the tests: eBGP with every
// node (each announces its pod CIDR), everything learned re-announced to the
// others and installed in the router's own kernel (inside its namespace), so
// it forwards pod traffic between subnets without encapsulation.

export interface RouterNeighbor {
  name: string
  address: string
  asn: number
  /** the router's own address on that neighbor's subnet */
  local: string
}

export interface RouterSpec {
  routerId: string
  asn: number
  neighbors: readonly RouterNeighbor[]
  holdTime?: number
  restartTime?: number
}

export function renderRouterBird(r: RouterSpec): string {
  const hold = r.holdTime ?? 9
  const lines = [
    '# BIRD 2: lab top-of-rack router (written by podnet-bpf)',
    `router id ${r.routerId};`,
    'log stderr { info, remote, warning, error, auth, fatal, bug };',
    'timeformat protocol iso long;',
    'protocol device { scan time 10; }',
    "# learned pod CIDRs into this namespace's main table: the router forwards by them",
    'protocol kernel { ipv4 { import none; export where source = RTS_BGP; }; }',
    'template bgp podnet_node {',
    `  local as ${r.asn};`,
    '  direct;',
    `  hold time ${hold};`,
    `  keepalive time ${Math.max(1, Math.floor(hold / 3))};`,
    '  connect delay time 1;',
    '  connect retry time 2;',
    '  error wait time 1, 10;',
    `  graceful restart on;`,
    `  graceful restart time ${r.restartTime ?? 120};`,
    // no `next hop self`: a route between nodes of one subnet keeps the owner as
    // next hop (third-party next hop), only routes from the other subnet point here
    '  ipv4 { import all; export where source = RTS_BGP; };',
    '}',
  ]
  for (const n of r.neighbors) {
    lines.push(
      `protocol bgp ${n.name.replace(/[^A-Za-z0-9_]/g, '_')} from podnet_node {`,
      `  local ${n.local};`,
      `  neighbor ${n.address} as ${n.asn};`,
      '}',
    )
  }
  return lines.join('\n') + '\n'
}
