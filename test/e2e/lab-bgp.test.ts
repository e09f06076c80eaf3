// `lab up --routing bgp`: the router namespace runs BIRD as the top-of-rack
// router, every node's agent peers with it over eBGP, and node3 (in the other
// subnet) is reached directly through the router, no VXLAN.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { LabStatus } from '../../src/services/lab/lab.js'
import { labName, TestLab } from './helpers.js'
import { capture } from '../support/traffic.js'

const t = new TestLab(labName('pnbgpl'))
const status = async () => (JSON.parse((await t.lab_(['status', '--json'])).stdout) as { labs: LabStatus[] }).labs[0]!

beforeAll(async () => {
  await t.up(['--routing', 'bgp', '--nodes', '3', '--pods-per-node', '1'])
}, 240_000)
afterAll(() => t.forceCleanup(), 120_000)

describe('lab with BGP routing and a BIRD top-of-rack router', () => {
  it('brings up a session from every node to the router, and routes node3 directly via the router', async () => {
    const s = await status()
    expect(s.routing).toBe('bgp')
    for (const n of s.nodes) {
      const a = s.agents[n.name]!
      expect(a).toMatchObject({ running: true, ready: true })
      expect(a.bgp).toEqual([{ peer: n.subnet === 'a' ? '192.168.77.254' : '192.168.88.254', asn: 65000, state: 'Established' }])
    }
    const byName = Object.fromEntries(s.nodes.map((n) => [n.name, n]))
    expect(byName.node1!.paths.map((p) => `${p.peer}:${p.encap}:${p.nodeIp}`).sort()).toEqual([
      `node2:direct:${byName.node2!.ip}`,
      'node3:direct:192.168.77.254',
    ])
    const text = (await t.lab_(['status'])).stdout
    expect(text).toMatch(/routing bgp/)
    expect(text).toMatch(/direct via router/)
    expect(text).toMatch(/BGP 1\/1 up/)
  })

  it('carries pod traffic to the other subnet without encapsulation', async () => {
    const s = await status()
    const node3 = s.nodes.find((n) => n.name === 'node3')!
    const lines = await capture(s.routerNs!, 'eth-b', ['-c', '8', 'icmp or udp port 8472'], async () => {
      const r = await t.lab_(['ping', 'node1-pod1', 'node3-pod1', '-c', '3'])
      expect(r.status, r.stderr + r.stdout).toBe(0)
    })
    expect(lines.some((l) => l.includes(`> ${node3.pods[0]!.ip}: ICMP echo request`))).toBe(true)
    expect(lines.filter((l) => l.includes('8472'))).toEqual([])
  })

  it('down stops the router daemon with everything else', async () => {
    const r = await t.down()
    expect(r.status, r.stderr).toBe(0)
    expect(t.leftovers()).toEqual([])
  })
})
