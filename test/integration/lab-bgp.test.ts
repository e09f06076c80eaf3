// `lab up --routing bgp`: the lab's router namespace runs BIRD as the
// top-of-rack router, eBGP with every node's agent (no node-to-node mesh);
// node3 in the other subnet is reached directly through the router, which
// learned every pod CIDR. add-node / remove-node converge over BGP, and
// `lab down` leaves no namespace, BIRD, pin or run file behind.
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { LabStatus } from '../../src/services/lab/lab.js'
import type { MembershipResult } from '../../src/services/lab/membership.js'
import { labName, TestLab } from '../e2e/helpers.js'
import { killBirdsUnder } from '../support/bgp.js'
import { cliJson, sh } from '../support/sys.js'
import { capture, peerAddressSeen } from '../support/traffic.js'

const t = new TestLab(labName('pnbgl'))
const stateDir = t.env.PODNET_STATE_DIR!
const ROUTER_A = '192.168.77.254'
const ROUTER_B = '192.168.88.254'
const status = async () => (JSON.parse((await t.lab_(['status', '--json'])).stdout) as { labs: LabStatus[] }).labs[0]!
const table201 = (ns: string) => sh('ip', ['-n', ns, '-4', 'route', 'show', 'table', '201']).stdout.trim().split('\n').filter(Boolean)
const birdc = (s: LabStatus, ...args: string[]) =>
  sh('nsenter', [`--net=/run/netns/${s.routerNs}`, 'birdc', '-s', s.router!.socket, ...args], { timeoutMs: 5000 }).stdout
