// Which encapsulation a route gets, and which subnets a device's addresses
// span: pure decisions, no root needed.
import { describe, expect, it } from 'vitest'
import { resolveEncap, subnetsOf } from '../../src/services/encap.js'
import { UserError } from '../../src/errors.js'
import { cidrsOverlap, parseCidr } from '../../src/util/ipv4.js'

const subnets = subnetsOf([{ local: '192.168.77.1', prefixlen: 24 }])

describe('subnetsOf', () => {
  it('turns addresses into their networks', () => {
    expect(subnetsOf([{ local: '10.1.2.3', prefixlen: 16 }]).map((s) => `${s.addr}/${s.len}`)).toEqual(['10.1.0.0/16'])
  })
})

describe('resolveEncap', () => {
  it.each([
    // request, node mode, peer node IP, VXLAN?
    ['default', 'direct', '192.168.77.2', false],
    ['default', 'vxlan', '192.168.77.2', true],
    ['default', 'auto', '192.168.77.2', false],
    ['default', 'auto', '192.168.88.2', true],
    ['auto', 'vxlan', '192.168.77.2', false],
    ['auto', 'vxlan', '192.168.88.2', true],
    ['vxlan', 'auto', '192.168.77.2', true],
    ['none', 'vxlan', '192.168.77.2', false],
  ] as const)('%s in %s mode to %s → vxlan=%s', (req, mode, peer, want) => {
    expect(resolveEncap(req, mode, peer, subnets, '10.244.2.0/24')).toBe(want)
  })

  it('refuses VXLAN on a node attached in direct mode', () => {
    expect(() => resolveEncap('vxlan', 'direct', '192.168.77.2', subnets, '10.244.2.0/24')).toThrow(UserError)
    expect(() => resolveEncap('vxlan', 'direct', '192.168.77.2', subnets, '10.244.2.0/24')).toThrow(/direct mode/)
  })

  it('refuses a direct route to a peer off the device subnets, naming them', () => {
    expect(() => resolveEncap('none', 'auto', '192.168.88.2', subnets, '10.244.2.0/24')).toThrow(
      /not in a subnet of the node device \(192\.168\.77\.0\/24\)/,
    )
    expect(() => resolveEncap('default', 'direct', '10.0.0.1', [], '10.244.2.0/24')).toThrow(/no IPv4 address/)
  })
})

describe('CIDR overlap', () => {
  it.each([
    ['10.244.0.0/16', '10.244.1.0/24', true],
    ['10.244.1.0/24', '10.244.1.128/25', true],
    ['10.244.1.0/24', '10.244.2.0/24', false],
    ['0.0.0.0/0', '1.2.3.4/32', true],
    ['10.244.1.0/25', '10.244.1.128/25', false],
  ])('%s and %s overlap: %s', (a, b, want) => {
    expect(cidrsOverlap(parseCidr(a), parseCidr(b))).toBe(want)
    expect(cidrsOverlap(parseCidr(b), parseCidr(a))).toBe(want)
  })
})
