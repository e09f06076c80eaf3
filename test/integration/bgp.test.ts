// `podnet-bpf agent --routing bgp` with real BIRD daemons: three nodes in two
// subnets, a BIRD top-of-rack router between them (eBGP with every node),
// and a rogue speaker on node1's subnet. Pod traffic crosses subnets
// directly (no VXLAN) along the routes BGP learned; hijacks are refused and
// counted; a killed daemon is restarted; an agent restart with graceful
// restart loses no packet; a node gone for good is withdrawn everywhere.
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Cluster, type AgentProc, type CNode } from '../support/cluster.js'
import { cli, must, runId, sh, sleep } from '../support/sys.js'
import { capture, peerAddressSeen, ping } from '../support/traffic.js'
import { killBirdsUnder, ribPrefixes, startBird, type Bird } from '../support/bgp.js'
import { renderRouterBird } from '../../src/services/lab/bgp-router.js'

const c = new Cluster(runId('pnbgp'))
const TOR_A = '192.168.77.254'
const TOR_B = '192.168.78.254'
const ROGUE = '192.168.77.66'
const cidr = (i: number) => `10.244.${i}.0/24`
let n1: CNode, n2: CNode, n3: CNode
let tor: Bird, rogue: Bird
let pods: { ns: string; ip: string }[] = []
const agents = new Map<string, AgentProc>()
const rns = () => `${c.id}-r`
const xns = () => `${c.id}-x`

interface Session {
  peer: string
  state: string
  description: string
  prefixes: { received: number; accepted: number; rejected: number }
}
interface Status {
  agent: { bgp: { daemon: { pid: number | null; restarts: number }; sessions: Session[]; routes: number } | null } | null
}
const status = (n: CNode) => {
  const r = cli(n.ns, ['status', '--pin-dir', n.pinDir, '--json'], c.env)
  return r.status === 0 ? (JSON.parse(r.stdout) as Status) : null
}
const bgpOf = (n: CNode) => status(n)?.agent?.bgp ?? null
const table201 = (n: CNode) => sh('ip', ['-n', n.ns, '-4', 'route', 'show', 'table', '201']).stdout.trim().split('\n').filter(Boolean)
const routeMap = (n: CNode) => Object.fromEntries(c.routes(n).map((r) => [r.cidr, r]))

function link(a: string, aIf: string, aIp: string, b: string, bIf: string, bIp: string): void {
  must('ip', ['-n', a, 'link', 'add', aIf, 'type', 'veth', 'peer', 'name', bIf, 'netns', b])
  must('ip', ['-n', a, 'addr', 'add', aIp, 'dev', aIf])
  must('ip', ['-n', b, 'addr', 'add', bIp, 'dev', bIf])
  must('ip', ['-n', a, 'link', 'set', aIf, 'up'])
  must('ip', ['-n', b, 'link', 'set', bIf, 'up'])
}
function addNs(ns: string): void {
  must('ip', ['netns', 'add', ns])
  must('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
  sh('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1'])
}

const agentConfig = () => {
  const f = join(c.dir, 'agent.yaml')
  writeFileSync(
    f,
    [
      'routing: bgp',
      'clusterCidr: 10.244.0.0/16',
      'resyncInterval: 5s',
      'bgp:',
      '  mesh: false',
      '  holdTime: 3',
      '  restartTime: 8',
      '  peers:',
      `    - {address: ${TOR_A}, asn: 65000, node: node1}`,
      `    - {address: ${TOR_A}, asn: 65000, node: node2}`,
      `    - {address: ${TOR_B}, asn: 65000, node: node3}`,
      `    - {address: ${ROGUE}, asn: 65066, node: node1}`,
      '',
    ].join('\n'),
  )
  const p = join(c.dir, 'peers.yaml')
  writeFileSync(p, `peers:\n${[n1, n2, n3].map((n, i) => `  - {name: ${n.name}, nodeIp: ${n.ip}, podCidr: ${cidr(i + 1)}}`).join('\n')}\n`)
  return ['--datastore', 'file', '--config', f, '--peers-file', p]
}
const start = (n: CNode, i: number) => {
  const a = c.startAgent(n, [...agentConfig(), '--pod-cidr', cidr(i)])
  agents.set(n.name, a)
  return a
}
const ready = (n: CNode) => c.waitFor(`${n.name} ready`, () => c.http(n, '/readyz').status === 200, 30_000, 200)
const established = (n: CNode, peer: string) =>
  c.waitFor(
    `${n.name}: session with ${peer} up`,
    () => bgpOf(n)?.sessions.find((s) => s.peer === peer && s.state === 'Established'),
    30_000,
    250,
  )

