// diffKernelRoutes: which of our kernel routes a routes sync writes. Only
// the missing, different and stale ones; other owners' routes and the CIDRs
// the caller does not manage (the pods' /32s) are never touched.
import { describe, expect, it } from 'vitest'
import { diffKernelRoutes, type TableRoute } from '../../src/datapath/route-table.js'
import { peerRoute, ROUTE_PROTO } from '../../src/datapath/netdev.js'

const ifindex = (dev: string) => ({ eth0: 2, podnet_vxlan: 9 })[dev]
const direct = (cidr: string, gw: string) => peerRoute(cidr, gw, false, 'eth0', '192.168.77.1')
const kernel = (cidr: string, o: Partial<TableRoute> = {}): TableRoute => ({
  cidr,
  table: 254,
  protocol: ROUTE_PROTO,
  type: 1,
  scope: 0,
  oif: 2,
  prefsrc: '192.168.77.1',
  ...o,
})
const notPods = (cidr: string) => !cidr.startsWith('10.244.1.')

describe('diffKernelRoutes', () => {
  it('writes nothing when every wanted route is there as wanted', () => {
    const d = diffKernelRoutes(
      [direct('10.244.2.0/24', '192.168.77.2')],
      [kernel('10.244.2.0/24', { gateway: '192.168.77.2' })],
      notPods,
      ifindex,
    )
    expect(d).toEqual({ replace: [], remove: [], unchanged: 1 })
  })

  it('replaces a route that is missing or differs in gateway, device, source, scope or type', () => {
    const want = ['2', '3', '4', '5', '6', '7', '8'].map((i) => direct(`10.244.${i}.0/24`, `192.168.77.${i}`))
    const d = diffKernelRoutes(
      want,
      [
        kernel('10.244.3.0/24', { gateway: '192.168.77.99' }),
        kernel('10.244.4.0/24', { gateway: '192.168.77.4', oif: 9 }),
        kernel('10.244.5.0/24', { gateway: '192.168.77.5', prefsrc: undefined }),
        kernel('10.244.6.0/24', { gateway: '192.168.77.6', scope: 253 }),
        kernel('10.244.7.0/24', { gateway: '192.168.77.7', type: 6 }),
        kernel('10.244.8.0/24', { gateway: '192.168.77.8' }),
      ],
      notPods,
      ifindex,
    )
    expect(d.replace.map((r) => r.dst)).toEqual([
      '10.244.2.0/24',
      '10.244.3.0/24',
      '10.244.4.0/24',
      '10.244.5.0/24',
      '10.244.6.0/24',
      '10.244.7.0/24',
    ])
    expect(d.unchanged).toBe(1)
  })

  it('compares a VXLAN route by its device and link scope', () => {
    const vx = peerRoute('10.244.2.0/24', '192.168.77.2', true, 'eth0', '192.168.77.1')
    expect(diffKernelRoutes([vx], [kernel('10.244.2.0/24', { oif: 9, scope: 253 })], notPods, ifindex).unchanged).toBe(1)
    expect(diffKernelRoutes([vx], [kernel('10.244.2.0/24', { oif: 2, scope: 253 })], notPods, ifindex).replace).toHaveLength(1)
  })

  it("removes stale routes of ours only: not other owners', not the unmanaged pod routes", () => {
    const d = diffKernelRoutes(
      [],
      [
        kernel('10.244.9.0/24', { gateway: '192.168.77.9' }),
        kernel('10.244.1.10/32', { scope: 253 }),
        kernel('10.99.0.0/24', { protocol: 4, gateway: '192.168.77.9' }),
      ],
      notPods,
      ifindex,
    )
    expect(d).toEqual({ replace: [], remove: ['10.244.9.0/24'], unchanged: 0 })
  })

  it('replaces a route whose device is gone (the write then reports it)', () => {
    const d = diffKernelRoutes(
      [direct('10.244.2.0/24', '192.168.77.2')],
      [kernel('10.244.2.0/24', { gateway: '192.168.77.2' })],
      notPods,
      () => undefined,
    )
    expect(d.replace).toHaveLength(1)
  })
})
