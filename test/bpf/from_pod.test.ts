// SPDX-License-Identifier: Apache-2.0
// pn_from_pod (tc ingress of a pod's host veth), packet by packet.

import { describe, expect, it } from 'vitest'
import { Dir, MONITOR_F_TRACE, Reason } from '../../src/datapath/abi.js'
import {
  type BpfHarness,
  DIRECT_ONLY_CONFIG,
  OTHER_VXLAN_CONFIG,
  TC_ACT_OK,
  TC_ACT_REDIRECT,
  TC_ACT_SHOT,
  TEST_CONFIG,
  type CountedRun,
  TC_ACT_UNSPEC,
} from '../support/bpf-harness.js'
import {
  BROADCAST_MAC,
  ETH_HLEN,
  ETH_P_ARP,
  ETH_P_IP,
  ETH_P_IPV6,
  IPPROTO_GRE,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  arp,
  arpFrame,
  eth,
  headerBoundaries,
  icmp,
  ipv4,
  ipv4Frame,
  l4ChecksumValid,
  parseArp,
  parseEth,
  parseIpv4,
  parseIpv4Frame,
  parseVxlanFrame,
  payloadBytes,
  type L4Kind,
} from '../support/packet.js'
import {
  DIRECT_PEER,
  FROM_A,
  GATEWAY_IP,
  POD_A,
  POD_B,
  VXLAN_DPORT,
  VXLAN_PEER,
  VXLAN_SPORT_MAX,
  VXLAN_SPORT_MIN,
  expectEncapsulated,
  expectMacs,
  expectTtlDecremented,
  expectUntouched,
  useNodeHarnesses,
  summary,
  withTtlDecremented,
} from './net.js'

let h: BpfHarness
let direct: BpfHarness
let other: BpfHarness
useNodeHarnesses('fromPod', 'from-pod', (hs) => ({ h, direct, other } = hs))

const fromA = (o: Partial<Parameters<typeof ipv4Frame>[0]> & { dst: string }) => ipv4Frame({ ...FROM_A, src: POD_A.ip, ...o })

describe('pn_from_pod: to a pod on this node', () => {
  it.each<L4Kind>(['udp', 'tcp', 'icmp'])(
    'redirects a %s packet into the destination pod with MACs rewritten and TTL decremented',
    (l4) => {
      const p = fromA({ dst: POD_B.ip, l4, ttl: 64 })
      const d = h.explain('fromPod', p)
      expect(summary(d)).toEqual({ verdict: TC_ACT_REDIRECT, reason: 'FWD_LOCAL', target: POD_B.ifindex, nodeIp: '0.0.0.0', vni: 0 })
      expectMacs(d, POD_B.mac, POD_B.hostMac)
      expectTtlDecremented(d, p)
      expect(parseIpv4Frame(d.data).ip.ttl).toBe(63)
      expect(l4ChecksumValid(parseIpv4Frame(d.data).ip)).toBe(true)
    },
  )

  it('keeps the header checksum right for every TTL from 2 to 255', () => {
    for (let ttl = 2; ttl <= 255; ttl++) {
      const p = fromA({ dst: POD_B.ip, ttl, id: ttl * 257 })
      const d = h.explain('fromPod', p)
      expect(d.reasonName).toBe('FWD_LOCAL')
      expectTtlDecremented(d, p)
    }
  })

  it('keeps the header checksum right when the incremental update carries around', () => {
    // Search ids so that the stored checksum is near 0xffff / 0x0000 and
    // the +0x0100 update wraps (RFC 1624's corner cases).
    let tried = 0
    for (let id = 0; id < 0x10000 && tried < 64; id++) {
      const p = fromA({ dst: POD_B.ip, ttl: 64, id })
      const c = p.readUInt16BE(ETH_HLEN + 10)
      if (c < 0xfe00 && c > 0x0100) continue
      tried++
      const d = h.explain('fromPod', p)
      expectTtlDecremented(d, p)
    }
    expect(tried).toBeGreaterThan(0)
  })

  it('hands a packet with TTL 1 for a local pod to the stack untouched, which sends time exceeded', () => {
    const p = fromA({ dst: POD_B.ip, ttl: 1 })
    const d = h.explain('fromPod', p)
    expect(summary(d)).toEqual({ verdict: TC_ACT_OK, reason: 'FWD_STACK_TTL', target: 0, nodeIp: '0.0.0.0', vni: 0 })
    expectUntouched(d, p)
  })

  it('hands a packet with TTL 0 for a local pod to the stack', () => {
    const d = h.explain('fromPod', fromA({ dst: POD_B.ip, ttl: 0 }))
    expect(d.reasonName).toBe('FWD_STACK_TTL')
  })

  it('redirects a packet with TTL 2 to a local pod, which receives TTL 1', () => {
    const d = h.explain('fromPod', fromA({ dst: POD_B.ip, ttl: 2 }))
    expect(d.reasonName).toBe('FWD_LOCAL')
    expect(parseIpv4Frame(d.data).ip.ttl).toBe(1)
  })

  it('delivers a packet to the sending pod itself (hairpin) like any local pod', () => {
    const d = h.explain('fromPod', fromA({ dst: POD_A.ip }))
    expect(summary(d)).toMatchObject({ verdict: TC_ACT_REDIRECT, reason: 'FWD_LOCAL', target: POD_A.ifindex })
    expectMacs(d, POD_A.mac, POD_A.hostMac)
  })

  it('forwards a packet with IP options, keeping the options and a valid checksum', () => {
    const options = Buffer.from([0x07, 0x07, 0x04, 0, 0, 0, 0, 0x01]) // record route (1 slot) + NOP
    const p = fromA({ dst: POD_B.ip, options, l4: 'tcp' })
    expect(parseIpv4Frame(p).ip.ihl).toBe(7)
    const d = h.explain('fromPod', p)
    expect(d.reasonName).toBe('FWD_LOCAL')
    expectTtlDecremented(d, p)
    expect(parseIpv4Frame(d.data).ip.options.equals(parseIpv4Frame(p).ip.options)).toBe(true)
  })

  it('forwards a packet with the maximum 40 bytes of IP options', () => {
    const p = fromA({ dst: POD_B.ip, options: Buffer.alloc(40, 0x01) })
    expect(parseIpv4Frame(p).ip.ihl).toBe(15)
    const d = h.explain('fromPod', p)
    expect(d.reasonName).toBe('FWD_LOCAL')
    expectTtlDecremented(d, p)
  })

  it.each([
    ['a first fragment', { mf: true, fragOffset: 0 }],
    ['a middle fragment', { mf: true, fragOffset: 185 }],
    ['a last fragment', { mf: false, fragOffset: 370 }],
  ])('forwards %s to a local pod', (_n, frag) => {
    const p = fromA({ dst: POD_B.ip, ...frag, payloadLen: 64 })
    const d = h.explain('fromPod', p)
    expect(d.reasonName).toBe('FWD_LOCAL')
    expectTtlDecremented(d, p)
  })

  it('forwards a packet whose L4 header is cut short but whose IP header is consistent', () => {
    const p = eth(
      { src: FROM_A.ethSrc, dst: FROM_A.ethDst, type: ETH_P_IP },
      ipv4({ src: POD_A.ip, dst: POD_B.ip, proto: IPPROTO_TCP }, Buffer.from([1, 2, 3])),
    )
    const d = h.explain('fromPod', p)
    expect(d.reasonName).toBe('FWD_LOCAL')
  })

  it('forwards a frame with Ethernet padding after the IP packet', () => {
    const p = Buffer.concat([fromA({ dst: POD_B.ip, payloadLen: 0 }), Buffer.alloc(18, 0xee)])
    const d = h.explain('fromPod', p)
    expect(d.reasonName).toBe('FWD_LOCAL')
    expectTtlDecremented(d, p)
  })

  it('forwards a protocol it does not parse (GRE) by its IP header alone', () => {
    const p = fromA({ dst: POD_B.ip, proto: IPPROTO_GRE })
    expect(h.explain('fromPod', p).reasonName).toBe('FWD_LOCAL')
  })
})

