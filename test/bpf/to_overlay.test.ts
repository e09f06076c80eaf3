// SPDX-License-Identifier: Apache-2.0
// pn_to_overlay (tc egress of the VXLAN device), packet by packet: packets
// the host stack routes to a remote pod CIDR get their tunnel key from the
// routes map; packets from_pod already keyed pass untouched and uncounted
// (run through the test shim, fixtures/tunnel_shim.bpf.c).

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { Dir, EXPLAIN_MAGIC0, EXPLAIN_MAGIC1, MONITOR_F_TRACE, Reason } from '../../src/datapath/abi.js'
import { BpfHarness, LO_IFINDEX, TC_ACT_OK, TC_ACT_SHOT, TEST_CONFIG, TC_ACT_UNSPEC } from '../support/bpf-harness.js'
import { ETH_HLEN, ETH_P_ARP, ETH_P_IPV6, arpFrame, eth, headerBoundaries, ipv4Frame, payloadBytes } from '../support/packet.js'
import { DIRECT_PEER, POD_A, VXLAN_PEER, expectUntouched, setupNode, summary } from './net.js'

/** What the host stack sends out podnet_vxlan: node (or forwarded pod) traffic to a remote pod. */
const fromNode = (o: Partial<Parameters<typeof ipv4Frame>[0]> & { dst: string }) =>
  ipv4Frame({ ethSrc: '02:00:00:00:0a:0a', ethDst: '02:00:00:00:0b:0b', src: TEST_CONFIG.nodeIp, ...o })

let h: BpfHarness
beforeAll(() => {
  h = BpfHarness.open(TEST_CONFIG, { programs: ['toOverlay'], tag: 'to-overlay' })
})
afterAll(() => h?.close())
beforeEach(() => setupNode(h))

