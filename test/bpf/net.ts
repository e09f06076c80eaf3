// SPDX-License-Identifier: Apache-2.0
// The node every packet-level test runs on: two local pods, a direct peer
// and a VXLAN peer, and assertions shared by the per-program tests.

import { expect } from 'vitest'
import type { BpfHarness, Decision } from '../support/bpf-harness.js'
import { ETH_HLEN, ipv4HeaderChecksum, parseIpv4Frame } from '../support/packet.js'

/** The pod behind the veth test packets arrive on (ctx ifindex 1 = lo). */
export const POD_A = { ip: '10.1.0.2', ifindex: 1, mac: '02:aa:00:00:00:02', hostMac: '02:bb:00:00:00:02' }
/** Another pod on this node, behind veth ifindex 5. */
export const POD_B = { ip: '10.1.0.3', ifindex: 5, mac: '02:aa:00:00:00:03', hostMac: '02:bb:00:00:00:03' }
/** Peer node reached unencapsulated. */
export const DIRECT_PEER = { cidr: '10.2.0.0/24', nodeIp: '192.168.1.20', pod: '10.2.0.7' }
/** Peer node reached through VXLAN. */
export const VXLAN_PEER = { cidr: '10.3.0.0/24', nodeIp: '192.168.1.30', pod: '10.3.0.7' }
/** What a pod sees as its gateway (any address: from_pod answers ARP for all). */
export const GATEWAY_IP = '169.254.1.1'
/** MACs a pod sends with: its own, to the host veth. */
export const FROM_A = { ethSrc: POD_A.mac, ethDst: POD_A.hostMac }

export function setupNode(h: BpfHarness): void {
  h.reset()
  h.addEndpoint(POD_A.ip, POD_A.ifindex, POD_A.mac, POD_A.hostMac)
  h.addEndpoint(POD_B.ip, POD_B.ifindex, POD_B.mac, POD_B.hostMac)
  h.addRoute(DIRECT_PEER.cidr, DIRECT_PEER.nodeIp, false)
  h.addRoute(VXLAN_PEER.cidr, VXLAN_PEER.nodeIp, true)
}

/** Packet left exactly as it came in. */
export function expectUntouched(d: Decision, input: Buffer): void {
  expect(d.data.equals(input), `${d.reasonName}: packet modified`).toBe(true)
}

/**
 * The routed-packet rewrite: TTL − 1, a header checksum equal to one computed
 * from scratch, and every other byte after the Ethernet header unchanged.
 */
export function expectTtlDecremented(d: Decision, input: Buffer): void {
  const before = parseIpv4Frame(input).ip
  const after = parseIpv4Frame(d.data).ip
  expect(after.ttl).toBe(before.ttl - 1)
  expect(after.checksumValid).toBe(true)
  expect(after.checksum).toBe(ipv4HeaderChecksum(d.data, ETH_HLEN))
  expect(d.data.length).toBe(input.length)
  const mask = (b: Buffer) => {
    const c = Buffer.from(b.subarray(ETH_HLEN))
    c[8] = 0
    c.writeUInt16BE(0, 10)
    return c
  }
  expect(mask(d.data).equals(mask(input)), 'bytes other than TTL and checksum changed').toBe(true)
}

export function expectMacs(d: Decision, dst: string, src: string): void {
  const { eth } = parseIpv4Frame(d.data)
  expect({ dst: eth.dst, src: eth.src }).toEqual({ dst, src })
}

/** Compact decision for toMatchObject. */
export function summary(d: Decision) {
  return { verdict: d.verdict, reason: d.reasonName, target: d.target, nodeIp: d.nodeIp, vni: d.vni }
}
