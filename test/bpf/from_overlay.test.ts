// SPDX-License-Identifier: Apache-2.0
// pn_from_overlay (tc ingress of the collect_md VXLAN device), packet by
// packet. A test run cannot attach a received tunnel key, so everything past
// bpf_skb_get_tunnel_key runs through the test shim
// (fixtures/tunnel_shim.bpf.c), which sets the key and tail-calls the real
// program; the first group runs the program directly.

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { Dir, Reason } from '../../src/datapath/abi.js'
import { BpfHarness, TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT, TEST_CONFIG, type TunnelKey } from '../support/bpf-harness.js'
import {
  ETH_HLEN,
  ETH_P_ARP,
  ETH_P_IPV6,
  arpFrame,
  eth,
  headerBoundaries,
  ipv4Frame,
  l4ChecksumValid,
  parseIpv4Frame,
  payloadBytes,
  type L4Kind,
} from '../support/packet.js'
import { POD_A, POD_B, VXLAN_PEER, expectMacs, expectTtlDecremented, expectUntouched, setupNode, summary } from './net.js'

/** The inner frame as the peer's from_pod sent it: MACs of the peer's pod and veth. */
const inner = (o: Partial<Parameters<typeof ipv4Frame>[0]> & { dst: string }) =>
  ipv4Frame({ ethSrc: '02:aa:00:00:30:07', ethDst: '02:bb:00:00:30:07', src: VXLAN_PEER.pod, ...o })
const KEY: TunnelKey = { remote: VXLAN_PEER.nodeIp, vni: TEST_CONFIG.vni }

let h: BpfHarness
beforeAll(() => {
  h = BpfHarness.open(TEST_CONFIG, { programs: ['fromOverlay'], tag: 'from-overlay' })
})
afterAll(() => h?.close())
beforeEach(() => setupNode(h))

describe('pn_from_overlay: without a tunnel key', () => {
  it('drops a packet that carries no tunnel key', () => {
    const d = h.explain('fromOverlay', inner({ dst: POD_B.ip }))
    expect(summary(d)).toEqual({ verdict: TC_ACT_SHOT, reason: 'DROP_TUNNEL_KEY', target: 0, nodeIp: '0.0.0.0', vni: 0 })
  })

  it('counts and reports the missing tunnel key as a drop', () => {
    const p = inner({ dst: POD_B.ip })
    const delta = h.countersDuring(() => expect(h.runCounted('fromOverlay', p).verdict).toBe(TC_ACT_SHOT))
    expect([...delta.values()]).toEqual([{ dir: Dir.FROM_OVERLAY, reason: Reason.DROP_TUNNEL_KEY, packets: 1n, bytes: BigInt(p.length) }])
    expect(h.drainEvents()).toMatchObject([{ type: 'drop', dir: Dir.FROM_OVERLAY, reason: Reason.DROP_TUNNEL_KEY, len: p.length }])
  })

  it('in explain mode takes the received tunnel key from the explain request in cb[], as `podnet-bpf explain` passes it', () => {
    const d = h.explain('fromOverlay', inner({ dst: POD_B.ip }), { explainTunnel: { remote: VXLAN_PEER.nodeIp, vni: TEST_CONFIG.vni } })
    expect(summary(d)).toEqual({
      verdict: TC_ACT_REDIRECT,
      reason: 'FWD_LOCAL',
      target: POD_B.ifindex,
      nodeIp: VXLAN_PEER.nodeIp,
      vni: TEST_CONFIG.vni,
    })
    const wrong = h.explain('fromOverlay', inner({ dst: POD_B.ip }), {
      explainTunnel: { remote: VXLAN_PEER.nodeIp, vni: TEST_CONFIG.vni + 1 },
    })
    expect(wrong.reasonName).toBe('DROP_WRONG_VNI')
  })

  it('ignores a tunnel key in cb[] outside explain mode', () => {
    const p = inner({ dst: POD_B.ip })
    const delta = h.countersDuring(() =>
      expect(h.runCounted('fromOverlay', p, { explainTunnel: { remote: VXLAN_PEER.nodeIp, vni: TEST_CONFIG.vni } }).verdict).toBe(
        TC_ACT_SHOT,
      ),
    )
    expect([...delta.values()].map((c) => c.reason)).toEqual([Reason.DROP_TUNNEL_KEY])
    h.drainEvents()
  })

  it('runs the shim without a key to the same drop (the shim itself changes nothing)', () => {
    expect(h.explainWithTunnel('fromOverlay', inner({ dst: POD_B.ip }), null).reasonName).toBe('DROP_TUNNEL_KEY')
  })
})