const rib = (s: LabStatus) => [...birdc(s, 'show', 'route').matchAll(/^(\d+\.\d+\.\d+\.\d+\/\d+)/gm)].map((m) => m[1]!).sort()
const routeMap = (n: { ns: string; pinDir: string }) => {
  const r = cliJson<unknown>(n.ns, ['routes', 'list', '--pin-dir', n.pinDir], t.env)
  const list = (Array.isArray(r) ? r : (r as { routes: unknown[] }).routes) as {
    cidr: string
    nodeIp: string
    encap: string
    origin?: string
  }[]
  return Object.fromEntries(list.map((x) => [x.cidr, x]))
}
const alive = (pid: number) => sh('kill', ['-0', String(pid)]).status === 0 && !/State:\s+Z/.test(safeRead(`/proc/${pid}/status`))
const safeRead = (p: string) => {
  try {
    return readFileSync(p, 'utf8')
  } catch {
    return ''
  }
}
const waitFor = async <T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, ms = 30_000): Promise<T> => {
  const end = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

beforeAll(async () => {
  await t.up(['--datastore', 'etcd', '--routing', 'bgp', '--nodes', '3', '--pods-per-node', '1'])
}, 180_000)
afterAll(async () => {
  await t.forceCleanup()
  killBirdsUnder(stateDir)
  rmSync(stateDir, { recursive: true, force: true })
}, 120_000)

describe('lab up --routing bgp: BIRD top-of-rack router, eBGP with every node', () => {
  it('brings every session up on the router and the nodes, and every pod CIDR reaches the RIB, table 201 and each routes map', async () => {
    const s = await status()
    expect(s.routing).toBe('bgp')
    expect(s.nodes.map((n) => [n.name, n.subnet])).toEqual([
      ['node1', 'a'],
      ['node2', 'a'],
      ['node3', 'b'],
    ])
    const cidrs = s.nodes.map((n) => n.podCidr)
    // sessions are polled (router: at each status, agents: every 2 s), so wait for every side to say so
    const up = await waitFor('router and node sessions Established', async () => {
      const x = await status()
      const r = x.router!.sessions
      const nodesUp = x.nodes.every((n) =>
        x.agents[n.name]?.bgp?.sessions.every((y) => y.state === 'Established' && y.prefixes.received === 2),
      )
      return r.length === 3 && r.every((y) => y.state === 'Established' && y.asn === 64512) && nodesUp && x
    })
    expect(rib(s)).toEqual([...cidrs].sort())
    const ip = Object.fromEntries(s.nodes.map((n) => [n.name, n.ip]))
    const peerOf = { a: ROUTER_A, b: ROUTER_B } as const
    for (const n of s.nodes) {
      const sessions = up.agents[n.name]!.bgp!.sessions
      // one session each, with the router's address on the node's own subnet: no node-to-node mesh
      expect(sessions.map((x) => [x.peer, x.asn, x.state])).toEqual([[peerOf[n.subnet], 65000, 'Established']])
      const want = Object.fromEntries(
        s.nodes.filter((p) => p !== n).map((p) => [p.podCidr, p.subnet === n.subnet ? ip[p.name]! : peerOf[n.subnet]]),
      )
      expect(sessions[0]!.prefixes).toEqual({ received: 2, accepted: 2, rejected: 0 })
      const table = table201(n.ns)
      expect(table.map((l) => l.split(' ')[0]).sort()).toEqual(Object.keys(want).sort())
      for (const l of table) expect(l).toContain(`via ${want[l.split(' ')[0]!]} dev eth0 proto bird`)
      const map = routeMap(n)
      for (const [cidr, gw] of Object.entries(want)) expect(map[cidr]).toMatchObject({ nodeIp: gw, encap: 'direct', origin: 'bgp' })
    }
    // paths as lab status says them
    const n1 = s.nodes[0]!
    expect(n1.paths.map((p) => [p.peer, p.encap, p.via]).sort()).toEqual([
      ['node2', 'direct', 'node'],
      ['node3', 'direct', 'router'],
    ])
    const text = (await t.lab_(['status'])).stdout
    expect(text).toMatch(/node1\s+local\s+direct\s+direct via router 192\.168\.77\.254/)
    expect(text).toMatch(/router\s+192\.168\.88\.3\s+64512\s+Established\s+\d+s\s+1\s+1\s+0/)
    expect(text).toMatch(/node3\s+192\.168\.88\.254\s+65000\s+Established\s+\d+s\s+2\s+2\s+0/)
    // the router's BIRD logs where `lab logs router` finds it
    expect((await t.lab_(['logs', 'router'])).stdout).toMatch(/<INFO> Started/)
  })

  it("carries pod TCP from node1 to node3 directly through the router: the listener sees the client's pod IP, the router's link pod IPs and no VXLAN", async () => {
    const s = await status()
    const p1 = s.nodes[0]!.pods[0]!
    const p3 = s.nodes[2]!.pods[0]!
    let seen = ''
    const lines = await capture(s.routerNs!, 'eth-b', ['-c', '40', 'ip'], async () => {
      seen = await peerAddressSeen('tcp', p3.ns, p3.ip, p1.ns)
    })
    expect(seen).toBe(p1.ip)
    expect(lines.some((l) => l.includes(`${p1.ip}.`) && l.includes(`> ${p3.ip}.7000`))).toBe(true)
    expect(lines.some((l) => l.includes(`${p3.ip}.7000 > ${p1.ip}.`))).toBe(true)
    expect(lines.filter((l) => l.includes('.8472') || /UDP/.test(l))).toEqual([])
  })

  it('adds a node: the router gets a session with it, and every peer routes to its CIDR', async () => {
    const r = await t.lab_(['add-node', '--pods', '1', '--json'])
    expect(r.status, r.stderr).toBe(0)
    const j = JSON.parse(r.stdout) as MembershipResult
    expect(j.node).toBe('node4')
    expect(Object.keys(j.peers).sort()).toEqual(['node1', 'node2', 'node3'])
    for (const ms of Object.values(j.peers)) expect(ms).not.toBeNull()
    console.log(`add-node (bgp): lease after ${j.leaseMs} ms; route on peers after ${JSON.stringify(j.peers)} ms`)
    const s = await status()
    const n4 = s.nodes.find((n) => n.name === 'node4')!
    expect(s.router!.sessions.find((x) => x.peer === n4.ip)?.state).toBe('Established')
    expect(rib(s)).toContain(n4.podCidr)
    expect(routeMap(s.nodes[2]!)[n4.podCidr]).toMatchObject({ nodeIp: ROUTER_B, origin: 'bgp' })
    const p = await t.lab_(['ping', 'node4-pod1', 'node3-pod1', '-c', '2'])
    expect(p.status, p.stderr + p.stdout).toBe(0)
    expect(p.stdout).toContain('via router 192.168.77.254')
  })

  it('removes a node: the router drops its session and withdraws its CIDR from every peer', async () => {
    const before = await status()
    const gone = before.nodes.find((n) => n.name === 'node4')!
    const r = await t.lab_(['remove-node', 'node4', '--json'])
    expect(r.status, r.stderr).toBe(0)
    const j = JSON.parse(r.stdout) as MembershipResult
    for (const ms of Object.values(j.peers)) expect(ms).not.toBeNull()
    console.log(`remove-node (bgp): route gone on peers after ${JSON.stringify(j.peers)} ms`)
    const s = await status()
    expect(s.nodes.map((n) => n.name)).toEqual(['node1', 'node2', 'node3'])
    expect(s.router!.sessions.map((x) => x.peer)).not.toContain(gone.ip)
    expect(rib(s)).not.toContain(gone.podCidr)
    for (const n of s.nodes) {
      expect(Object.keys(routeMap(n))).not.toContain(gone.podCidr)
      expect(table201(n.ns).some((l) => l.startsWith(gone.podCidr))).toBe(false)
    }
    expect(existsSync(gone.pinDir)).toBe(false)
  })

  it('down stops the router and every agent BIRD and leaves no namespace, pin or run file', async () => {
    const s = await status()
    const birds = [s.router!.pid!, ...s.nodes.map((n) => s.agents[n.name]!.bgp!.pid!)]
    expect(birds.every((p) => Number.isInteger(p) && alive(p))).toBe(true)
    expect(readdirSync(stateDir).some((f) => f.startsWith('bgp') && f.includes(t.prefix))).toBe(true)
    const r = await t.down()
    expect(r.status, r.stderr).toBe(0)
    expect(birds.filter(alive)).toEqual([])
    expect(readdirSync('/run/netns').filter((n) => n.startsWith(t.prefix))).toEqual([])
    expect(readdirSync('/sys/fs/bpf').filter((n) => n.startsWith(t.prefix))).toEqual([])
    expect(readdirSync(stateDir).filter((f) => f.includes(t.prefix))).toEqual([])
    expect(existsSync(`${stateDir}/labs/${t.name}`)).toBe(false)
  })
})

describe('lab up --routing bgp with what it cannot run on', () => {
  it.each([
    [['--mode', 'vxlan'], /--routing bgp routes pods without encapsulation and cannot run in vxlan mode/],
    [['--datastore', 'static'], /--routing bgp needs the agents/],
  ])('refuses %j with a Fix: hint and creates nothing', async (args, msg) => {
    const bad = new TestLab(labName('pnbglx'), stateDir)
    const r = await bad.lab_(['up', '--routing', 'bgp', ...args])
    expect(r.status).not.toBe(0)
    expect(r.stderr).toMatch(msg)
    expect(r.stderr).toMatch(/Fix: /)
    expect(readdirSync('/run/netns').filter((n) => n.startsWith(bad.prefix))).toEqual([])
    expect(existsSync(`${stateDir}/labs/${bad.name}.json`)).toBe(false)
  })
})