describe('pn_from_pod: anti-spoofing', () => {
  it('drops a packet whose source IP is not a pod on this node', () => {
    const p = ipv4Frame({ ...FROM_A, src: '10.1.0.99', dst: POD_B.ip })
    expect(summary(h.explain('fromPod', p))).toEqual({
      verdict: TC_ACT_SHOT,
      reason: 'DROP_SPOOFED_SRC',
      target: 0,
      nodeIp: '0.0.0.0',
      vni: 0,
    })
  })

  it("drops a packet whose source IP is another local pod's, arriving on the wrong veth", () => {
    const p = ipv4Frame({ ...FROM_A, src: POD_B.ip, dst: DIRECT_PEER.pod })
    expect(h.explain('fromPod', p).reasonName).toBe('DROP_SPOOFED_SRC')
  })

  it('drops a spoofed packet even when it is bound for the stack', () => {
    const p = ipv4Frame({ ...FROM_A, src: '8.8.8.8', dst: TEST_CONFIG.nodeIp })
    expect(h.explain('fromPod', p).reasonName).toBe('DROP_SPOOFED_SRC')
  })

  it('accepts the same packet when the pod is registered on the veth it arrives on', () => {
    const p = ipv4Frame({ ...FROM_A, src: POD_B.ip, dst: POD_A.ip })
    h.addEndpoint(POD_B.ip, 1, POD_B.mac, POD_B.hostMac)
    expect(h.explain('fromPod', p).reasonName).toBe('FWD_LOCAL')
  })
})