describe('pn_from_overlay: with a tunnel key', () => {
  it.each<L4Kind>(['udp', 'tcp', 'icmp'])(
    'redirects a decapsulated %s packet for a local pod into it, with MACs rewritten and TTL decremented',
    (l4) => {
      const p = inner({ dst: POD_B.ip, l4 })
      const d = h.explainWithTunnel('fromOverlay', p, KEY)
      expect(summary(d)).toEqual({
        verdict: TC_ACT_REDIRECT,
        reason: 'FWD_LOCAL',
        target: POD_B.ifindex,
        nodeIp: VXLAN_PEER.nodeIp,
        vni: TEST_CONFIG.vni,
      })
      expectMacs(d, POD_B.mac, POD_B.hostMac)
      expectTtlDecremented(d, p)
      expect(l4ChecksumValid(parseIpv4Frame(d.data).ip)).toBe(true)
    },
  )

  it('drops a packet with a foreign VNI and reports the VNI and sender', () => {
    const d = h.explainWithTunnel('fromOverlay', inner({ dst: POD_B.ip }), { remote: VXLAN_PEER.nodeIp, vni: TEST_CONFIG.vni + 1 })
    expect(summary(d)).toEqual({
      verdict: TC_ACT_SHOT,
      reason: 'DROP_WRONG_VNI',
      target: 0,
      nodeIp: VXLAN_PEER.nodeIp,
      vni: TEST_CONFIG.vni + 1,
    })
  })

  it('checks the VNI before looking at the inner frame', () => {
    const d = h.explainWithTunnel('fromOverlay', eth({ type: ETH_P_IPV6 }, payloadBytes(60)), { remote: VXLAN_PEER.nodeIp, vni: 0 })
    expect(d.reasonName).toBe('DROP_WRONG_VNI')
  })

  it('drops a decapsulated packet that is not for a local pod', () => {
    for (const dst of [VXLAN_PEER.pod, TEST_CONFIG.nodeIp, '10.1.0.99', '8.8.8.8']) {
      const d = h.explainWithTunnel('fromOverlay', inner({ dst }), KEY)
      expect(summary(d), dst).toEqual({
        verdict: TC_ACT_SHOT,
        reason: 'DROP_NOT_LOCAL',
        target: 0,
        nodeIp: VXLAN_PEER.nodeIp,
        vni: TEST_CONFIG.vni,
      })
    }
  })

  it('hands a packet with TTL 1 for a local pod to the stack untouched', () => {
    const p = inner({ dst: POD_B.ip, ttl: 1 })
    const d = h.explainWithTunnel('fromOverlay', p, KEY)
    expect(summary(d)).toMatchObject({ verdict: TC_ACT_OK, reason: 'FWD_STACK_TTL', target: 0 })
    expectUntouched(d, p)
  })

  it('delivers a packet with IP options', () => {
    const p = inner({ dst: POD_A.ip, options: Buffer.from([0x01, 0x01, 0x01, 0x00]) })
    const d = h.explainWithTunnel('fromOverlay', p, KEY)
    expect(summary(d)).toMatchObject({ reason: 'FWD_LOCAL', target: POD_A.ifindex })
    expectTtlDecremented(d, p)
  })

  it.each([
    ['a first fragment', { mf: true }],
    ['a middle fragment', { mf: true, fragOffset: 50 }],
    ['a last fragment', { fragOffset: 100 }],
  ])('delivers %s', (_n, frag) => {
    const p = inner({ dst: POD_B.ip, ...frag })
    const d = h.explainWithTunnel('fromOverlay', p, KEY)
    expect(d.reasonName).toBe('FWD_LOCAL')
    expectTtlDecremented(d, p)
  })

  it.each([
    ['ARP', ETH_P_ARP],
    ['IPv6', ETH_P_IPV6],
    ['802.1Q VLAN', 0x8100],
    ['LLDP', 0x88cc],
  ])('drops a decapsulated %s frame as unsupported', (_n, type) => {
    const p =
      type === ETH_P_ARP ? arpFrame({ sha: '02:aa:00:00:30:07', spa: VXLAN_PEER.pod, tpa: POD_B.ip }) : eth({ type }, payloadBytes(60))
    const d = h.explainWithTunnel('fromOverlay', p, KEY)
    expect(summary(d)).toEqual({
      verdict: TC_ACT_SHOT,
      reason: 'DROP_UNSUPPORTED_L3',
      target: 0,
      nodeIp: VXLAN_PEER.nodeIp,
      vni: TEST_CONFIG.vni,
    })
  })

  const valid = () => inner({ dst: POD_B.ip, l4: 'tcp', options: Buffer.from([1, 1, 1, 1]) })
  for (const { name, at } of headerBoundaries(valid())) {
    it(`drops a decapsulated frame cut right after ${name} (${at} bytes), or the kernel refuses to run it`, () => {
      let d
      try {
        d = h.explainWithTunnel('fromOverlay', valid().subarray(0, at), KEY)
      } catch (e) {
        expect(at).toBeLessThan(ETH_HLEN + 20)
        expect(String(e)).toMatch(/EINVAL/)
        return
      }
      expect(summary(d)).toMatchObject({ verdict: TC_ACT_SHOT, reason: 'DROP_INVALID' })
    })
  }

  it.each([
    ['IP version 6', { version: 6 }],
    ['header length 4 words', { ihl: 4 }],
    ['total length shorter than the header', { totLen: 10 }],
    ['total length longer than the frame', { totLen: 1000 }],
  ])('drops a decapsulated packet with %s', (_n, bad) => {
    const d = h.explainWithTunnel('fromOverlay', inner({ dst: POD_B.ip, ...bad }), KEY)
    expect(summary(d)).toMatchObject({ verdict: TC_ACT_SHOT, reason: 'DROP_INVALID' })
  })

  it('counts deliveries and drops under from-overlay and reports the drops with the sending node', () => {
    const ok = inner({ dst: POD_B.ip })
    const notLocal = inner({ dst: '10.9.9.9' })
    const delta = h.countersDuring(() => {
      expect(h.runCountedWithTunnel('fromOverlay', ok, KEY).verdict).toBe(TC_ACT_REDIRECT)
      expect(h.runCountedWithTunnel('fromOverlay', notLocal, KEY).verdict).toBe(TC_ACT_SHOT)
    })
    expect([...delta.values()].sort((a, b) => a.reason - b.reason)).toEqual([
      { dir: Dir.FROM_OVERLAY, reason: Reason.FWD_LOCAL, packets: 1n, bytes: BigInt(ok.length) },
      { dir: Dir.FROM_OVERLAY, reason: Reason.DROP_NOT_LOCAL, packets: 1n, bytes: BigInt(notLocal.length) },
    ])
    expect(h.drainEvents()).toMatchObject([
      { type: 'drop', reason: Reason.DROP_NOT_LOCAL, daddr: '10.9.9.9', target: 0, nodeIp: VXLAN_PEER.nodeIp },
    ])
  })
})