beforeAll(async () => {
  c.up()
  n1 = c.addNode(1)
  n2 = c.addNode(2)
  // the router: on the underlay bridge (subnet A) and linked to node3 (subnet B)
  addNs(rns())
  must('ip', ['-n', c.ul, 'link', 'add', 'tor', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', rns()])
  must('ip', ['-n', c.ul, 'link', 'set', 'tor', 'master', 'br0', 'up'])
  must('ip', ['-n', rns(), 'addr', 'add', `${TOR_A}/24`, 'dev', 'eth0'])
  must('ip', ['-n', rns(), 'link', 'set', 'eth0', 'up'])
  must('ip', ['netns', 'exec', rns(), 'sysctl', '-qw', 'net.ipv4.ip_forward=1'])
  n3 = { name: 'node3', ns: `${c.id}-n3`, ip: '192.168.78.3', pinDir: `/sys/fs/bpf/${c.id}-n3`, cniDir: join(c.dir, 'cni-n3') }
  addNs(n3.ns)
  link(rns(), 'eth1', `${TOR_B}/24`, n3.ns, 'eth0', `${n3.ip}/24`)
  c.nodes.push(n3)
  // the rogue speaker: on subnet A, peering with node1, announcing node2's CIDR and a /32 in it
  addNs(xns())
  must('ip', ['-n', c.ul, 'link', 'add', 'rogue', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', xns()])
  must('ip', ['-n', c.ul, 'link', 'set', 'rogue', 'master', 'br0', 'up'])
  must('ip', ['-n', xns(), 'addr', 'add', `${ROGUE}/24`, 'dev', 'eth0'])
  must('ip', ['-n', xns(), 'link', 'set', 'eth0', 'up'])

  tor = startBird(
    rns(),
    c.dir,
    'tor',
    renderRouterBird({
      routerId: TOR_A,
      asn: 65000,
      holdTime: 3,
      neighbors: [
        { name: 'node1', address: n1.ip, asn: 64512, local: TOR_A },
        { name: 'node2', address: n2.ip, asn: 64512, local: TOR_A },
        { name: 'node3', address: n3.ip, asn: 64512, local: TOR_B },
      ],
    }),
  )
  rogue = startBird(
    xns(),
    c.dir,
    'rogue',
    [
      `router id ${ROGUE};`,
      'protocol device {}',
      `protocol static { ipv4; route ${cidr(2)} blackhole; route 10.244.2.12/32 blackhole; }`,
      `protocol bgp { local ${ROGUE} as 65066; neighbor ${n1.ip} as 64512; hold time 3; connect retry time 2; ipv4 { import none; export all; }; }`,
      '',
    ].join('\n'),
  )
  start(n1, 1)
  start(n2, 2)
  start(n3, 3)
  await Promise.all([ready(n1), ready(n2), ready(n3)])
  pods = [c.addPod(n1, cidr(1), 1), c.addPod(n2, cidr(2), 1), c.addPod(n3, cidr(3), 1)]
  for (const n of [n1, n2, n3]) {
    await c.waitFor(`${n.name}: both peer CIDRs in the routes map`, () => Object.keys(routeMap(n)).length === 2 || undefined, 30_000, 250)
  }
})

afterAll(async () => {
  for (const b of [tor, rogue]) b?.proc.kill('SIGKILL')
  // agents first (SIGKILL leaves their BIRD running), then their daemons, then the rest
  for (const a of agents.values()) await c.stopAgent(a, 'SIGKILL')
  killBirdsUnder(c.stateDir)
  await c.down()
})

describe('BGP routing with a BIRD top-of-rack router', () => {
  it("brings every session up and puts every pod CIDR in the router's RIB, each node's table 201 and each routes map", async () => {
    for (const n of [n1, n2]) await established(n, TOR_A)
    await established(n3, TOR_B)
    expect(ribPrefixes(tor)).toEqual([cidr(1), cidr(2), cidr(3)])
    // next hops: a node on the same subnet directly (the router keeps the owner as next
    // hop), a node in the other subnet through the router
    const hops: Record<string, Record<string, string>> = {
      node1: { [cidr(2)]: n2.ip, [cidr(3)]: TOR_A },
      node2: { [cidr(1)]: n1.ip, [cidr(3)]: TOR_A },
      node3: { [cidr(1)]: TOR_B, [cidr(2)]: TOR_B },
    }
    for (const n of [n1, n2, n3]) {
      const want = hops[n.name]!
      expect(table201(n).map((l) => l.split(' ')[0])).toEqual(Object.keys(want))
      for (const l of table201(n)) expect(l).toContain(`via ${want[l.split(' ')[0]!]} dev eth0 proto bird`)
      const map = routeMap(n)
      for (const [o, gw] of Object.entries(want)) expect(map[o]).toMatchObject({ nodeIp: gw, encap: 'direct', origin: 'bgp' })
    }
    // nothing in the main table from BIRD: only the agent's own kernel routes (proto 112)
    expect(sh('ip', ['-n', n1.ns, 'route', 'show', 'proto', 'bird']).stdout.trim()).toBe('')
  })

  it("carries pod TCP across subnets directly: the listener sees the client's pod IP, the routed link sees pod IPs and no VXLAN", async () => {
    const [p1, , p3] = pods
    let seen = ''
    const lines = await capture(rns(), 'eth1', ['-c', '40', 'ip'], async () => {
      seen = await peerAddressSeen('tcp', p3!.ns, p3!.ip, p1!.ns)
    })
    expect(seen).toBe(p1!.ip)
    expect(lines.some((l) => l.includes(`${p1!.ip}.`) && l.includes(`> ${p3!.ip}.7000`))).toBe(true)
    expect(lines.filter((l) => l.includes('.8472') || /UDP/.test(l))).toEqual([])
  })

  it("refuses a rogue speaker's announcement of node2's CIDR and of a /32 inside it, counts both, and traffic is unaffected", async () => {
    const s = await c.waitFor(
      'rogue session up with 2 prefixes received',
      () => bgpOf(n1)?.sessions.find((x) => x.peer === ROGUE && x.state === 'Established' && x.prefixes.received === 2),
      30_000,
      250,
    )
    expect(s.prefixes).toEqual({ received: 2, accepted: 0, rejected: 2 })
    expect(routeMap(n1)[cidr(2)]).toMatchObject({ nodeIp: n2.ip, origin: 'bgp' })
    expect(routeMap(n1)['10.244.2.12/32']).toBeUndefined()
    expect(table201(n1).some((l) => l.includes(ROGUE) || l.startsWith('10.244.2.12'))).toBe(false)
    const metrics = c.http(n1, '/metrics').body
    expect(metrics).toContain(`podnet_bgp_prefixes{peer="${ROGUE}",state="rejected"} 2`)
    expect(metrics).toContain(`podnet_bgp_session_up{peer="${TOR_A}"} 1`)
    expect(agents.get('node1')!.log()).toMatch(/refused 10\.244\.2\.12\/32 from 192\.168\.77\.66: more specific than 10\.244\.2\.0\/24/)
    expect(ping(pods[0]!.ns, pods[1]!.ip).status).toBe(0)
    // the same in `podnet-bpf status`'s table
    const text = cli(n1.ns, ['status', '--pin-dir', n1.pinDir], c.env).stdout
    expect(text).toMatch(new RegExp(`${ROGUE.replaceAll('.', '\\.')}\\s+65066\\s+router\\s+Established\\s+\\d+s\\s+2\\s+0\\s+2`))
  })

  it('restarts a killed BGP daemon and its routes come back', async () => {
    const before = bgpOf(n2)!
    process.kill(before.daemon.pid!, 'SIGKILL')
    const after = await c.waitFor(
      'node2 BIRD restarted and its session back',
      () => {
        const b = bgpOf(n2)
        return b && b.daemon.pid !== before.daemon.pid && b.daemon.restarts >= 1 && b.sessions.some((s) => s.state === 'Established') && b
      },
      30_000,
      250,
    )
    expect(after.daemon.restarts).toBeGreaterThanOrEqual(1)
    expect(agents.get('node2')!.log()).toContain('BGP daemon exited (SIGKILL); restarting')
    await c.waitFor('node2 routes back', () => table201(n2).length === 2, 20_000, 250)
    expect(Object.keys(routeMap(n2)).sort()).toEqual([cidr(1), cidr(3)])
    expect(ping(pods[1]!.ns, pods[2]!.ip).status).toBe(0)
  })

  it('keeps forwarding through an agent restart with graceful restart: 0 of 200 pps pings lost', async () => {
    const pingRun = new Promise<string>((resolve) => {
      const p = spawn('ip', ['netns', 'exec', pods[0]!.ns, 'ping', '-n', '-q', '-i', '0.005', '-c', '1600', '-W', '1', pods[1]!.ip], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let out = ''
      p.stdout.on('data', (d: Buffer) => (out += d.toString()))
      p.on('exit', () => resolve(out))
    })
    await sleep(500)
    await c.stopAgent(agents.get('node2')!, 'SIGTERM')
    await sleep(1000)
    start(n2, 2)
    await ready(n2)
    await established(n2, TOR_A)
    const out = await pingRun
    expect(out).toMatch(/1600 packets transmitted, 1600 received, 0% packet loss/)
  })

  it('replaces the BGP daemon a SIGKILLed agent left running, keeping the routes', async () => {
    const old = bgpOf(n1)!.daemon.pid!
    await c.stopAgent(agents.get('node1')!, 'SIGKILL')
    expect(sh('kill', ['-0', String(old)]).status).toBe(0) // the daemon outlives its agent
    start(n1, 1)
    await ready(n1)
    await established(n1, TOR_A)
    await c.waitFor(
      'the old daemon gone',
      () => sh('sh', ['-c', `grep -q '^State:.*Z' /proc/${old}/status 2>/dev/null || ! kill -0 ${old} 2>/dev/null`]).status === 0,
      10_000,
      100,
    )
    expect(agents.get('node1')!.log()).toContain('stopping the BGP daemon a previous agent left running')
    expect(Object.keys(routeMap(n1)).sort()).toEqual([cidr(2), cidr(3)])
  })

  it("withdraws a node's CIDR from the router and every peer once it is gone past the restart time", async () => {
    await c.stopAgent(agents.get('node3')!, 'SIGTERM')
    // graceful restart: still there right after the stop
    expect(routeMap(n1)[cidr(3)]).toBeDefined()
    await c.waitFor('node3 CIDR withdrawn on the router', () => !ribPrefixes(tor).includes(cidr(3)), 30_000, 250)
    for (const n of [n1, n2]) {
      await c.waitFor(`${n.name}: node3 CIDR gone from the map`, () => routeMap(n)[cidr(3)] === undefined, 15_000, 250)
      expect(table201(n).some((l) => l.startsWith(cidr(3)))).toBe(false)
    }
  })
})

describe('bad BGP configuration', () => {
  const bad = (args: string[]) => {
    const pin = `/sys/fs/bpf/${c.id}-bad`
    const r = cli(
      xns(),
      [
        'agent',
        '--datastore',
        'file',
        '--pod-cidr',
        cidr(9),
        '--device',
        'eth0',
        '--pin-dir',
        pin,
        '--listen',
        '127.0.0.1:0',
        '--routing',
        'bgp',
        ...args,
      ],
      c.env,
    )
    expect(sh('ls', [pin]).status).not.toBe(0) // nothing attached
    expect(r.status).not.toBe(0)
    return r.stderr
  }
  it('refuses an ASN out of range, a peer that is not an IP, duplicate peers and a peer that is the node itself, before starting anything', () => {
    const cc = ['--cluster-cidr', '10.244.0.0/16']
    expect(bad([...cc, '--bgp-asn', '4294967295'])).toContain('bgp.asn: AS numbers are 1..4294967294')
    expect(bad([...cc, '--bgp-peer', 'tor1:65000'])).toContain('invalid --bgp-peer "tor1:65000": "tor1" is not an IPv4 address')
    expect(bad([...cc, '--bgp-peer', '192.168.77.254:65000', '--bgp-peer', '192.168.77.254:65001'])).toContain(
      'bgp.peers.1.address: duplicate peer 192.168.77.254 (also peers.0)',
    )
    expect(bad([...cc, '--bgp-peer', `${ROGUE}:65000`])).toContain(`BGP peer ${ROGUE} is this node's own IP`)
    expect(bad([])).toContain('--cluster-cidr')
  })
})
