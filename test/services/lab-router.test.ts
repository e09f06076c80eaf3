// `lab up --routing bgp` before anything is created: what the plan allows,
// and the top-of-rack router's config (BIRD must accept it).
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { planLab } from '../../src/services/lab/plan.js'
import { routerSpec } from '../../src/services/lab/router.js'
import { renderRouterBird } from '../../src/services/lab/bgp-router.js'

const dir = mkdtempSync(join(tmpdir(), 'pnbgl-router-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('planLab with --routing bgp', () => {
  it('always has the router, with one node in three behind it, in auto and in direct mode', () => {
    for (const mode of ['auto', 'direct'] as const) {
      const p = planLab({ routing: 'bgp', mode })
      expect(p.routing).toBe('bgp')
      expect(p.routerNs).toBe('pnlab-demo-router')
      expect(p.nodes.map((n) => n.subnet)).toEqual(['a', 'a', 'b'])
    }
    // one subnet: the router is still the top-of-rack router
    expect(planLab({ routing: 'bgp', nodes: 2, routedNodes: 0 }).routerNs).toBe('pnlab-demo-router')
    expect(planLab({}).routing).toBe('datastore')
  })

  it.each([
    [{ routing: 'bgp' as const, mode: 'vxlan' as const }, /cannot run in vxlan mode/],
    [{ routing: 'bgp' as const, datastore: 'static' as const }, /--datastore static has none/],
  ])('refuses %j', (input, msg) => {
    expect(() => planLab(input)).toThrow(msg)
  })
})

describe("the router's BIRD configuration", () => {
  it("peers with every node from its own address on the node's subnet, eBGP (AS 65000 to 64512), and BIRD parses it", () => {
    const spec = routerSpec(planLab({ routing: 'bgp' }))
    expect(spec).toMatchObject({ routerId: '192.168.77.254', asn: 65000 })
    expect(spec.neighbors).toEqual([
      { name: 'node1', address: '192.168.77.1', asn: 64512, local: '192.168.77.254' },
      { name: 'node2', address: '192.168.77.2', asn: 64512, local: '192.168.77.254' },
      { name: 'node3', address: '192.168.88.3', asn: 64512, local: '192.168.88.254' },
    ])
    const conf = join(dir, 'bird.conf')
    writeFileSync(conf, renderRouterBird(spec))
    expect(() => execFileSync('bird', ['-p', '-c', conf], { stdio: 'pipe' })).not.toThrow()
  })
})