describe('pn_from_pod: to a peer node', () => {
  it('sends a packet for a directly routed peer out the device via redirect_neigh to the peer node IP', () => {
    const p = fromA({ dst: DIRECT_PEER.pod, l4: 'tcp' })
    const d = h.explain('fromPod', p)
    expect(summary(d)).toEqual({
      verdict: TC_ACT_REDIRECT,
      reason: 'FWD_DIRECT',
      target: TEST_CONFIG.deviceIfindex,
      nodeIp: DIRECT_PEER.nodeIp,
      vni: 0,
    })
    expectTtlDecremented(d, p)
    // redirect_neigh fills in the MACs; the program leaves them alone.
    expectMacs(d, POD_A.hostMac, POD_A.mac)
  })

  it('encapsulates a packet for a VXLAN peer itself and sends it out the device via redirect_neigh, not to the VXLAN device', () => {
    const p = fromA({ dst: VXLAN_PEER.pod, l4: 'udp' })
    const d = h.explain('fromPod', p)
    expect(summary(d)).toEqual({
      verdict: TC_ACT_REDIRECT,
      reason: 'FWD_VXLAN',
      target: TEST_CONFIG.deviceIfindex,
      nodeIp: VXLAN_PEER.nodeIp,
      vni: TEST_CONFIG.vni,
    })
    expectEncapsulated(d, p, VXLAN_PEER.nodeIp)
  })

  it('picks the longest matching route prefix', () => {
    h.addRoute('10.3.0.0/16', '192.168.1.40', false)
    h.addRoute('10.3.0.128/25', '192.168.1.50', false)
    expect(summary(h.explain('fromPod', fromA({ dst: '10.3.0.7' })))).toMatchObject({ reason: 'FWD_VXLAN', nodeIp: VXLAN_PEER.nodeIp })
    expect(summary(h.explain('fromPod', fromA({ dst: '10.3.0.200' })))).toMatchObject({ reason: 'FWD_DIRECT', nodeIp: '192.168.1.50' })
    expect(summary(h.explain('fromPod', fromA({ dst: '10.3.9.1' })))).toMatchObject({ reason: 'FWD_DIRECT', nodeIp: '192.168.1.40' })
  })

  it('prefers a local endpoint over a route covering it', () => {
    h.addRoute('10.1.0.0/24', '192.168.1.99', true)
    expect(h.explain('fromPod', fromA({ dst: POD_B.ip })).reasonName).toBe('FWD_LOCAL')
  })

  it.each([
    ['direct', DIRECT_PEER],
    ['VXLAN', VXLAN_PEER],
  ])('hands a %s-routed packet with TTL 1 to the stack untouched', (_n, peer) => {
    const p = fromA({ dst: peer.pod, ttl: 1 })
    const d = h.explain('fromPod', p)
    expect(summary(d)).toEqual({ verdict: TC_ACT_OK, reason: 'FWD_STACK_TTL', target: 0, nodeIp: peer.nodeIp, vni: 0 })
    expectUntouched(d, p)
  })

  it('sends a directly routed packet of exactly the device MTU and hands one byte more to the stack', () => {
    const mtu = TEST_CONFIG.deviceMtu
    const fits = fromA({ dst: DIRECT_PEER.pod, frameLen: ETH_HLEN + mtu, df: true })
    expect(h.explain('fromPod', fits).reasonName).toBe('FWD_DIRECT')
    const big = fromA({ dst: DIRECT_PEER.pod, frameLen: ETH_HLEN + mtu + 1, df: true })
    const d = h.explain('fromPod', big)
    expect(summary(d)).toEqual({ verdict: TC_ACT_OK, reason: 'FWD_STACK_MTU', target: 0, nodeIp: DIRECT_PEER.nodeIp, vni: 0 })
    expectUntouched(d, big)
  })

  it('uses the overlay MTU (device MTU − 50) for a VXLAN route', () => {
    const mtu = TEST_CONFIG.overlayMtu
    expect(h.explain('fromPod', fromA({ dst: VXLAN_PEER.pod, frameLen: ETH_HLEN + mtu })).reasonName).toBe('FWD_VXLAN')
    const big = fromA({ dst: VXLAN_PEER.pod, frameLen: ETH_HLEN + mtu + 1 })
    const d = h.explain('fromPod', big)
    expect(summary(d)).toEqual({ verdict: TC_ACT_OK, reason: 'FWD_STACK_MTU', target: 0, nodeIp: VXLAN_PEER.nodeIp, vni: 0 })
    expectUntouched(d, big)
    // The same size fits a direct route.
    expect(h.explain('fromPod', fromA({ dst: DIRECT_PEER.pod, frameLen: ETH_HLEN + mtu + 1 })).reasonName).toBe('FWD_DIRECT')
  })

  it('does not apply a path MTU to a local pod', () => {
    const p = fromA({ dst: POD_B.ip, frameLen: ETH_HLEN + TEST_CONFIG.deviceMtu + 200 })
    expect(h.explain('fromPod', p).reasonName).toBe('FWD_LOCAL')
  })

  it('checks TTL before MTU', () => {
    const p = fromA({ dst: DIRECT_PEER.pod, ttl: 1, frameLen: ETH_HLEN + TEST_CONFIG.deviceMtu + 100 })
    expect(h.explain('fromPod', p).reasonName).toBe('FWD_STACK_TTL')
  })

  it('measures a TCP GSO packet by its segments: fits when headers + gso_size fit the path MTU', () => {
    // 20 IP + 20 TCP + gso_size; the skb itself is bigger than the MTU.
    const p = fromA({ dst: VXLAN_PEER.pod, l4: 'tcp', frameLen: 3000 })
    const fit = TEST_CONFIG.overlayMtu - 40
    // Past the MTU check a test run's GSO skb (no gso_type) cannot be grown:
    // FWD_STACK_ENCAP says the segments fit, FWD_STACK_MTU that they do not.
    expect(h.explain('fromPod', p, { gsoSize: fit, gsoSegs: 3 }).reasonName).toBe('FWD_STACK_ENCAP')
    expect(h.explain('fromPod', p, { gsoSize: fit + 1, gsoSegs: 3 }).reasonName).toBe('FWD_STACK_MTU')
    expect(h.explain('fromPod', p).reasonName).toBe('FWD_STACK_MTU')
  })

  it('counts TCP options in the GSO segment size', () => {
    const p = ipv4Frame({ ...FROM_A, src: POD_A.ip, dst: DIRECT_PEER.pod, l4: 'tcp', frameLen: 3000 })
    // Rebuild with a 32-byte TCP header (12 bytes of options).
    const ipStart = ETH_HLEN
    p[ipStart + 20 + 12] = 8 << 4
    const fit = TEST_CONFIG.deviceMtu - 20 - 32
    expect(h.explain('fromPod', p, { gsoSize: fit }).reasonName).toBe('FWD_DIRECT')
    expect(h.explain('fromPod', p, { gsoSize: fit + 1 }).reasonName).toBe('FWD_STACK_MTU')
  })

  it('measures a UDP GSO packet as 8 bytes of header plus gso_size', () => {
    const p = fromA({ dst: DIRECT_PEER.pod, l4: 'udp', frameLen: 3000 })
    const fit = TEST_CONFIG.deviceMtu - 28
    expect(h.explain('fromPod', p, { gsoSize: fit }).reasonName).toBe('FWD_DIRECT')
    expect(h.explain('fromPod', p, { gsoSize: fit + 1 }).reasonName).toBe('FWD_STACK_MTU')
  })

  it('measures a GSO packet of another protocol as IP header plus gso_size', () => {
    const p = fromA({ dst: DIRECT_PEER.pod, proto: IPPROTO_GRE, frameLen: 3000 })
    const fit = TEST_CONFIG.deviceMtu - 20
    expect(h.explain('fromPod', p, { gsoSize: fit }).reasonName).toBe('FWD_DIRECT')
    expect(h.explain('fromPod', p, { gsoSize: fit + 1 }).reasonName).toBe('FWD_STACK_MTU')
  })

  it('falls back to the skb length for a GSO TCP packet whose TCP header is cut short', () => {
    const short = (len: number) =>
      eth(
        { src: FROM_A.ethSrc, dst: FROM_A.ethDst, type: ETH_P_IP },
        ipv4({ src: POD_A.ip, dst: DIRECT_PEER.pod, proto: IPPROTO_TCP }, Buffer.alloc(len)),
      )
    expect(h.explain('fromPod', short(10), { gsoSize: 5000 }).reasonName).toBe('FWD_DIRECT')
  })

  it('forwards fragments to a peer node like whole packets', () => {
    for (const frag of [{ mf: true }, { mf: true, fragOffset: 100 }, { fragOffset: 200 }]) {
      const p = fromA({ dst: VXLAN_PEER.pod, ...frag })
      const d = h.explain('fromPod', p)
      expect(d.reasonName).toBe('FWD_VXLAN')
      expectEncapsulated(d, p, VXLAN_PEER.nodeIp)
      const q = fromA({ dst: DIRECT_PEER.pod, ...frag })
      const e = h.explain('fromPod', q)
      expect(e.reasonName).toBe('FWD_DIRECT')
      expectTtlDecremented(e, q)
    }
  })

  it('forwards a packet with IP options to a peer node', () => {
    const p = fromA({ dst: DIRECT_PEER.pod, options: Buffer.from([0x01, 0x01, 0x01, 0x00]) })
    const d = h.explain('fromPod', p)
    expect(d.reasonName).toBe('FWD_DIRECT')
    expectTtlDecremented(d, p)
  })

  it('drops a packet for a VXLAN route when the node has no VXLAN device', () => {
    const d = direct.explain('fromPod', fromA({ dst: VXLAN_PEER.pod }))
    expect(summary(d)).toEqual({ verdict: TC_ACT_SHOT, reason: 'DROP_NO_TUNNEL', target: 0, nodeIp: VXLAN_PEER.nodeIp, vni: 0 })
  })

  it('still routes directly when the node has no VXLAN device', () => {
    expect(summary(direct.explain('fromPod', fromA({ dst: DIRECT_PEER.pod })))).toMatchObject({
      verdict: TC_ACT_REDIRECT,
      reason: 'FWD_DIRECT',
      target: DIRECT_ONLY_CONFIG.deviceIfindex,
    })
  })

  it('hands an oversize VXLAN-routed packet to the stack before noticing there is no VXLAN device', () => {
    const d = direct.explain('fromPod', fromA({ dst: VXLAN_PEER.pod, frameLen: ETH_HLEN + 1451 }))
    expect(d.reasonName).toBe('FWD_STACK_MTU')
  })
})

