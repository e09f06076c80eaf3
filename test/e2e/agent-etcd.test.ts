// `podnet-bpf agent --datastore etcd` on a real 3-member etcd cluster in
// namespaces: leases, the pod mesh, restarts, lease expiry, etcd member and
// quorum loss, compaction past a watch, and 20 agents started at once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Cluster, etcdIp, pingFlood, tcpMesh, tcpStream, type AgentProc, type CNode, type Pod } from '../support/cluster.js'
import { cli, cliJson, runId, sh, sleep } from '../support/sys.js'

// node3's lease is short for the expiry test; the others outlive a restart
// on a loaded machine (a restart slower than the TTL loses the lease, and its
// peers rightly drop the node until it registers again)
const TTL_S = 4
const LONG_TTL_S = 20
const c = new Cluster(runId('pnag'))
const agents = new Map<string, AgentProc>()
const pods = new Map<string, Pod>()
let etcd = ''
const prefix = '/podnet.io/network'

interface Lease {
  node: string
  nodeIp: string
  podCidr: string
  ttl: number | null
}
// the etcd CLI commands run in an etcd member's namespace: the host has no route to the test underlay
const pn = (args: string[]) => cli(`${c.id}-e1`, args, c.env)
const leases = () => cliJson<{ nodes: Lease[] }>(`${c.id}-e1`, ['cluster', 'nodes', '--etcd-endpoints', etcd], c.env).nodes
const cidrOf = (n: CNode) => leases().find((l) => l.node === n.name)?.podCidr
function start(n: CNode, extra: string[] = [], ttlS?: number): AgentProc {
  const ttl = ttlS ?? (n.name === 'node3' ? TTL_S : LONG_TTL_S)
  const a = c.startAgent(n, [
    '--datastore',
    'etcd',
    '--etcd-endpoints',
    etcd,
    '--lease-ttl',
    `${ttl}s`,
    '--resync-interval',
    '5s',
    ...extra,
  ])
  agents.set(n.name, a)
  return a
}
const ready = (n: CNode, timeoutMs = 60_000) => c.waitFor(`${n.name} ready`, () => c.http(n, '/readyz').status === 200, timeoutMs, 200)
const peersOk = (n: CNode, count: number) => c.routes(n).length === count
// etcd runs in its own namespaces; etcdctl there (the test never reaches them from the host's)
const etcdPut = (key: string, value: unknown) => c.etcdctl(['put', key, JSON.stringify(value)])
const etcdDel = (key: string) => c.etcdctl(['del', key])
/** What the agents did that could explain lost packets: route removals, warnings, errors. */
const diagnose = () =>
  [...c.nodes]
    .flatMap((n) =>
      c
        .logsOf(n)
        .split('\n')
        .filter((l) =>
          /"removed":[1-9]|"level":"(warn|error)"|pod CIDR acquired|agent starting|SIGTERM|subnet lease taken|subnet key was deleted/.test(
            l,
          ),
        )
        .map((l) => `${n.name}: ${l}`),
    )
    .join('\n') + `\netcd history:\n${etcdHistory()}`
/** Every put/delete under the subnets prefix since revision 1 (until compacted), with its lease. */
function etcdHistory(): string {
  const r = sh(
    'timeout',
    [
      '2',
      'nsenter',
      `--net=/run/netns/${c.id}-e1`,
      'etcdctl',
      '--endpoints',
      etcd,
      'watch',
      '--rev=1',
      '--prefix',
      `${prefix}/subnets/`,
      '-w',
      'json',
    ],
    {
      env: { ...process.env, ETCDCTL_API: '3' },
    },
  )
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .flatMap(
      (l) =>
        (JSON.parse(l) as { Events?: { type?: number; kv: { key: string; mod_revision: number; lease?: number; version?: number } }[] })
          .Events ?? [],
    )
    .map(
      (e) =>
        `${e.type === 1 ? 'DELETE' : 'PUT'} ${Buffer.from(e.kv.key, 'base64').toString()} rev ${e.kv.mod_revision} lease ${e.kv.lease ?? 0} v${e.kv.version ?? 0}`,
    )
    .join('\n')
}

beforeAll(async () => {
  c.up()
  etcd = await c.startEtcd(3)
  const r = pn(['cluster', 'init', '--etcd-endpoints', etcd, '--network', '10.244.0.0/16'])
  if (r.status !== 0) throw new Error(r.stderr)
}, 120_000)
afterAll(() => c.down(), 120_000)

