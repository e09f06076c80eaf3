// SPDX-License-Identifier: Apache-2.0
// pn_from_pod's per-CPU next-hop MAC cache (bpf/lib/nexthop.h): a fresh
// entry for the peer node is written into the frame and the frame redirected
// out the device; an expired entry or one for another next hop is not used
// (bpf_redirect_neigh fills the MACs in, as without the cache).

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { MapFd } from '../../src/libbpf/index.js'
import { BpfHarness, TC_ACT_REDIRECT, TEST_CONFIG } from '../support/bpf-harness.js'
import { ip4, ipv4Frame, mac, parseVxlanFrame } from '../support/packet.js'
import { DIRECT_PEER, FROM_A, POD_A, VXLAN_PEER, expectMacs, expectTtlDecremented, setupNode, summary } from './net.js'

const SLOTS = 256
/** struct pn_nexthop: ip, dmac, smac, expires (jiffies) */
const ENTRY = 24
const PEER_MAC = '02:cc:00:00:00:20'
const OUR_MAC = '02:dd:00:00:00:10'
const NEVER = 0xffffffffffffffffn

let h: BpfHarness
let cache: MapFd

/** Writes the same entry into every slot on every CPU (the slot hash is the program's business). */
function fill(ip: string, expires: bigint): void {
  const ncpu = valueBuf().length / ENTRY
  const v = Buffer.alloc(ENTRY * ncpu)
  for (let c = 0; c < ncpu; c++) {
    ip4(ip).copy(v, c * ENTRY)
    mac(PEER_MAC).copy(v, c * ENTRY + 4)
    mac(OUR_MAC).copy(v, c * ENTRY + 10)
    v.writeBigUInt64LE(expires, c * ENTRY + 16)
  }
  for (let slot = 0; slot < SLOTS; slot++) cache.update(u32(slot), v)
}

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n)
  return b
}
const valueBuf = (): Buffer => cache.lookup(u32(0))!

const fromA = (dst: string, l4: 'tcp' | 'udp' = 'tcp') => ipv4Frame({ ...FROM_A, src: POD_A.ip, dst, l4 })

describe('pn_from_pod: next-hop MAC cache', () => {
  beforeAll(() => {
    // the node's /24 makes both peers on-link next hops (VXLAN takes the FIB for others)
    h = BpfHarness.open({ ...TEST_CONFIG, nodePrefixLen: 24 }, { programs: ['fromPod'], tag: 'pnperf-nh' })
    cache = MapFd.fromFd(h.program('fromPod').obj.map('podnet_nexthop_cache').fd())
  })
  afterAll(() => h?.close())
  beforeEach(() => {
    setupNode(h)
    fill('0.0.0.0', 0n)
  })

  it('writes a fresh cached MAC pair into a directly routed frame and redirects it out the device', () => {
    fill(DIRECT_PEER.nodeIp, NEVER)
    const p = fromA(DIRECT_PEER.pod)
    const d = h.explain('fromPod', p)
    expect(summary(d)).toEqual({
      verdict: TC_ACT_REDIRECT,
      reason: 'FWD_DIRECT',
      target: TEST_CONFIG.deviceIfindex,
      nodeIp: DIRECT_PEER.nodeIp,
      vni: 0,
    })
    expectMacs(d, PEER_MAC, OUR_MAC)
    expectTtlDecremented(d, p)
  })

  it('writes it into the outer header of a VXLAN frame for an on-link peer', () => {
    fill(VXLAN_PEER.nodeIp, NEVER)
    const d = h.explain('fromPod', fromA(VXLAN_PEER.pod, 'udp'))
    expect(summary(d)).toMatchObject({ verdict: TC_ACT_REDIRECT, reason: 'FWD_VXLAN', target: TEST_CONFIG.deviceIfindex })
    const f = parseVxlanFrame(d.data)
    expect({ dst: f.eth.dst, src: f.eth.src }).toEqual({ dst: PEER_MAC, src: OUR_MAC })
    expect(f.ip.dst).toBe(VXLAN_PEER.nodeIp)
  })

  it('does not use an expired entry: the kernel neighbour path fills the MACs in', () => {
    fill(DIRECT_PEER.nodeIp, 0n)
    const d = h.explain('fromPod', fromA(DIRECT_PEER.pod))
    expect(summary(d)).toMatchObject({ verdict: TC_ACT_REDIRECT, reason: 'FWD_DIRECT', target: TEST_CONFIG.deviceIfindex })
    expectMacs(d, POD_A.hostMac, POD_A.mac)
  })

  it('does not use an entry cached for another next hop', () => {
    fill(VXLAN_PEER.nodeIp, NEVER)
    const d = h.explain('fromPod', fromA(DIRECT_PEER.pod))
    expect(summary(d)).toMatchObject({ verdict: TC_ACT_REDIRECT, reason: 'FWD_DIRECT' })
    expectMacs(d, POD_A.hostMac, POD_A.mac)
  })

  it('leaves an expired entry expired when the kernel has no route to the next hop through the device', () => {
    fill(DIRECT_PEER.nodeIp, 1n)
    h.explain('fromPod', fromA(DIRECT_PEER.pod))
    // the test runs on lo: the FIB lookup through ifindex 1001 fails, nothing is cached
    const v = valueBuf()
    for (let c = 0; c < v.length / ENTRY; c++) expect(v.readBigUInt64LE(c * ENTRY + 16)).toBeLessThanOrEqual(1n)
  })
})