describe('pn_from_pod: VXLAN encapsulation', () => {
  /** The Internet checksum of a 20-byte header, written out here rather than taken from the packet builder. */
  const headerChecksum = (hdr: Buffer) => {
    let sum = 0
    for (let i = 0; i < 20; i += 2) if (i !== 10) sum += hdr.readUInt16BE(i)
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16)
    return ~sum & 0xffff
  }

  it('writes outer IPv4, UDP, VXLAN and the inner Ethernet header field by field in front of the pod packet', () => {
    const p = fromA({ dst: VXLAN_PEER.pod, l4: 'tcp', ttl: 64, tos: 0x02, id: 0x4321, df: true, sport: 40001, dport: 443 })
    const d = h.explain('fromPod', p)
    expect(summary(d)).toEqual({
      verdict: TC_ACT_REDIRECT,
      reason: 'FWD_VXLAN',
      target: TEST_CONFIG.deviceIfindex,
      nodeIp: VXLAN_PEER.nodeIp,
      vni: TEST_CONFIG.vni,
    })
    const out = d.data
    expect(out.length).toBe(p.length + 50)

    // Outer Ethernet: the frame's own; redirect_neigh fills in the MACs.
    expect(out.subarray(0, ETH_HLEN).equals(p.subarray(0, ETH_HLEN))).toBe(true)

    const { ip, udp, vxlan, inner } = parseVxlanFrame(out)
    expect({
      version: ip.version,
      ihl: ip.ihl,
      tos: ip.tos,
      totLen: ip.totLen,
      id: ip.id,
      df: ip.df,
      mf: ip.mf,
      fragOffset: ip.fragOffset,
      ttl: ip.ttl,
      proto: ip.proto,
      src: ip.src,
      dst: ip.dst,
    }).toEqual({
      version: 4,
      ihl: 5,
      tos: 0x02, // ECT(0), copied
      totLen: p.length - ETH_HLEN + 50,
      id: 0,
      df: true,
      mf: false,
      fragOffset: 0,
      ttl: 64,
      proto: IPPROTO_UDP,
      src: TEST_CONFIG.nodeIp,
      dst: VXLAN_PEER.nodeIp,
    })
    expect(out.readUInt16BE(ETH_HLEN + 6)).toBe(0x4000) // DF alone
    expect(ip.checksum).toBe(headerChecksum(out.subarray(ETH_HLEN, ETH_HLEN + 20)))

    expect(udp.sport).toBeGreaterThanOrEqual(VXLAN_SPORT_MIN)
    expect(udp.sport).toBeLessThanOrEqual(VXLAN_SPORT_MAX)
    expect({ dport: udp.dport, len: udp.len, checksum: udp.checksum }).toEqual({
      dport: VXLAN_DPORT,
      len: p.length - ETH_HLEN + 50 - 20,
      checksum: 0,
    })

    // I flag, VNI 4242 = 0x001092, reserved bytes 0
    expect(out.subarray(ETH_HLEN + 28, ETH_HLEN + 36).toString('hex')).toBe('0800000000109200')
    expect(vxlan).toEqual({ flags: 0x08, reserved1: 0, vni: TEST_CONFIG.vni, reserved2: 0 })

    // Inner Ethernet: a copy of the original; inner packet: TTL − 1, checksum, nothing else.
    expect(inner.subarray(0, ETH_HLEN).equals(p.subarray(0, ETH_HLEN))).toBe(true)
    const innerIp = parseIpv4(inner.subarray(ETH_HLEN))
    expect(innerIp.ttl).toBe(63)
    expect(innerIp.checksumValid).toBe(true)
    expect(inner.subarray(ETH_HLEN).equals(withTtlDecremented(p.subarray(ETH_HLEN)))).toBe(true)
    expect(l4ChecksumValid(innerIp)).toBe(true)

    expectEncapsulated(d, p, VXLAN_PEER.nodeIp)
  })

  it.each<L4Kind>(['udp', 'tcp', 'icmp'])('encapsulates a %s packet', (l4) => {
    const p = fromA({ dst: VXLAN_PEER.pod, l4 })
    expectEncapsulated(h.explain('fromPod', p), p, VXLAN_PEER.nodeIp)
  })

  it.each([
    ['Not-ECT', 0, 0],
    ['ECT(1)', 1, 1],
    ['ECT(0)', 2, 2],
    ['CE', 3, 2],
  ])('gives an inner %s packet the outer ECN field %i (CE becomes ECT(0)) and copies no DSCP', (_n, ecn, outerEcn) => {
    const p = fromA({ dst: VXLAN_PEER.pod, tos: 0xb8 | ecn })
    const d = h.explain('fromPod', p)
    const { ip, inner } = parseVxlanFrame(d.data)
    expect(ip.tos).toBe(outerEcn)
    expect(inner[ETH_HLEN + 1]).toBe(0xb8 | ecn) // the inner packet keeps its own
    expect(ip.checksumValid).toBe(true)
    expectEncapsulated(d, p, VXLAN_PEER.nodeIp)
  })

  it('takes the outer source, UDP port, VNI and device from its own config (port 4789, VNI 0xffffff)', () => {
    const p = fromA({ dst: VXLAN_PEER.pod })
    const d = other.explain('fromPod', p)
    expect(summary(d)).toEqual({
      verdict: TC_ACT_REDIRECT,
      reason: 'FWD_VXLAN',
      target: OTHER_VXLAN_CONFIG.deviceIfindex,
      nodeIp: VXLAN_PEER.nodeIp,
      vni: 0xffffff,
    })
    const { ip, udp, vxlan } = parseVxlanFrame(d.data)
    expect(udp.dport).toBe(4789)
    expect(ip.src).toBe(OTHER_VXLAN_CONFIG.nodeIp)
    expect(vxlan).toEqual({ flags: 0x08, reserved1: 0, vni: 0xffffff, reserved2: 0 })
    expectEncapsulated(d, p, VXLAN_PEER.nodeIp, OTHER_VXLAN_CONFIG)
  })

  it('keeps the UDP source port of a flow and spreads flows over 32768–60999', () => {
    const flow = (sport: number, o: Partial<Parameters<typeof ipv4Frame>[0]> = {}) =>
      fromA({ dst: VXLAN_PEER.pod, l4: 'tcp', sport, dport: 443, ...o })
    const port = (p: Buffer) => parseVxlanFrame(h.explain('fromPod', p).data).udp.sport
    const first = port(flow(40000))
    expect(port(flow(40000, { id: 7, ttl: 30, payloadLen: 300 }))).toBe(first)
    const ports = Array.from({ length: 16 }, (_, i) => port(flow(41000 + i)))
    for (const x of ports) {
      expect(x).toBeGreaterThanOrEqual(VXLAN_SPORT_MIN)
      expect(x).toBeLessThanOrEqual(VXLAN_SPORT_MAX)
    }
    expect(new Set(ports).size).toBeGreaterThan(1)
  })

  it('decrements the inner TTL with a right checksum for every TTL from 2 to 255', () => {
    for (let ttl = 2; ttl <= 255; ttl++) {
      const p = fromA({ dst: VXLAN_PEER.pod, ttl, id: ttl * 257 })
      const d = h.explain('fromPod', p)
      expect(d.reasonName).toBe('FWD_VXLAN')
      expectEncapsulated(d, p, VXLAN_PEER.nodeIp)
    }
  })

  it('encapsulates a packet with IP options, keeping them in the inner header', () => {
    const p = fromA({ dst: VXLAN_PEER.pod, l4: 'tcp', options: Buffer.from([0x07, 0x07, 0x04, 0, 0, 0, 0, 0x01]) })
    const d = h.explain('fromPod', p)
    expect(d.reasonName).toBe('FWD_VXLAN')
    expectEncapsulated(d, p, VXLAN_PEER.nodeIp)
    expect(parseIpv4(parseVxlanFrame(d.data).inner.subarray(ETH_HLEN)).ihl).toBe(7)
  })

  it('turns a packet of exactly the overlay MTU into an outer packet of exactly the device MTU', () => {
    const p = fromA({ dst: VXLAN_PEER.pod, frameLen: ETH_HLEN + TEST_CONFIG.overlayMtu, df: true })
    const d = h.explain('fromPod', p)
    expect(d.reasonName).toBe('FWD_VXLAN')
    expect(parseVxlanFrame(d.data).ip.totLen).toBe(TEST_CONFIG.deviceMtu)
    expectEncapsulated(d, p, VXLAN_PEER.nodeIp)
  })

  it('hands a GSO packet that adjust_room refuses to grow to the stack untouched, naming the peer (FWD_STACK_ENCAP)', () => {
    // A test run's GSO skb has gso_size but no gso_type, and bpf_skb_adjust_room
    // only grows TCP (or fixed-size UDP_L4) GSO skbs.
    const p = fromA({ dst: VXLAN_PEER.pod, l4: 'tcp', frameLen: 3000 })
    const d = h.explain('fromPod', p, { gsoSize: 1000, gsoSegs: 3 })
    expect(summary(d)).toEqual({ verdict: TC_ACT_OK, reason: 'FWD_STACK_ENCAP', target: 0, nodeIp: VXLAN_PEER.nodeIp, vni: 0 })
    expectUntouched(d, p)
  })

  it('still drops a GSO packet for a VXLAN route when the node has no VXLAN device', () => {
    const p = fromA({ dst: VXLAN_PEER.pod, l4: 'tcp', frameLen: 3000 })
    expect(direct.explain('fromPod', p, { gsoSize: 1000 }).reasonName).toBe('DROP_NO_TUNNEL')
  })
})