describe('three agents on etcd', () => {
  let n: CNode[] = []
  beforeAll(async () => {
    n = [1, 2, 3].map((i) => c.addNode(i))
    for (const x of n) start(x)
    await Promise.all(n.map((x) => ready(x)))
    for (const x of n) pods.set(x.name, c.addPod(x, cidrOf(x)!, 1))
  }, 180_000)

  it('started at once, they lease distinct subnets and every pod reaches every pod over TCP with its own address', async () => {
    const l = leases()
    expect(l.map((x) => x.node).sort()).toEqual(['node1', 'node2', 'node3'])
    expect(new Set(l.map((x) => x.podCidr)).size).toBe(3)
    for (const x of l) expect(x.podCidr).toMatch(/^10\.244\.\d+\.0\/24$/)
    for (const x of n) await c.waitFor(`${x.name} has 2 routes`, () => peersOk(x, 2), 20_000)
    expect(await tcpMesh([...pods.values()])).toEqual([])
    const text = pn(['cluster', 'nodes', '--etcd-endpoints', etcd]).stdout
    expect(text).toMatch(/NODE\s+NODE IP\s+POD CIDR\s+MODE\s+EXPIRES/)
    expect(text).toMatch(/node1\s+192\.168\.77\.1\s+10\.244\.\d+\.0\/24\s+auto\s+in \d+s/)
  })

  it('serves health, readiness and metrics with the lease expiry', () => {
    expect(c.http(n[0]!, '/healthz')).toEqual({ status: 200, body: 'ok\n' })
    const m = c.http(n[0]!, '/metrics').body
    expect(m).toMatch(/^podnet_agent_peers 2$/m)
    expect(m).toMatch(/^podnet_agent_routes\{origin="datastore"\} 2$/m)
    expect(m).toMatch(/^podnet_agent_reconcile_duration_seconds_count [1-9]/m)
    const exp = Number(/^podnet_agent_lease_expiry_timestamp_seconds (\S+)$/m.exec(m)?.[1])
    expect(exp * 1000).toBeGreaterThan(Date.now())
    expect(exp * 1000).toBeLessThan(Date.now() + (LONG_TTL_S + 1) * 1000)
  })

  it('SIGKILL leaves forwarding up; the restarted agent gets the same subnet; 0 of 200 pps pings lost', async () => {
    const [p1, p2] = [pods.get('node1')!, pods.get('node2')!]
    const before = cidrOf(n[1]!)
    const flood = pingFlood(p1, p2.ip, 200, 6)
    await sleep(1000)
    await c.stopAgent(agents.get('node2')!, 'SIGKILL')
    await sleep(500)
    start(n[1]!)
    await ready(n[1]!)
    const r = await flood.done
    expect(r.sent).toBe(1200)
    expect(r.received, `${r.out}\n${diagnose()}`).toBe(r.sent)
    expect(r.missing).toEqual([])
    expect(cidrOf(n[1]!)).toBe(before)
    expect(c.routes(n[0]!)).toHaveLength(2)
  })

  it('restarted 10 times under a live TCP stream: no reset, 0 lost pings', async () => {
    const [p1, p2] = [pods.get('node1')!, pods.get('node2')!]
    const stream = await tcpStream(p1, p2)
    const flood = pingFlood(p2, p1.ip, 200, 600)
    let restarts = 0
    for (; restarts < 10; restarts++) {
      expect(await c.stopAgent(agents.get('node1')!, 'SIGTERM')).toBe(0)
      start(n[0]!)
      await ready(n[0]!)
    }
    await sleep(1000)
    flood.stop()
    const r = await flood.done
    const s = await stream.stop()
    expect(restarts).toBe(10)
    expect(r.sent).toBeGreaterThan(400)
    // interrupted: only what was in flight at the SIGINT (≤ 2 at 200 pps) may lack a reply
    expect(r.missing, `${r.out}\n${diagnose()}`).toEqual([])
    expect(r.trailing, r.out).toBeLessThanOrEqual(2)
    expect(s.client.err).toBeNull()
    expect(s.server.err).toBeNull()
    expect(s.server.bytes).toBeGreaterThan(1_000_000)
    expect(s.server.bytes).toBe(s.client.sent)
  })
})

