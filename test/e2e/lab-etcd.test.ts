// The lab's default: a 3-member etcd in namespaces, an agent per node that
// leases its pod CIDR, pods on the leased CIDRs; add-node / remove-node with
// convergence times measured on every peer; logs; down stops everything.
import { existsSync, readdirSync, statSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { LabStatus } from '../../src/services/lab/lab.js'
import type { MembershipResult } from '../../src/services/lab/membership.js'
import { labName, TestLab } from './helpers.js'

const t = new TestLab(labName('pnag'))
const status = async () => (JSON.parse((await t.lab_(['status', '--json'])).stdout) as { labs: LabStatus[] }).labs[0]!
const nsInodes = (prefix: string) =>
  new Set(
    readdirSync('/run/netns')
      .filter((n) => n.startsWith(prefix))
      .map((n) => statSync(`/run/netns/${n}`).ino),
  )
const procsIn = (inodes: Set<number>) => {
  return readdirSync('/proc').filter((d) => {
    try {
      return /^\d+$/.test(d) && inodes.has(statSync(`/proc/${d}/ns/net`).ino)
    } catch {
      return false
    }
  })
}

beforeAll(async () => {
  await t.up(['--datastore', 'etcd', '--nodes', '3', '--pods-per-node', '1'])
}, 180_000)
afterAll(() => t.forceCleanup(), 120_000)

describe('lab on etcd + agents', () => {
  it('comes up with agents that leased distinct pod CIDRs, and pods on them reach each other', async () => {
    const s = await status()
    expect(s.datastore).toBe('etcd')
    const cidrs = s.nodes.map((n) => n.podCidr)
    expect(new Set(cidrs).size).toBe(3)
    for (const n of s.nodes) {
      expect(s.agents[n.name]).toMatchObject({ running: true, ready: true, podCidr: n.podCidr, peers: 2 })
      expect(n.pods[0]!.ip.startsWith(n.podCidr.split('.').slice(0, 3).join('.'))).toBe(true)
      expect(n.paths).toHaveLength(2)
    }
    // auto mode: node3 sits behind the router
    expect(s.nodes[0]!.paths.map((p) => `${p.peer}:${p.encap}`).sort()).toEqual(['node2:direct', 'node3:vxlan'])
    for (const dst of ['node2-pod1', 'node3-pod1']) {
      const r = await t.lab_(['ping', 'node1-pod1', dst, '-c', '2'])
      expect(r.status, r.stderr + r.stdout).toBe(0)
    }
    const text = (await t.lab_(['status'])).stdout
    expect(text).toMatch(/etcd \+ agents/)
    expect(text).toMatch(/node1 .* ready, 2 peers, lease to/)
  })

  it('adds a node and reports how long each peer took to route to it', async () => {
    const r = await t.lab_(['add-node', '--pods', '1', '--json'])
    expect(r.status, r.stderr).toBe(0)
    const j = JSON.parse(r.stdout) as MembershipResult
    expect(j.node).toBe('node4')
    expect(Object.keys(j.peers).sort()).toEqual(['node1', 'node2', 'node3'])
    for (const ms of Object.values(j.peers)) expect(ms).not.toBeNull()
    console.log(`add-node: lease after ${j.leaseMs} ms; route on peers after ${JSON.stringify(j.peers)} ms`)
    const p = await t.lab_(['ping', 'node4-pod1', 'node3-pod1', '-c', '2'])
    expect(p.status, p.stderr + p.stdout).toBe(0)
  })

  it('removes a node and reports how long each peer took to drop its route', async () => {
    const before = await status()
    const gone = before.nodes.find((n) => n.name === 'node2')!
    const r = await t.lab_(['remove-node', 'node2', '--json'])
    expect(r.status, r.stderr).toBe(0)
    const j = JSON.parse(r.stdout) as MembershipResult
    for (const ms of Object.values(j.peers)) expect(ms).not.toBeNull()
    const s = await status()
    expect(s.nodes.map((n) => n.name)).toEqual(['node1', 'node3', 'node4'])
    for (const n of s.nodes) expect(n.paths.map((p) => p.cidr)).not.toContain(gone.podCidr)
    expect(existsSync(gone.pinDir)).toBe(false)
  })

  it("shows a node's agent log and an etcd member's", async () => {
    expect((await t.lab_(['logs', 'node1'])).stdout).toMatch(/INFO\s+ready peers=\d+ routes=\d+/)
    expect((await t.lab_(['logs', 'etcd2', '--tail', '5'])).stdout.trim().split('\n')).toHaveLength(5)
    const bad = await t.lab_(['logs', 'node9'])
    expect(bad.status).not.toBe(0)
    expect(bad.stderr).toMatch(/Fix: /)
  })

  it('down stops every agent and etcd member and leaves nothing behind', async () => {
    const inodes = nsInodes(t.prefix)
    expect(procsIn(inodes).length).toBeGreaterThanOrEqual(6) // 3 agents (node1, node3, node4) and 3 etcd members
    const r = await t.down()
    expect(r.status, r.stderr).toBe(0)
    expect(procsIn(inodes)).toEqual([])
    expect(readdirSync('/run/netns').filter((n) => n.startsWith(t.prefix))).toEqual([])
    const stateDir = t.env.PODNET_STATE_DIR!
    expect(readdirSync(stateDir).filter((f) => f.includes(t.prefix))).toEqual([])
    expect(existsSync(`${stateDir}/labs/${t.name}`)).toBe(false)
  })
})