describe('pn_from_pod: to the host stack', () => {
  it.each([
    ['the node IP', TEST_CONFIG.nodeIp],
    ['an address outside every pod CIDR', '8.8.8.8'],
  ])('passes a packet for %s to the stack untouched', (_n, dst) => {
    const p = fromA({ dst })
    const d = h.explain('fromPod', p)
    expect(summary(d)).toEqual({ verdict: TC_ACT_OK, reason: 'FWD_STACK', target: 0, nodeIp: '0.0.0.0', vni: 0 })
    expectUntouched(d, p)
  })

  it('passes a packet for the stack with TTL 1 without looking at its TTL', () => {
    const p = fromA({ dst: '8.8.8.8', ttl: 1 })
    expect(h.explain('fromPod', p).reasonName).toBe('FWD_STACK')
  })
})

describe('pn_from_pod: malformed and non-IPv4 frames', () => {
  const valid = () => fromA({ dst: POD_B.ip, l4: 'tcp', options: Buffer.from([1, 1, 1, 1]) })

  it('forwards the untruncated reference packet', () => {
    expect(h.explain('fromPod', valid()).reasonName).toBe('FWD_LOCAL')
  })

  for (const { name, at } of headerBoundaries(valid())) {
    it(`drops a frame cut right after ${name} (${at} bytes), or the kernel refuses to run it`, () => {
      const d = h.explainOrRefused('fromPod', valid().subarray(0, at))
      if (d === null) expect(at).toBeLessThan(ETH_HLEN + 20)
      else expect(summary(d)).toMatchObject({ verdict: TC_ACT_SHOT, reason: 'DROP_INVALID' })
    })
  }

  it('drops a frame cut anywhere inside the IPv4 header or options', () => {
    const p = valid()
    for (let at = ETH_HLEN; at < ETH_HLEN + 24; at++) {
      const d = h.explainOrRefused('fromPod', p.subarray(0, at))
      if (d !== null) expect(d.reasonName, `cut at ${at}`).toBe('DROP_INVALID')
    }
    for (let at = ETH_HLEN + 20; at < ETH_HLEN + 24; at++) {
      expect(h.explain('fromPod', p.subarray(0, at)).reasonName, `cut at ${at}`).toBe('DROP_INVALID')
    }
  })

  it('drops a packet whose header length with options runs past the end of a 20-byte IP frame', () => {
    const p = fromA({ dst: POD_B.ip, options: Buffer.alloc(8, 1) }).subarray(0, ETH_HLEN + 20)
    expect(h.explain('fromPod', p).reasonName).toBe('DROP_INVALID')
  })

  it('cannot be given a frame shorter than an Ethernet header: the kernel refuses the test run', () => {
    expect(() => h.explain('fromPod', Buffer.alloc(13))).toThrow(/EINVAL/)
  })

  it.each([
    ['IP version 6 in an IPv4 ethertype', { version: 6 }],
    ['IP version 0', { version: 0 }],
    ['header length 4 words', { ihl: 4 }],
    ['header length 0', { ihl: 0 }],
    ['header length longer than the packet', { ihl: 15 }],
    ['total length shorter than the header', { totLen: 19 }],
    ['total length longer than the frame', { totLen: 200 }],
    ['total length 0', { totLen: 0 }],
  ])('drops a packet with %s', (_n, bad) => {
    const p = fromA({ dst: POD_B.ip, payloadLen: 0, ...bad })
    expect(summary(h.explain('fromPod', p))).toMatchObject({ verdict: TC_ACT_SHOT, reason: 'DROP_INVALID' })
  })

  it('forwards a packet with a wrong header checksum, keeping it wrong (the receiver drops it)', () => {
    const p = fromA({ dst: POD_B.ip, checksum: 0x1234 })
    const d = h.explain('fromPod', p)
    expect(d.reasonName).toBe('FWD_LOCAL')
    expect(parseIpv4Frame(d.data).ip.checksumValid).toBe(false)
  })

  it.each([
    ['IPv6', ETH_P_IPV6],
    ['LLDP', 0x88cc],
    ['RARP', 0x8035],
    ['an 802.3 length field', 0x0040],
    ['ethertype 0', 0],
  ])('drops an %s frame as unsupported', (_n, type) => {
    const p = eth({ src: POD_A.mac, dst: POD_A.hostMac, type }, payloadBytes(46))
    expect(summary(h.explain('fromPod', p))).toEqual({
      verdict: TC_ACT_SHOT,
      reason: 'DROP_UNSUPPORTED_L3',
      target: 0,
      nodeIp: '0.0.0.0',
      vni: 0,
    })
  })

  it('drops an Ethernet header with nothing after it as unsupported when it is not IPv4 or ARP', () => {
    expect(h.explain('fromPod', eth({ type: 0x88cc })).reasonName).toBe('DROP_UNSUPPORTED_L3')
  })
})