describe('pn_to_overlay: packets without a tunnel key', () => {
  it.each([
    ['the node', TEST_CONFIG.nodeIp],
    ['a local pod whose packet the stack forwarded', POD_A.ip],
  ])('sets the tunnel key for a packet from %s to a VXLAN-routed pod and lets it out unchanged', (_n, src) => {
    const p = fromNode({ src, dst: VXLAN_PEER.pod, l4: 'tcp' })
    const d = h.explain('toOverlay', p)
    expect(summary(d)).toEqual({
      verdict: TC_ACT_OK,
      reason: 'FWD_ENCAP_STACK',
      target: LO_IFINDEX,
      nodeIp: VXLAN_PEER.nodeIp,
      vni: TEST_CONFIG.vni,
    })
    // The stack already decremented TTL and chose MACs; nothing is rewritten.
    expectUntouched(d, p)
  })

  it('keys an oversize or TTL-1 packet too: the stack already made those decisions', () => {
    expect(h.explain('toOverlay', fromNode({ dst: VXLAN_PEER.pod, ttl: 1 })).reasonName).toBe('FWD_ENCAP_STACK')
    expect(h.explain('toOverlay', fromNode({ dst: VXLAN_PEER.pod, frameLen: 3000 })).reasonName).toBe('FWD_ENCAP_STACK')
  })

  it('uses the longest matching route', () => {
    h.addRoute('10.3.0.0/16', '192.168.1.40', true)
    h.addRoute('10.3.0.128/25', '192.168.1.50', false)
    expect(summary(h.explain('toOverlay', fromNode({ dst: '10.3.9.9' })))).toMatchObject({
      reason: 'FWD_ENCAP_STACK',
      nodeIp: '192.168.1.40',
    })
    expect(summary(h.explain('toOverlay', fromNode({ dst: VXLAN_PEER.pod })))).toMatchObject({
      reason: 'FWD_ENCAP_STACK',
      nodeIp: VXLAN_PEER.nodeIp,
    })
    expect(h.explain('toOverlay', fromNode({ dst: '10.3.0.200' })).reasonName).toBe('DROP_NO_ROUTE')
  })

  it.each([
    ['a directly routed pod', DIRECT_PEER.pod],
    ['an address without a route', '8.8.8.8'],
    ['a local pod', POD_A.ip],
  ])('drops a packet for %s: nothing but VXLAN routes belongs on the overlay', (_n, dst) => {
    const d = h.explain('toOverlay', fromNode({ dst }))
    expect(summary(d)).toMatchObject({ verdict: TC_ACT_SHOT, reason: 'DROP_NO_ROUTE', target: 0, vni: 0 })
  })

  it.each([
    ['ARP', ETH_P_ARP],
    ['IPv6', ETH_P_IPV6],
    ['802.1Q VLAN', 0x8100],
  ])('drops an %s frame as unsupported', (_n, type) => {
    const p =
      type === ETH_P_ARP
        ? arpFrame({ sha: '02:00:00:00:0a:0a', spa: TEST_CONFIG.nodeIp, tpa: VXLAN_PEER.pod })
        : eth({ type }, payloadBytes(60))
    expect(summary(h.explain('toOverlay', p))).toEqual({
      verdict: TC_ACT_SHOT,
      reason: 'DROP_UNSUPPORTED_L3',
      target: 0,
      nodeIp: '0.0.0.0',
      vni: 0,
    })
  })

  it('forwards fragments and packets with IP options', () => {
    for (const o of [{ mf: true }, { fragOffset: 300 }, { options: Buffer.from([1, 1, 1, 0]) }]) {
      expect(h.explain('toOverlay', fromNode({ dst: VXLAN_PEER.pod, ...o })).reasonName).toBe('FWD_ENCAP_STACK')
    }
  })

  const valid = () => fromNode({ dst: VXLAN_PEER.pod, l4: 'udp', options: Buffer.from([1, 1, 1, 1]) })
  for (const { name, at } of headerBoundaries(valid())) {
    it(`drops a frame cut right after ${name} (${at} bytes), or the kernel refuses to run it`, () => {
      const d = h.explainOrRefused('toOverlay', valid().subarray(0, at))
      if (d === null) expect(at).toBeLessThan(ETH_HLEN + 20)
      else expect(summary(d)).toMatchObject({ verdict: TC_ACT_SHOT, reason: 'DROP_INVALID' })
    })
  }

  it.each([
    ['IP version 6', { version: 6 }],
    ['header length 4 words', { ihl: 4 }],
    ['total length longer than the frame', { totLen: 1000 }],
  ])('drops a packet with %s', (_n, bad) => {
    expect(summary(h.explain('toOverlay', fromNode({ dst: VXLAN_PEER.pod, ...bad })))).toMatchObject({
      verdict: TC_ACT_SHOT,
      reason: 'DROP_INVALID',
    })
  })

  it('counts keyed packets and drops under to-overlay and reports only the drops', () => {
    const ok = fromNode({ dst: VXLAN_PEER.pod })
    const bad = fromNode({ dst: DIRECT_PEER.pod })
    const delta = h.countersDuring(() => {
      expect(h.runCounted('toOverlay', ok).verdict).toBe(TC_ACT_UNSPEC)
      expect(h.runCounted('toOverlay', bad).verdict).toBe(TC_ACT_SHOT)
    })
    expect([...delta.values()].sort((a, b) => a.reason - b.reason)).toEqual([
      { dir: Dir.TO_OVERLAY, reason: Reason.FWD_ENCAP_STACK, packets: 1n, bytes: BigInt(ok.length) },
      { dir: Dir.TO_OVERLAY, reason: Reason.DROP_NO_ROUTE, packets: 1n, bytes: BigInt(bad.length) },
    ])
    expect(h.drainEvents()).toMatchObject([{ type: 'drop', dir: Dir.TO_OVERLAY, reason: Reason.DROP_NO_ROUTE, daddr: DIRECT_PEER.pod }])
  })
})

describe('pn_to_overlay: packets from_pod already keyed', () => {
  const key = { remote: VXLAN_PEER.nodeIp, vni: TEST_CONFIG.vni }

  it('lets a packet with a tunnel key out untouched, without explaining, counting or reporting it', () => {
    h.maps.settings.monitorFlags = MONITOR_F_TRACE
    for (const p of [
      fromNode({ dst: DIRECT_PEER.pod }),
      eth({ type: ETH_P_IPV6 }, payloadBytes(60)),
      fromNode({ dst: VXLAN_PEER.pod, totLen: 999 }),
    ]) {
      const delta = h.countersDuring(() => {
        const d = h.explainWithTunnel('toOverlay', p, key)
        expect(d.verdict).toBe(TC_ACT_UNSPEC) // handed on, as every packet for the stack
        // cb[] still holds the explain magic: the program never reached pn_finish.
        expect(d.cb.slice(0, 2)).toEqual([EXPLAIN_MAGIC0, EXPLAIN_MAGIC1])
        expectUntouched(d, p)
        expect(h.runCountedWithTunnel('toOverlay', p, key).verdict).toBe(TC_ACT_UNSPEC)
      })
      expect(delta.size).toBe(0)
    }
    expect(h.drainEvents()).toEqual([])
  })

  it('keys the same packet itself when the shim sets no key', () => {
    expect(h.explainWithTunnel('toOverlay', fromNode({ dst: VXLAN_PEER.pod }), null).reasonName).toBe('FWD_ENCAP_STACK')
  })
})