describe('etcd trouble', () => {
  const n = () => [1, 2, 3].map((i) => c.nodes.find((x) => x.name === `node${i}`)!)
  const fake = { node: 'ghost', nodeIp: '192.168.77.99', podCidr: '10.244.250.0/24', mode: 'auto' }
  const fakeKey = `${prefix}/subnets/10.244.250.0-24`
  const hasFake = (x: CNode) => c.routes(x).some((r) => r.cidr === fake.podCidr)

  it('relists after compaction past its watch revision, without dropping routes', async () => {
    const n1 = n()[0]!
    const routes0 = c.routes(n1).map((r) => r.cidr)
    // node1 loses etcd (its SYNs are refused in its own namespace) while every member restarts,
    // so its watch must resume from an old revision; meanwhile a lease appears and history is compacted
    for (let k = 1; k <= 3; k++) c.nodeRoute(n1, ['add', 'unreachable', `${etcdIp(k)}/32`])
    try {
      for (let k = 1; k <= 3; k++) await c.stopMember(k, 'SIGTERM')
      for (let k = 1; k <= 3; k++) c.startMember(k, 'existing')
      await c.waitEtcdHealthy()
      etcdPut(fakeKey, fake)
      etcdPut(`${prefix}/unrelated`, 'x')
      const rev = (JSON.parse(c.etcdctl(['endpoint', 'status', '-w', 'json'])) as { Status: { header: { revision: number } } }[])[0]!.Status
        .header.revision
      c.etcdctl(['compact', String(rev)])
      await sleep(1500)
      expect(c.routes(n1).map((r) => r.cidr)).toEqual(routes0) // unchanged while cut off
    } finally {
      for (let k = 1; k <= 3; k++) c.nodeRoute(n1, ['del', 'unreachable', `${etcdIp(k)}/32`])
    }
    await c.waitFor('node1 learns the new lease', () => hasFake(n1), 30_000)
    expect(
      c
        .routes(n1)
        .map((r) => r.cidr)
        .sort(),
    ).toEqual([...routes0, fake.podCidr].sort())
    expect(agents.get('node1')!.log()).toMatch(/"msg":"watch cancelled; relisting"/) // etcd: required revision has been compacted
    expect(c.http(n1, '/metrics').body).toMatch(/^podnet_agent_watch_restarts_total [1-9]/m)
    await ready(n1)
    etcdDel(fakeKey)
    for (const x of n()) await c.waitFor(`${x.name} drops the fake lease`, () => !hasFake(x), 20_000)
  })

  it('carries on with one member down; with quorum lost keeps the datapath and is not ready; converges when it is back', async () => {
    await c.stopMember(3)
    etcdPut(fakeKey, fake)
    for (const x of n()) await c.waitFor(`${x.name} learns a lease with a member down`, () => hasFake(x), 30_000)
    // a keepalive that was on its way to the dead member fails once; the next one goes to a live member
    for (const x of n()) await ready(x, 10_000)

    await c.stopMember(2)
    try {
      await quorumLost()
    } finally {
      // later tests need etcd, whatever happened here
      if (!c.etcd.has(2)) c.startMember(2, 'existing')
      if (!c.etcd.has(3)) c.startMember(3, 'existing')
    }
    await c.waitEtcdHealthy()
    for (const x of n()) await ready(x)
    etcdDel(fakeKey)
    for (const x of n()) await c.waitFor(`${x.name} converges after quorum is back`, () => !hasFake(x) && c.routes(x).length === 2, 30_000)
  })

  async function quorumLost(): Promise<void> {
    for (const x of n()) {
      const r = await c.waitFor(`${x.name} not ready`, () => {
        const h = c.http(x, '/readyz')
        return h.status === 503 && h
      })
      // whichever the agent noticed first: its keepalive failing, or its watch stream ending
      expect(r.body).toMatch(/not ready: etcd: (etcd unreachable or without quorum|watch disconnected)/)
    }
    const [p1, p3] = [pods.get('node1')!, pods.get('node3')!]
    const flood = pingFlood(p1, p3.ip, 200, 3)
    expect(c.routes(n()[0]!)).toHaveLength(3)
    const r = await flood.done
    expect(r.received, r.out).toBe(r.sent)
  }

  it("removes a node whose lease expired from every peer's routes within TTL + 2 s, and it gets its subnet back", async () => {
    const [n1, n2, n3] = n() as [CNode, CNode, CNode]
    const cidr3 = cidrOf(n3)!
    expect(await c.stopAgent(agents.get('node3')!, 'SIGTERM')).toBe(0)
    const t0 = Date.now()
    // SIGTERM keeps the lease: it is only gone once nobody renews it
    await c.waitFor(
      'route to node3 gone everywhere',
      () => [n1, n2].every((x) => !c.routes(x).some((r) => r.cidr === cidr3)),
      (TTL_S + 2) * 1000,
      100,
    )
    console.log(`lease expiry → routes gone on both peers after ${Date.now() - t0} ms (TTL ${TTL_S} s)`)
    start(n3)
    await ready(n3)
    expect(cidrOf(n3)).toBe(cidr3)
    for (const x of [n1, n2]) await c.waitFor(`${x.name} routes node3 again`, () => c.routes(x).some((r) => r.cidr === cidr3), 20_000)
  })
})