describe('pn_from_pod: ARP', () => {
  const request = (tpa: string, o: Partial<Parameters<typeof arpFrame>[0]> = {}) => arpFrame({ sha: POD_A.mac, spa: POD_A.ip, tpa, ...o })

  it.each([
    ['its gateway', GATEWAY_IP],
    ['another local pod', POD_B.ip],
    ['a remote pod', VXLAN_PEER.pod],
    ['the node IP', TEST_CONFIG.nodeIp],
  ])("answers a pod's ARP request for %s with the host veth MAC, back out the same veth", (_n, tpa) => {
    const p = request(tpa)
    const d = h.explain('fromPod', p)
    expect(summary(d)).toEqual({ verdict: TC_ACT_REDIRECT, reason: 'FWD_ARP_REPLY', target: POD_A.ifindex, nodeIp: '0.0.0.0', vni: 0 })
    const e = parseEth(d.data)
    expect({ dst: e.dst, src: e.src, type: e.type }).toEqual({ dst: POD_A.mac, src: POD_A.hostMac, type: ETH_P_ARP })
    expect(parseArp(e.payload)).toEqual({
      hrd: 1,
      pro: ETH_P_IP,
      hln: 6,
      pln: 4,
      op: 2,
      sha: POD_A.hostMac,
      spa: tpa,
      tha: POD_A.mac,
      tpa: POD_A.ip,
    })
    expect(d.data.length).toBe(p.length)
  })

  it('answers a unicast ARP request (neighbour reachability check) the same way', () => {
    const d = h.explain('fromPod', request(GATEWAY_IP, { ethDst: POD_A.hostMac, tha: POD_A.hostMac }))
    expect(d.reasonName).toBe('FWD_ARP_REPLY')
    expect(parseArp(parseEth(d.data).payload)).toMatchObject({ op: 2, tha: POD_A.mac, tpa: POD_A.ip })
  })

  it('addresses the reply to the ARP sender hardware address, not the Ethernet source', () => {
    const d = h.explain('fromPod', request(GATEWAY_IP, { ethSrc: '02:cc:cc:cc:cc:cc' }))
    expect(parseEth(d.data).dst).toBe(POD_A.mac)
  })

  it('answers an ARP request in a padded 60-byte frame and keeps the padding', () => {
    const p = Buffer.concat([request(GATEWAY_IP), Buffer.alloc(18, 0x5a)])
    const d = h.explain('fromPod', p)
    expect(d.reasonName).toBe('FWD_ARP_REPLY')
    expect(d.data.subarray(42).equals(p.subarray(42))).toBe(true)
  })

  it.each([
    ['an ARP reply', { op: 2, tha: POD_A.hostMac }, GATEWAY_IP],
    ['a gratuitous ARP (sender IP = target IP)', {}, POD_A.ip],
    ['an ARP probe (sender IP 0.0.0.0)', { spa: '0.0.0.0' }, GATEWAY_IP],
    ['an ARP op other than request or reply', { op: 3 }, GATEWAY_IP],
  ])('passes %s to the stack untouched', (_n, o, tpa) => {
    const p = request(tpa, o)
    const d = h.explain('fromPod', p)
    expect(summary(d)).toEqual({ verdict: TC_ACT_OK, reason: 'FWD_STACK', target: 0, nodeIp: '0.0.0.0', vni: 0 })
    expectUntouched(d, p)
  })

  it('drops an ARP request whose sender IP is not a pod on this node', () => {
    const d = h.explain('fromPod', request(GATEWAY_IP, { spa: '10.1.0.99' }))
    expect(summary(d)).toEqual({ verdict: TC_ACT_SHOT, reason: 'DROP_ARP_SPOOFED', target: 0, nodeIp: '0.0.0.0', vni: 0 })
  })

  it("drops an ARP request with another local pod's IP as sender, arriving on the wrong veth", () => {
    expect(h.explain('fromPod', request(GATEWAY_IP, { spa: POD_B.ip })).reasonName).toBe('DROP_ARP_SPOOFED')
  })

  it.each([
    ['hardware type not Ethernet', { hrd: 6 }],
    ['protocol type not IPv4', { pro: ETH_P_IPV6 }],
    ['hardware address length not 6', { hln: 8 }],
    ['protocol address length not 4', { pln: 16 }],
  ])('drops an ARP packet with %s as invalid ARP', (_n, bad) => {
    const d = h.explain('fromPod', request(GATEWAY_IP, bad))
    expect(summary(d)).toEqual({ verdict: TC_ACT_SHOT, reason: 'DROP_ARP_INVALID', target: 0, nodeIp: '0.0.0.0', vni: 0 })
  })

  it('drops an ARP packet cut anywhere before its end as invalid', () => {
    const p = request(GATEWAY_IP)
    for (let at = ETH_HLEN; at < p.length; at++) {
      expect(h.explain('fromPod', p.subarray(0, at)).reasonName, `cut at ${at}`).toBe('DROP_INVALID')
    }
  })

  it('builds the reply from the ARP body alone: the Ethernet header of the request does not matter', () => {
    const p = eth(
      { src: '02:00:00:00:00:99', dst: BROADCAST_MAC, type: ETH_P_ARP },
      arp({ op: 1, sha: POD_A.mac, spa: POD_A.ip, tpa: GATEWAY_IP }),
    )
    expect(parseEth(h.explain('fromPod', p).data).src).toBe(POD_A.hostMac)
  })
})

