// SPDX-License-Identifier: Apache-2.0
// The node every packet-level test runs on: two local pods, a direct peer
// and a VXLAN peer, and assertions shared by the per-program tests.

import { afterAll, beforeAll, beforeEach, expect } from 'vitest'
import { DEFAULT_VXLAN_PORT, type DatapathConfig, type ProgramKey } from '../../src/datapath/abi.js'
import { BpfHarness, DIRECT_ONLY_CONFIG, OTHER_VXLAN_CONFIG, TEST_CONFIG, type Decision } from '../support/bpf-harness.js'
import {
  ETH_HLEN,
  ETH_P_IP,
  IPPROTO_UDP,
  VXLAN_ENCAP_LEN,
  eth,
  ipv4,
  ipv4HeaderChecksum,
  parseIpv4Frame,
  udp,
  vxlanHeader,
} from '../support/packet.js'

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

export interface NodeHarnesses {
  /** TEST_CONFIG: VXLAN and direct peers */
  h: BpfHarness
  /** DIRECT_ONLY_CONFIG: no VXLAN device */
  direct: BpfHarness
  /** OTHER_VXLAN_CONFIG: another node IP, port and VNI */
  other: BpfHarness
}

/** One program loaded under the three node configurations the per-program
 * tests compare, opened for the file and set up fresh (setupNode) before
 * each test; `use` receives them once they are open. */
export function useNodeHarnesses(program: ProgramKey, tag: string, use: (hs: NodeHarnesses) => void): void {
  let hs: NodeHarnesses | undefined
  beforeAll(() => {
    hs = {
      h: BpfHarness.open(TEST_CONFIG, { programs: [program], tag }),
      direct: BpfHarness.open(DIRECT_ONLY_CONFIG, { programs: [program], tag: `${tag}-direct` }),
      other: BpfHarness.open(OTHER_VXLAN_CONFIG, { programs: [program], tag: `${tag}-other` }),
    }
    use(hs)
  })
  afterAll(() => {
    hs?.h.close()
    hs?.direct.close()
    hs?.other.close()
  })
  beforeEach(() => {
    for (const x of [hs!.h, hs!.direct, hs!.other]) setupNode(x)
  })
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

// ---- VXLAN ----

/** The VXLAN port of TEST_CONFIG, which leaves it out: the default. */
export const VXLAN_DPORT = DEFAULT_VXLAN_PORT
/** UDP source ports of encapsulated packets: the flow hash in the kernel's default ephemeral range. */
export const VXLAN_SPORT_MIN = 32768
export const VXLAN_SPORT_MAX = 60999

/** Outer TOS of an encapsulated packet: the inner ECN field, CE → ECT(0) (RFC 6040 normal mode); no DSCP. */
export function outerTos(innerTos: number): number {
  const ecn = innerTos & 3
  return ecn === 3 ? 2 : ecn
}

/** A copy of the IPv4 packet with TTL − 1 and the header checksum computed from scratch. */
export function withTtlDecremented(ip: Buffer): Buffer {
  const b = Buffer.from(ip)
  b[8] = b[8]! - 1
  b.writeUInt16BE(ipv4HeaderChecksum(b), 10)
  return b
}

/**
 * The exact frame from_pod puts out for a pod's frame on a VXLAN route to
 * nodeIp, built here from the test's own builders: the frame's Ethernet
 * header (redirect_neigh rewrites it later), outer IPv4 (node IP → peer,
 * TTL 64, DF, ID 0, outer ECN), UDP (sport = the flow hash, given; dport;
 * checksum 0), VXLAN (I flag, VNI), the original Ethernet header, and the
 * pod's IP packet with TTL − 1.
 */
export function vxlanEncapsulated(input: Buffer, nodeIp: string, sport: number, cfg: DatapathConfig = TEST_CONFIG): Buffer {
  const l2 = input.subarray(0, ETH_HLEN)
  const inner = Buffer.concat([l2, withTtlDecremented(input.subarray(ETH_HLEN))])
  const u = udp({ sport, dport: cfg.vxlanPort ?? DEFAULT_VXLAN_PORT }, Buffer.concat([vxlanHeader(cfg.vni), inner]))
  const outer = ipv4({ src: cfg.nodeIp, dst: nodeIp, proto: IPPROTO_UDP, ttl: 64, tos: outerTos(input[ETH_HLEN + 1]!), id: 0, df: true }, u)
  return Buffer.concat([l2, outer])
}

/** A FWD_VXLAN output equals vxlanEncapsulated() byte for byte; returns its UDP source port. */
export function expectEncapsulated(d: Decision, input: Buffer, nodeIp: string, cfg: DatapathConfig = TEST_CONFIG): number {
  expect(d.data.length, `${d.reasonName}: length`).toBe(input.length + VXLAN_ENCAP_LEN)
  const sport = d.data.readUInt16BE(ETH_HLEN + 20)
  expect(sport).toBeGreaterThanOrEqual(VXLAN_SPORT_MIN)
  expect(sport).toBeLessThanOrEqual(VXLAN_SPORT_MAX)
  expect(d.data.toString('hex')).toBe(vxlanEncapsulated(input, nodeIp, sport, cfg).toString('hex'))
  return sport
}

/**
 * The exact frame from_netdev puts out when it decapsulates a VXLAN frame
 * (outer IPv4 without options) into endpoint ep: Ethernet with the pod's and
 * host veth's MACs, then the inner IP packet with TTL − 1 and, if the outer
 * carried CE and the inner is ECN-capable, CE — checksum from scratch.
 */
export function vxlanDecapsulated(frame: Buffer, ep: { mac: string; hostMac: string }): Buffer {
  const ip = Buffer.from(frame.subarray(ETH_HLEN + VXLAN_ENCAP_LEN))
  const outer = frame[ETH_HLEN + 1]! & 3
  // RFC 6040 as Linux decapsulates: outer CE → CE on ECT, outer ECT(1) → ECT(0) becomes ECT(1)
  if (outer === 3 && (ip[1]! & 3) !== 0) ip[1] = ip[1]! | 3
  else if (outer === 1 && (ip[1]! & 3) === 2) ip[1] = (ip[1]! & ~3) | 1
  return eth({ dst: ep.mac, src: ep.hostMac, type: ETH_P_IP }, withTtlDecremented(ip))
}

export function expectDecapsulated(d: Decision, frame: Buffer, ep: { mac: string; hostMac: string }): void {
  expect(d.data.toString('hex'), `${d.reasonName}: decapsulated frame`).toBe(vxlanDecapsulated(frame, ep).toString('hex'))
}

/** Compact decision for toMatchObject. */
export function summary(d: Decision) {
  return { verdict: d.verdict, reason: d.reasonName, target: d.target, nodeIp: d.nodeIp, vni: d.vni }
}