describe('twenty agents started at once', () => {
  it('lease distinct subnets and give a full pod mesh', async () => {
    for (const a of [...agents.values()]) await c.stopAgent(a, 'SIGTERM')
    const nodes: CNode[] = []
    for (let i = 1; i <= 20; i++) nodes.push(c.nodes.find((x) => x.name === `node${i}`) ?? c.addNode(i))
    const t0 = Date.now()
    // 20 agents and 3 etcd members starting at once on 2 shared cores delay keepalives: a TTL the
    // start-up storm cannot outlast (distinct subnets and the mesh are what this test is about)
    for (const x of nodes) start(x, [], 60)
    // readiness from the agents' status files: polling 20 agents over HTTP would start a process per poll
    const notReady = () => nodes.filter((x) => !(c.statusOf(x)?.running && c.statusOf(x)?.ready))
    await c
      .waitFor('20 agents ready', () => notReady().length === 0, 150_000, 250)
      .catch((e: Error) => {
        const why = notReady().map(
          (x) => `${x.name}: ${c.statusOf(x)?.reason ?? 'no status'}\n${c.logsOf(x).trim().split('\n').slice(-3).join('\n')}`,
        )
        throw new Error(`${e.message}\n${why.join('\n')}`)
      })
    console.log(`20 agents started at once: all ready after ${Date.now() - t0} ms`)
    const l = leases().filter((x) => x.node !== 'ghost')
    expect(l).toHaveLength(20)
    expect(new Set(l.map((x) => x.podCidr)).size).toBe(20)
    const cidrOfNode = new Map(l.map((x) => [x.node, x.podCidr]))
    for (const x of nodes) if (!pods.has(x.name)) pods.set(x.name, c.addPod(x, cidrOfNode.get(x.name)!, 1))
    const cidrs = l.map((x) => x.podCidr)
    for (const x of nodes) {
      const others = cidrs.filter((p) => p !== cidrOfNode.get(x.name))
      await c.waitFor(`${x.name} routes its 19 peers`, () => others.every((p) => c.routeCidrs(x).includes(p)), 30_000, 200)
    }
    const bad = await tcpMesh([...pods.values()])
    expect(bad, diagnose()).toEqual([])
  }, 400_000)
})

describe('bad configuration is refused with a clear error and nothing applied', () => {
  const errOf = (args: string[]) => {
    const r = pn(args)
    expect(r.status).not.toBe(0)
    expect(r.stderr).toMatch(/^Error: /)
    expect(r.stderr).toMatch(/\nFix: /)
    return r.stderr
  }
  it('cluster init: subnet length out of range, network over an etcd member, changing a network in use', () => {
    expect(errOf(['cluster', 'init', '--etcd-endpoints', etcd, '--network', '10.244.0.0/16', '--subnet-len', '16'])).toContain(
      'subnet length /16 is out of range',
    )
    expect(errOf(['cluster', 'init', '--etcd-endpoints', etcd, '--network', '10.244.0.0/16', '--subnet-len', '31'])).toContain(
      'out of range',
    )
    expect(errOf(['cluster', 'init', '--etcd-endpoints', etcd, '--network', '192.168.0.0/16'])).toContain('contains the etcd endpoint')
    expect(errOf(['cluster', 'init', '--etcd-endpoints', etcd, '--network', '10.245.0.0/16'])).toMatch(
      /nodes hold leases in it; it cannot change/,
    )
    expect(pn(['cluster', 'init', '--etcd-endpoints', etcd, '--network', '10.244.0.0/16']).stdout).toContain('cluster config unchanged')
  })

  it('agent: unreachable etcd, no cluster config, a network over the node IP, a bad YAML config', async () => {
    const x = c.addNode(30)
    const fail = async (args: string[], text: string) => {
      const a = c.startAgent(x, args)
      expect(await a.exited).toBe(1)
      expect(a.log()).toContain(text)
      expect(a.log()).toContain('Fix: ')
      expect(cli(x.ns, ['status', '--pin-dir', x.pinDir], c.env).stderr).toMatch(/not attached|no state/i)
    }
    await fail(['--datastore', 'etcd', '--etcd-endpoints', 'http://192.168.77.250:2379'], 'cannot reach etcd at http://192.168.77.250:2379')
    await fail(
      ['--datastore', 'etcd', '--etcd-endpoints', etcd, '--etcd-prefix', '/nothing/here'],
      'no cluster config at /nothing/here/config',
    )
    const init = pn([
      'cluster',
      'init',
      '--etcd-endpoints',
      etcd,
      '--etcd-prefix',
      '/other',
      '--network',
      '192.168.77.0/27',
      '--subnet-len',
      '28',
    ])
    expect(init.status, init.stderr).toBe(0)
    await fail(['--datastore', 'etcd', '--etcd-endpoints', etcd, '--etcd-prefix', '/other'], "contains this node's IP 192.168.77.30")
    const bad = `${c.dir}/bad.yaml`
    const { writeFileSync } = await import('node:fs')
    writeFileSync(bad, 'datastore: etcd\netcd:\n  endpoints: http://x:1\n  bogus: 1\n')
    await fail(['--config', bad], 'etcd.endpoints: Expected array')
  }, 120_000)
})