describe('pn_from_pod: counters and events', () => {
  it('leaves counters and events alone in explain mode', () => {
    const delta = h.countersDuring(() => {
      h.explain('fromPod', fromA({ dst: POD_B.ip }))
      h.explain('fromPod', ipv4Frame({ ...FROM_A, src: '1.2.3.4', dst: POD_B.ip }))
    })
    expect(delta.size).toBe(0)
    expect(h.drainEvents()).toEqual([])
  })

  it.each([
    ['a local delivery', () => fromA({ dst: POD_B.ip }), TC_ACT_REDIRECT, Reason.FWD_LOCAL],
    ['a direct route', () => fromA({ dst: DIRECT_PEER.pod }), TC_ACT_REDIRECT, Reason.FWD_DIRECT],
    ['the stack', () => fromA({ dst: '8.8.8.8' }), TC_ACT_UNSPEC, Reason.FWD_STACK],
    ['an ARP reply', () => arpFrame({ sha: POD_A.mac, spa: POD_A.ip, tpa: GATEWAY_IP }), TC_ACT_REDIRECT, Reason.FWD_ARP_REPLY],
    ['a spoofed source', () => ipv4Frame({ src: '1.1.1.1', dst: POD_B.ip }), TC_ACT_SHOT, Reason.DROP_SPOOFED_SRC],
    ['an unsupported ethertype', () => eth({ type: ETH_P_IPV6 }, payloadBytes(40)), TC_ACT_SHOT, Reason.DROP_UNSUPPORTED_L3],
  ])('counts %s once, with its bytes, under from-pod', (_n, make, verdict, reason) => {
    const p = make()
    let r = { verdict: -1 }
    const delta = h.countersDuring(() => {
      r = h.runCounted('fromPod', p)
    })
    expect(r.verdict).toBe(verdict)
    expect([...delta.values()]).toEqual([{ dir: Dir.FROM_POD, reason, packets: 1n, bytes: BigInt(p.length) }])
  })

  it('counts a VXLAN route once under from-pod, with the length after encapsulation (50 bytes more)', () => {
    const p = fromA({ dst: VXLAN_PEER.pod })
    const runs: CountedRun[] = []
    const delta = h.countersDuring(() => runs.push(h.runCounted('fromPod', p)))
    expect(runs.map((r) => [r.verdict, r.data.length])).toEqual([[TC_ACT_REDIRECT, p.length + 50]])
    expect([...delta.values()]).toEqual([{ dir: Dir.FROM_POD, reason: Reason.FWD_VXLAN, packets: 1n, bytes: BigInt(p.length + 50) }])
    expect(h.drainEvents()).toEqual([])
  })

  it('counts a packet it could not encapsulate as FWD_STACK_ENCAP, with its own length', () => {
    const p = fromA({ dst: VXLAN_PEER.pod, l4: 'tcp', frameLen: 3000 })
    const delta = h.countersDuring(() => expect(h.runCounted('fromPod', p, { gsoSize: 1000 }).verdict).toBe(TC_ACT_UNSPEC))
    expect([...delta.values()]).toEqual([{ dir: Dir.FROM_POD, reason: Reason.FWD_STACK_ENCAP, packets: 1n, bytes: BigInt(p.length) }])
  })

  it('traces an encapsulated packet with the pod addresses and ports, the device, the peer node and the encapsulated length', () => {
    h.maps.settings.monitorFlags = MONITOR_F_TRACE
    const p = fromA({ dst: VXLAN_PEER.pod, l4: 'tcp', sport: 999, dport: 80 })
    h.runCounted('fromPod', p)
    const [e, ...more] = h.drainEvents()
    expect(more).toEqual([])
    expect(e).toMatchObject({
      type: 'trace',
      reason: Reason.FWD_VXLAN,
      dir: Dir.FROM_POD,
      proto: IPPROTO_TCP,
      ifindex: 1,
      saddr: POD_A.ip,
      daddr: VXLAN_PEER.pod,
      target: TEST_CONFIG.deviceIfindex,
      nodeIp: VXLAN_PEER.nodeIp,
      len: p.length + 50,
      sport: 999,
      dport: 80,
      ethertype: ETH_P_IP,
    })
  })

  it('reports a drop as one event with addresses, ports, protocol, length and ingress ifindex', () => {
    const p = ipv4Frame({ ...FROM_A, src: '10.1.0.99', dst: VXLAN_PEER.pod, l4: 'udp', sport: 1234, dport: 5678 })
    h.runCounted('fromPod', p)
    const [e, ...more] = h.drainEvents()
    expect(more).toEqual([])
    expect(e).toMatchObject({
      type: 'drop',
      reason: Reason.DROP_SPOOFED_SRC,
      dir: Dir.FROM_POD,
      proto: IPPROTO_UDP,
      ifindex: 1,
      saddr: '10.1.0.99',
      daddr: VXLAN_PEER.pod,
      target: 0,
      len: p.length,
      sport: 1234,
      dport: 5678,
      ethertype: ETH_P_IP,
    })
    expect(e!.tsNs).toBeGreaterThan(0n)
  })

  it('reports the peer node IP of a drop for a VXLAN route without a VXLAN device', () => {
    direct.runCounted('fromPod', fromA({ dst: VXLAN_PEER.pod }))
    const [e] = direct.drainEvents()
    expect(e).toMatchObject({ type: 'drop', reason: Reason.DROP_NO_TUNNEL, target: 0, nodeIp: VXLAN_PEER.nodeIp })
  })

  it('reports the ethertype of a dropped non-IP frame and zero addresses', () => {
    h.runCounted('fromPod', eth({ type: ETH_P_IPV6 }, payloadBytes(40)))
    const [e] = h.drainEvents()
    expect(e).toMatchObject({ reason: Reason.DROP_UNSUPPORTED_L3, ethertype: ETH_P_IPV6, proto: 0, saddr: '0.0.0.0', daddr: '0.0.0.0' })
  })

  it('reports an ARP drop with the ARP sender and target IPs', () => {
    h.runCounted('fromPod', arpFrame({ sha: POD_A.mac, spa: '10.1.0.99', tpa: GATEWAY_IP }))
    const [e] = h.drainEvents()
    expect(e).toMatchObject({ reason: Reason.DROP_ARP_SPOOFED, ethertype: ETH_P_ARP, saddr: '10.1.0.99', daddr: GATEWAY_IP })
  })

  // ICMP has no ports: the event carries its type and code there, in network
  // byte order like ports (bpf/lib/ipv4.h), and monitor shows them as such
  it('reports ICMP type and code as the ports of a dropped ICMP packet', () => {
    const unreachable = icmp({ type: 3, code: 3 }, payloadBytes(28))
    h.runCounted(
      'fromPod',
      eth(
        { src: POD_A.mac, dst: POD_A.hostMac, type: ETH_P_IP },
        ipv4({ src: '10.1.0.99', dst: POD_B.ip, proto: IPPROTO_ICMP }, unreachable),
      ),
    )
    const [e] = h.drainEvents()
    expect(e).toMatchObject({ proto: IPPROTO_ICMP, sport: 3, dport: 3 })
  })

  it('does not read ports from a non-first fragment', () => {
    h.runCounted('fromPod', ipv4Frame({ ...FROM_A, src: '10.1.0.99', dst: POD_B.ip, fragOffset: 10, sport: 1111, dport: 2222 }))
    const [e] = h.drainEvents()
    expect(e).toMatchObject({ sport: 0, dport: 0 })
  })

  it('emits no event for a forwarded packet unless tracing is on', () => {
    h.runCounted('fromPod', fromA({ dst: POD_B.ip }))
    expect(h.drainEvents()).toEqual([])
  })

  it('emits a trace event for every forwarded packet when tracing is on, with the redirect target', () => {
    h.maps.settings.monitorFlags = MONITOR_F_TRACE
    h.runCounted('fromPod', fromA({ dst: POD_B.ip, l4: 'tcp', sport: 999, dport: 80 }))
    h.runCounted('fromPod', fromA({ dst: DIRECT_PEER.pod }))
    h.runCounted('fromPod', fromA({ dst: '8.8.8.8' }))
    const evs = h.drainEvents()
    expect(evs.map((e) => ({ type: e.type, reason: e.reason, target: e.target, nodeIp: e.nodeIp }))).toEqual([
      { type: 'trace', reason: Reason.FWD_LOCAL, target: POD_B.ifindex, nodeIp: '0.0.0.0' },
      { type: 'trace', reason: Reason.FWD_DIRECT, target: TEST_CONFIG.deviceIfindex, nodeIp: DIRECT_PEER.nodeIp },
      { type: 'trace', reason: Reason.FWD_STACK, target: 0, nodeIp: '0.0.0.0' },
    ])
    expect(evs[0]).toMatchObject({ proto: IPPROTO_TCP, sport: 999, dport: 80, saddr: POD_A.ip, daddr: POD_B.ip })
  })

  it('still reports drops as drop events when tracing is on', () => {
    h.maps.settings.monitorFlags = MONITOR_F_TRACE
    h.runCounted('fromPod', ipv4Frame({ src: '1.1.1.1', dst: POD_B.ip }))
    expect(h.drainEvents().map((e) => [e.type, e.reason])).toEqual([['drop', Reason.DROP_SPOOFED_SRC]])
  })
})
