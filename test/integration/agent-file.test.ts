// `podnet-bpf agent --datastore file` on two real nodes: pods reach each
// other through routes the agents install from a watched peers file; edits
// converge; a broken file keeps the datapath and makes /readyz say why;
// SIGTERM leaves the datapath forwarding; a restart changes nothing; bad
// configuration is refused before anything is attached.
import { existsSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Cluster, type AgentProc, type CNode } from '../support/cluster.js'
import { cli, runId } from '../support/sys.js'
import { peerAddressSeen, ping } from '../support/traffic.js'

const c = new Cluster(runId('pnag'))
let n1: CNode, n2: CNode
const cidr = (i: number) => `10.244.${i}.0/24`
const peersFile = () => join(c.dir, 'peers.yaml')
/** Atomic replace (temp file + rename), as an operator's tooling would: the agent never sees a half-written file. */
function writePeersText(text: string): void {
  const tmp = `${peersFile()}.tmp`
  writeFileSync(tmp, text)
  renameSync(tmp, peersFile())
}
function writePeers(list: { name: string; nodeIp: string; podCidr: string }[]): void {
  writePeersText(`peers:\n${list.map((p) => `  - {name: ${p.name}, nodeIp: ${p.nodeIp}, podCidr: ${p.podCidr}}`).join('\n')}\n`)
}
const all = () => [
  { name: 'node1', nodeIp: n1.ip, podCidr: cidr(1) },
  { name: 'node2', nodeIp: n2.ip, podCidr: cidr(2) },
]
const agents = new Map<string, AgentProc>()
const start = (n: CNode, i: number) => {
  const a = c.startAgent(n, ['--datastore', 'file', '--pod-cidr', cidr(i), '--peers-file', peersFile(), '--resync-interval', '5s'])
  agents.set(n.name, a)
  return a
}
const ready = (n: CNode) => c.waitFor(`${n.name} ready`, () => c.http(n, '/readyz').status === 200, 30_000, 200)
let p1: { ns: string; ip: string }, p2: { ns: string; ip: string }

beforeAll(async () => {
  c.up()
  n1 = c.addNode(1)
  n2 = c.addNode(2)
  writePeers(all())
  start(n1, 1)
  start(n2, 2)
  await ready(n1)
  await ready(n2)
  p1 = c.addPod(n1, cidr(1), 1)
  p2 = c.addPod(n2, cidr(2), 1)
})
afterAll(() => c.down())

describe('agent with the file datastore', () => {
  it('installs the peer routes and pods reach each other over TCP with their own source IP', async () => {
    expect(c.routes(n1)).toEqual([{ cidr: cidr(2), nodeIp: n2.ip, encap: 'direct', requested: 'default', origin: 'datastore' }])
    expect(ping(p1.ns, p2.ip).status).toBe(0)
    expect(await peerAddressSeen('tcp', p2.ns, p2.ip, p1.ns)).toBe(p1.ip)
  })

  it('writes the CNI conflist for its pod CIDR once ready', () => {
    const conf = JSON.parse(readFileSync(join(n1.cniDir, '10-podnet.conflist'), 'utf8')) as { plugins: { ipam: unknown; pinDir: string }[] }
    expect(conf.plugins[0]!.ipam).toEqual({ type: 'host-local', ranges: [[{ subnet: cidr(1) }]] })
    expect(conf.plugins[0]!.pinDir).toBe(n1.pinDir)
  })

  it('follows edits of the peers file', async () => {
    writePeers([all()[0]!])
    await c.waitFor('route removed on node1', () => c.routes(n1).length === 0, 10_000)
    expect(ping(p1.ns, p2.ip, { count: 1, timeoutS: 1 }).status).not.toBe(0)
    writePeers(all())
    await c.waitFor('route back on node1', () => c.routes(n1).length === 1, 10_000)
    expect(ping(p1.ns, p2.ip).status).toBe(0)
  })

  it('keeps the datapath when the file breaks, and /readyz says why', async () => {
    writePeersText('peers:\n  - {name: node2, nodeIp: 192.168.77.300, podCidr: 10.244.2.0/24}\n')
    const r = await c.waitFor('not ready', () => {
      const h = c.http(n1, '/readyz')
      return h.status === 503 && h
    })
    expect(r.body).toMatch(/not ready: file: peers file .*nodeIp: must be an IPv4 address/)
    // the gauge and `status` say so as soon as /readyz does
    const st = JSON.parse(cli(n1.ns, ['status', '--pin-dir', n1.pinDir, '--json'], c.env).stdout) as { agent: { ready: boolean } }
    expect(st.agent.ready).toBe(false)
    expect(c.routes(n1)).toHaveLength(1)
    expect(ping(p1.ns, p2.ip).status).toBe(0)
    const metrics = c.http(n1, '/metrics').body
    expect(metrics).toMatch(/^podnet_agent_ready 0$/m)
    expect(metrics).toMatch(/^podnet_forward_packets_total\{reason="direct",direction="from-pod"\} [1-9]/m)
    writePeers(all())
    await ready(n1)
  })

  it('shows the agent in `podnet-bpf status`', () => {
    const r = cli(n1.ns, ['status', '--pin-dir', n1.pinDir, '--json'], c.env)
    expect(r.status, r.stderr).toBe(0)
    const s = JSON.parse(r.stdout) as { agent: { running: boolean; datastore: string; peers: number; ready: boolean } }
    expect(s.agent).toMatchObject({ running: true, datastore: 'file', peers: 1, ready: true })
    const text = cli(n1.ns, ['status', '--pin-dir', n1.pinDir], c.env).stdout
    expect(text).toMatch(/agent: running, ready; node node1, datastore file, 1 peers, last sync/)
  })

  it('exits 0 on SIGTERM leaving the datapath forwarding, and a restart changes no route', async () => {
    const a = agents.get('node1')!
    expect(await c.stopAgent(a, 'SIGTERM')).toBe(0)
    expect(ping(p1.ns, p2.ip).status).toBe(0)
    const b = start(n1, 1)
    await ready(n1)
    const lines = b
      .log()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string; added?: number })
    expect(lines.find((l) => l.msg === 'datapath unchanged')).toBeTruthy()
    expect(lines.find((l) => l.msg === 'routes reconciled')).toBeUndefined()
    expect(ping(p1.ns, p2.ip).status).toBe(0)
  })
})

describe('agent start-up refuses bad configuration before attaching anything', () => {
  let n3: CNode
  beforeAll(() => {
    n3 = c.addNode(3)
  })
  it.each([
    [['--datastore', 'file'], 'podCidr: the file datastore needs'],
    [['--datastore', 'file', '--pod-cidr', '10.244.3.1/24'], 'host bits are set'],
    [['--datastore', 'file', '--pod-cidr', cidr(3), '--peers-file', '/nonexistent/p.yaml'], 'cannot read peers file'],
    [['--datastore', 'file', '--pod-cidr', cidr(3), '--lease-ttl', 'x'], 'leaseTtl: "x" is not a duration'],
    [['--datastore', 'file', '--pod-cidr', cidr(3), '--node-ip', '192.168.77.99'], 'node IP 192.168.77.99 is not an address of eth0'],
  ])('%j', async (args, msg) => {
    const a = c.startAgent(n3, args)
    expect(await a.exited).toBe(1)
    expect(a.log()).toContain(msg)
    expect(a.log()).toContain('Fix: ')
    expect(existsSync(n3.pinDir) && readdirSync(n3.pinDir).length > 0).toBe(false)
    expect(existsSync(n3.cniDir)).toBe(false)
  })
})
