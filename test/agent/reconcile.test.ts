// The reconcile loop without a kernel: which desired routes are kept (origin
// priority, overlaps, the node's own CIDR and IP, encapsulation the mode
// allows), and how change events are coalesced into runs.
import { describe, expect, it } from 'vitest'
import { Reconciler, peerToRoute, selectRoutes, type DesiredRoute } from '../../src/agent/reconcile.js'
import { createLogger } from '../../src/agent/log.js'
import { parseCidr } from '../../src/util/ipv4.js'
import type { RouteSpec } from '../../src/services/routes.js'

const own = { name: 'n1', nodeIp: '192.168.77.1', podCidr: '10.244.1.0/24' }
const subnets = [parseCidr('192.168.77.0/24')]
const r = (cidr: string, nodeIp: string, origin: DesiredRoute['origin'] = 'datastore', encap?: DesiredRoute['encap']): DesiredRoute => ({
  cidr,
  nodeIp,
  origin,
  ...(encap ? { encap } : {}),
})
const quiet = createLogger('text', { write: () => {} })

describe('selectRoutes', () => {
  it('keeps disjoint peer routes', () => {
    const { keep, rejected } = selectRoutes([r('10.244.2.0/24', '192.168.77.2'), r('10.244.3.0/24', '192.168.77.3')], own, 'auto', subnets)
    expect(keep.map((k) => k.cidr)).toEqual(['10.244.2.0/24', '10.244.3.0/24'])
    expect(rejected).toEqual([])
  })

  it("leaves out the node's own CIDR, its own IP and malformed CIDRs", () => {
    const { keep, rejected } = selectRoutes(
      [r('10.244.1.0/25', '192.168.77.9'), r('10.244.9.0/24', '192.168.77.1'), r('10.244.2.1/24', '192.168.77.2')],
      own,
      'auto',
      subnets,
    )
    expect(keep).toEqual([])
    expect(rejected.map((x) => x.reason)).toEqual([
      "overlaps this node's pod CIDR 10.244.1.0/24",
      "the route's node IP is this node's",
      'invalid CIDR "10.244.2.1/24": host bits are set',
    ])
  })

  it('lets a static route win over a datastore route, and a datastore route over BGP', () => {
    const { keep, rejected } = selectRoutes(
      [
        r('10.244.2.0/24', '192.168.77.2', 'bgp'),
        r('10.244.2.0/23', '192.168.77.3', 'datastore'),
        r('10.244.3.0/24', '192.168.77.4', 'static'),
      ],
      own,
      'auto',
      subnets,
    )
    // the /23 loses to the static /24 inside it; the BGP /24 then clashes with nothing kept
    expect(keep.map((k) => `${k.origin} ${k.cidr}`)).toEqual(['static 10.244.3.0/24', 'bgp 10.244.2.0/24'])
    expect(rejected.map((x) => `${x.origin} ${x.cidr}: ${x.reason}`)).toEqual([
      'datastore 10.244.2.0/23: overlaps 10.244.3.0/24 (static, node 192.168.77.4)',
    ])
    const both = selectRoutes([r('10.244.2.0/24', '192.168.77.2', 'bgp'), r('10.244.2.0/24', '192.168.77.3')], own, 'auto', subnets)
    expect(both.keep.map((k) => `${k.origin} ${k.nodeIp}`)).toEqual(['datastore 192.168.77.3'])
  })

  it('within one origin keeps the first of two overlapping routes and says so', () => {
    const { keep, rejected } = selectRoutes([r('10.244.2.0/24', '192.168.77.2'), r('10.244.2.0/24', '192.168.77.3')], own, 'auto', subnets)
    expect(keep).toHaveLength(1)
    expect(rejected[0]!.reason).toMatch(/^overlaps 10.244.2.0\/24/)
  })

  it('leaves out a direct route to a node outside the device subnets in direct mode, and keeps it in auto', () => {
    const peer = [r('10.244.5.0/24', '192.168.88.5')]
    expect(selectRoutes(peer, own, 'direct', subnets).rejected[0]!.reason).toMatch(/cannot be reached directly/)
    expect(selectRoutes(peer, own, 'auto', subnets).keep).toHaveLength(1)
  })

  it('sends VXLAN to a VXLAN-only peer unless this node is direct-only', () => {
    const p = { name: 'n2', nodeIp: '192.168.77.2', podCidr: '10.244.2.0/24', mode: 'vxlan' as const }
    expect(peerToRoute(p, 'auto').encap).toBe('vxlan')
    expect(peerToRoute(p, 'direct').encap).toBeUndefined()
    expect(peerToRoute({ ...p, mode: 'direct' }, 'auto').encap).toBeUndefined()
  })
})

describe('Reconciler', () => {
  function make() {
    const calls: RouteSpec[][] = []
    const rec = new Reconciler({
      pinDir: '/sys/fs/bpf/unused',
      own,
      mode: 'auto',
      device: 'lo',
      log: quiet,
      debounceMs: 5,
      sync: (specs) => {
        calls.push([...specs])
        return { added: specs.length, changed: 0, removed: 0, unchanged: 0 }
      },
    })
    return { rec, calls }
  }

  it('merges every route source into one sync', () => {
    const { rec, calls } = make()
    rec.addRouteSource('datastore', () => [r('10.244.2.0/24', '192.168.77.2')])
    rec.addRouteSource('bgp', () => [r('10.244.3.0/24', '192.168.77.3', 'bgp')])
    const res = rec.runNow()
    expect(calls[0]!.map((s) => s.cidr)).toEqual(['10.244.2.0/24', '10.244.3.0/24'])
    expect(res.byOrigin).toEqual({ datastore: 1, bgp: 1 })
  })

  it('coalesces a burst of triggers into one run', async () => {
    const { rec, calls } = make()
    rec.addRouteSource('datastore', () => [])
    for (let i = 0; i < 100; i++) rec.trigger('datastore')
    await new Promise((res) => setTimeout(res, 50))
    expect(calls).toHaveLength(1)
    rec.trigger('bgp')
    await new Promise((res) => setTimeout(res, 50))
    expect(calls).toHaveLength(2)
    expect(rec.last!.trigger).toBe('bgp')
    rec.stop()
  })

  it('records a failed sync and changes nothing else', () => {
    const errors: string[] = []
    const rec = new Reconciler({
      pinDir: '/x',
      own,
      mode: 'auto',
      device: 'lo',
      log: quiet,
      onError: (e) => errors.push(e.message),
      sync: () => {
        throw new Error('map full')
      },
    })
    expect(() => rec.runNow('start')).toThrow('map full')
    expect(rec.lastError?.message).toBe('map full')
    expect(errors).toEqual(['map full'])
  })

  it('names a route source that throws', () => {
    const { rec } = make()
    rec.addRouteSource('bgp', () => {
      throw new Error('bird socket gone')
    })
    expect(() => rec.runNow()).toThrow('route source bgp: bird socket gone')
  })
})
