// SPDX-License-Identifier: Apache-2.0
// Hostile pods and a hostile underlay (issue 12, items 1-4 and 6), packet by
// packet through the real programs: hand-made VXLAN, VLAN tags, pkt_type of
// what is delivered into a pod, unassigned pod IPs, rate-limited drop events.

import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { DROP_EVENTS_PER_SEC, Dir, Reason, type ProgramKey } from '../../src/datapath/abi.js'
import { BpfObject, progTestRun } from '../../src/libbpf/index.js'
import { BpfHarness, PROGRAM_DIR, TC_ACT_REDIRECT, TC_ACT_SHOT, TEST_CONFIG, type TunnelKey } from '../support/bpf-harness.js'
import {
  ETH_HLEN,
  ETH_P_8021AD,
  ETH_P_8021Q,
  ETH_P_IP,
  eth,
  ipv4Frame,
  payloadBytes,
  vxlanFrame,
  type Ipv4FrameOpts,
} from '../support/packet.js'
import { DIRECT_PEER, FROM_A, POD_A, POD_B, VXLAN_DPORT, VXLAN_PEER, setupNode, summary } from './net.js'

const here = dirname(fileURLToPath(import.meta.url))
const NODE_MAC = '00:00:00:00:00:00' // lo: frames to it are PACKET_HOST in a test run
const PEER_MAC = '02:99:00:00:00:30'

/** What VXLAN_PEER's from_pod puts inside: its pod's frame, for POD_B by default. */
const inner = (o: Partial<Ipv4FrameOpts> = {}) =>
  ipv4Frame({ ethSrc: '02:aa:00:00:30:07', ethDst: '02:bb:00:00:30:07', src: VXLAN_PEER.pod, dst: POD_B.ip, ...o })
/** VXLAN on the NIC from src (default the VXLAN peer) to this node. */
const vx = (src: string = VXLAN_PEER.nodeIp, innerFrame: Buffer = inner()) =>
  vxlanFrame(
    { ethSrc: PEER_MAC, ethDst: NODE_MAC, src, dst: TEST_CONFIG.nodeIp, vni: TEST_CONFIG.vni, dport: VXLAN_DPORT, sport: 40000 },
    innerFrame,
  )
/** From POD_A, on its own veth (test runs arrive on lo = POD_A's ifindex). */
const fromA = (o: Partial<Ipv4FrameOpts> & { dst: string }) => ipv4Frame({ ...FROM_A, src: POD_A.ip, ...o })
/** Directly routed from the underlay to this node's NIC. */
const fromWire = (o: Partial<Ipv4FrameOpts> & { dst: string }) =>
  ipv4Frame({ ethSrc: PEER_MAC, ethDst: NODE_MAC, src: DIRECT_PEER.pod, ...o })

const dropped = (reason: string, nodeIp = '0.0.0.0', vni = 0) => ({ verdict: TC_ACT_SHOT, reason, target: 0, nodeIp, vni })

let h: BpfHarness
let other: BpfHarness
beforeAll(() => {
  h = BpfHarness.open(TEST_CONFIG, { tag: 'hostile' })
  other = BpfHarness.open({ ...TEST_CONFIG, vxlanPort: 4789 }, { programs: ['fromPod'], tag: 'hostile-4789' })
})
afterAll(() => {
  h?.close()
  other?.close()
})
beforeEach(() => {
  setupNode(h)
  setupNode(other)
})

/** One counted run: its verdict, the counter it moved and the drop event it left. */
function counted(key: ProgramKey, f: Buffer, tunnel?: TunnelKey) {
  h.drainEvents()
  let verdict = -1
  const delta = h.countersDuring(() => {
    verdict = (tunnel ? h.runCountedWithTunnel(key, f, tunnel) : h.runCounted(key, f)).verdict
  })
  return {
    verdict,
    counters: [...delta.values()].map((c) => ({ dir: c.dir, reason: c.reason, packets: c.packets })),
    events: h.drainEvents(),
  }
}

function expectCountedDrop(key: ProgramKey, f: Buffer, reason: number, tunnel?: TunnelKey) {
  const c = counted(key, f, tunnel)
  expect(c.verdict).toBe(TC_ACT_SHOT)
  expect(c.counters).toEqual([{ dir: PROGRAM_DIR[key], reason, packets: 1n }])
  expect(c.events).toMatchObject([{ type: 'drop', dir: PROGRAM_DIR[key], reason }])
}

describe('VXLAN injection on the NIC (from_netdev)', () => {
  it('decapsulates VXLAN from a peer node whose inner source is one of that peer’s pods', () => {
    expect(h.explain('fromNetdev', vx()).reasonName).toBe('FWD_DECAP')
  })

  it('decapsulates VXLAN from a peer node whose inner source is the peer node itself (node to pod)', () => {
    expect(h.explain('fromNetdev', vx(VXLAN_PEER.nodeIp, inner({ src: VXLAN_PEER.nodeIp }))).reasonName).toBe('FWD_DECAP')
  })

  it('drops and counts VXLAN whose outer source is not a peer node', () => {
    const f = vx('203.0.113.5')
    expect(summary(h.explain('fromNetdev', f))).toEqual(dropped('DROP_UNKNOWN_PEER', '203.0.113.5'))
    expectCountedDrop('fromNetdev', f, Reason.DROP_UNKNOWN_PEER)
  })

  it('drops a pod’s hand-made VXLAN sent from its own pod IP, whose inner packet claims another pod’s source', () => {
    const f = vx(VXLAN_PEER.pod, inner({ src: '10.3.0.99' }))
    expect(summary(h.explain('fromNetdev', f))).toEqual(dropped('DROP_UNKNOWN_PEER', VXLAN_PEER.pod))
  })

  it('drops and counts VXLAN from a peer whose inner source is a pod of another peer', () => {
    const f = vx(VXLAN_PEER.nodeIp, inner({ src: DIRECT_PEER.pod }))
    expect(summary(h.explain('fromNetdev', f))).toEqual(dropped('DROP_PEER_SPOOFED', VXLAN_PEER.nodeIp))
    expectCountedDrop('fromNetdev', f, Reason.DROP_PEER_SPOOFED)
  })

  it.each([
    ['a pod of this node', POD_A.ip],
    ['another peer node', DIRECT_PEER.nodeIp],
    ['an address outside every pod CIDR', '8.8.8.8'],
  ])('drops VXLAN from a peer whose inner source is %s', (_n, src) => {
    expect(h.explain('fromNetdev', vx(VXLAN_PEER.nodeIp, inner({ src }))).reasonName).toBe('DROP_PEER_SPOOFED')
  })

  it('stops decapsulating a peer’s VXLAN once its last route is deleted, and not before', () => {
    h.addRoute('10.30.0.0/16', VXLAN_PEER.nodeIp, true)
    h.maps.routes.delete(VXLAN_PEER.cidr)
    expect(h.maps.peers.list()).toContain(VXLAN_PEER.nodeIp)
    // still a peer (its other route), but 10.3.0.7 is no longer its pod
    expect(h.explain('fromNetdev', vx()).reasonName).toBe('DROP_PEER_SPOOFED')
    expect(h.explain('fromNetdev', vx(VXLAN_PEER.nodeIp, inner({ src: '10.30.1.1' }))).reasonName).toBe('FWD_DECAP')
    h.maps.routes.delete('10.30.0.0/16')
    expect(h.maps.peers.list()).not.toContain(VXLAN_PEER.nodeIp)
    expect(h.explain('fromNetdev', vx(VXLAN_PEER.nodeIp, inner({ src: '10.30.1.1' }))).reasonName).toBe('DROP_UNKNOWN_PEER')
  })

  it('moves a peer with its route: a route changed to another node IP trusts the new node and forgets the old', () => {
    h.addRoute(VXLAN_PEER.cidr, '192.168.1.31', true)
    expect(h.maps.peers.list()).toEqual([DIRECT_PEER.nodeIp, '192.168.1.31'])
    expect(h.explain('fromNetdev', vx()).reasonName).toBe('DROP_UNKNOWN_PEER')
    expect(h.explain('fromNetdev', vx('192.168.1.31')).reasonName).toBe('FWD_DECAP')
  })

  it('keeps the peers in step with routes written and deleted in bulk (routes sync)', () => {
    h.maps.routes.setMany([
      { cidr: '10.40.0.0/24', nodeIp: '192.168.1.40', vxlan: true },
      { cidr: '10.41.0.0/24', nodeIp: '192.168.1.41', vxlan: true },
    ])
    expect(h.maps.peers.list()).toEqual([DIRECT_PEER.nodeIp, VXLAN_PEER.nodeIp, '192.168.1.40', '192.168.1.41'])
    h.maps.routes.deleteMany([VXLAN_PEER.cidr, '10.40.0.0/24'])
    expect(h.maps.peers.list()).toEqual([DIRECT_PEER.nodeIp, '192.168.1.41'])
  })
})

describe('VXLAN injection behind the kernel VXLAN device (from_overlay)', () => {
  const key = (remote: string): TunnelKey => ({ remote, vni: TEST_CONFIG.vni })

  it('delivers what a peer node sent for one of its pods', () => {
    expect(h.explainWithTunnel('fromOverlay', inner(), key(VXLAN_PEER.nodeIp)).reasonName).toBe('FWD_LOCAL')
  })

  it('delivers what a peer node sent from its own IP (node to pod)', () => {
    expect(h.explainWithTunnel('fromOverlay', inner({ src: VXLAN_PEER.nodeIp }), key(VXLAN_PEER.nodeIp)).reasonName).toBe('FWD_LOCAL')
  })

  it('drops and counts what the kernel decapsulated from a sender that is not a peer node', () => {
    const d = h.explainWithTunnel('fromOverlay', inner(), key('203.0.113.5'))
    expect(summary(d)).toEqual(dropped('DROP_UNKNOWN_PEER', '203.0.113.5', TEST_CONFIG.vni))
    expectCountedDrop('fromOverlay', inner(), Reason.DROP_UNKNOWN_PEER, key('203.0.113.5'))
  })

  it('drops and counts what a peer node sent with an inner source that is not its own', () => {
    const f = inner({ src: POD_A.ip })
    const d = h.explainWithTunnel('fromOverlay', f, key(VXLAN_PEER.nodeIp))
    expect(summary(d)).toEqual(dropped('DROP_PEER_SPOOFED', VXLAN_PEER.nodeIp, TEST_CONFIG.vni))
    expectCountedDrop('fromOverlay', f, Reason.DROP_PEER_SPOOFED, key(VXLAN_PEER.nodeIp))
  })
})

describe('pod traffic to a VXLAN port (from_pod)', () => {
  it.each([
    ['this node', TEST_CONFIG.nodeIp],
    ['a peer node', VXLAN_PEER.nodeIp],
    ['a host outside the cluster', '198.51.100.7'],
  ])('drops and counts a pod’s UDP to the VXLAN port of %s', (_n, dst) => {
    const p = fromA({ dst, dport: VXLAN_DPORT })
    expect(summary(h.explain('fromPod', p))).toEqual(dropped('DROP_POD_TO_VXLAN'))
    expectCountedDrop('fromPod', p, Reason.DROP_POD_TO_VXLAN)
  })

  it('drops a first fragment to the VXLAN port and passes later fragments, which carry no port', () => {
    expect(h.explain('fromPod', fromA({ dst: TEST_CONFIG.nodeIp, dport: VXLAN_DPORT, mf: true })).reasonName).toBe('DROP_POD_TO_VXLAN')
    expect(h.explain('fromPod', fromA({ dst: TEST_CONFIG.nodeIp, dport: VXLAN_DPORT, fragOffset: 10 })).reasonName).toBe('FWD_STACK')
  })

  it('drops a pod’s UDP to the VXLAN port behind IP options', () => {
    const p = fromA({ dst: TEST_CONFIG.nodeIp, dport: VXLAN_DPORT, options: Buffer.from([0x94, 0x04, 0, 0]) })
    expect(h.explain('fromPod', p).reasonName).toBe('DROP_POD_TO_VXLAN')
  })

  it('lets pods use the VXLAN port among themselves, here and on other nodes', () => {
    expect(h.explain('fromPod', fromA({ dst: POD_B.ip, dport: VXLAN_DPORT })).reasonName).toBe('FWD_LOCAL')
    expect(h.explain('fromPod', fromA({ dst: VXLAN_PEER.pod, dport: VXLAN_DPORT })).reasonName).toBe('FWD_VXLAN')
  })

  it('leaves other UDP and TCP to the port alone', () => {
    expect(h.explain('fromPod', fromA({ dst: TEST_CONFIG.nodeIp, dport: VXLAN_DPORT + 1 })).reasonName).toBe('FWD_STACK')
    expect(h.explain('fromPod', fromA({ dst: TEST_CONFIG.nodeIp, l4: 'tcp', dport: VXLAN_DPORT })).reasonName).toBe('FWD_STACK')
  })

  it('uses the node’s configured VXLAN port', () => {
    expect(other.explain('fromPod', fromA({ dst: TEST_CONFIG.nodeIp, dport: 4789 })).reasonName).toBe('DROP_POD_TO_VXLAN')
    expect(other.explain('fromPod', fromA({ dst: TEST_CONFIG.nodeIp, dport: VXLAN_DPORT })).reasonName).toBe('FWD_STACK')
  })

  it('drops a UDP first fragment to the stack too short to carry its ports as invalid', () => {
    const p = fromA({ dst: TEST_CONFIG.nodeIp, dport: VXLAN_DPORT })
    const cut = Buffer.from(p.subarray(0, ETH_HLEN + 20 + 2))
    cut.writeUInt16BE(22, ETH_HLEN + 2)
    cut.writeUInt16BE(0, ETH_HLEN + 10)
    const sum = ipChecksum(cut.subarray(ETH_HLEN, ETH_HLEN + 20))
    cut.writeUInt16BE(sum, ETH_HLEN + 10)
    expect(h.explain('fromPod', cut).reasonName).toBe('DROP_INVALID')
  })
})

function ipChecksum(b: Buffer): number {
  let s = 0
  for (let i = 0; i < b.length; i += 2) s += b.readUInt16BE(i)
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16)
  return ~s & 0xffff
}

describe('VLAN tags from pods (from_pod)', () => {
  it.each([
    ['an 802.1Q', ETH_P_8021Q],
    ['an 802.1ad (QinQ)', ETH_P_8021AD],
  ])('drops and counts %s-tagged frame from a pod', (_n, tpid) => {
    const ip = fromA({ dst: POD_B.ip }).subarray(ETH_HLEN)
    const tag = Buffer.alloc(4)
    tag.writeUInt16BE(5, 0)
    tag.writeUInt16BE(ETH_P_IP, 2)
    const f = eth({ dst: POD_A.hostMac, src: POD_A.mac, type: tpid }, Buffer.concat([tag, ip]))
    expect(summary(h.explain('fromPod', f))).toEqual(dropped('DROP_VLAN'))
    expectCountedDrop('fromPod', f, Reason.DROP_VLAN)
  })

  it('drops a tagged ARP request from a pod instead of answering it', () => {
    const f = eth({ dst: 'ff:ff:ff:ff:ff:ff', src: POD_A.mac, type: 0x0806, vlan: 5 }, payloadBytes(28))
    expect(h.explain('fromPod', f).reasonName).toBe('DROP_VLAN')
  })
})

describe('unassigned addresses of this node’s pod CIDR', () => {
  it('drops and counts a pod’s packet for an address of the pod CIDR that no pod has', () => {
    const p = fromA({ dst: '10.1.0.77' })
    expect(summary(h.explain('fromPod', p))).toEqual(dropped('DROP_UNASSIGNED'))
    expectCountedDrop('fromPod', p, Reason.DROP_UNASSIGNED)
  })

  it.each([
    ['network', '10.1.0.0'],
    ['broadcast', '10.1.0.255'],
  ])('drops a pod’s packet for the pod CIDR’s %s address', (_n, dst) => {
    expect(h.explain('fromPod', fromA({ dst })).reasonName).toBe('DROP_UNASSIGNED')
  })

  it('drops and counts a packet from the wire for an address of the pod CIDR that no pod has', () => {
    const p = fromWire({ dst: '10.1.0.77' })
    expect(summary(h.explain('fromNetdev', p))).toEqual(dropped('DROP_UNASSIGNED'))
    expectCountedDrop('fromNetdev', p, Reason.DROP_UNASSIGNED)
  })

  it('stops delivering to a pod’s address as soon as its endpoint is deleted', () => {
    expect(h.explain('fromNetdev', fromWire({ dst: POD_B.ip })).reasonName).toBe('FWD_LOCAL')
    h.maps.endpoints.delete(POD_B.ip)
    expect(h.explain('fromNetdev', fromWire({ dst: POD_B.ip })).reasonName).toBe('DROP_UNASSIGNED')
    expect(h.explain('fromPod', fromA({ dst: POD_B.ip })).reasonName).toBe('DROP_UNASSIGNED')
  })

  it('leaves addresses outside the pod CIDR to the stack', () => {
    expect(h.explain('fromNetdev', fromWire({ dst: '10.9.0.1' })).reasonName).toBe('FWD_PASS')
    expect(h.explain('fromPod', fromA({ dst: '10.9.0.1' })).reasonName).toBe('FWD_STACK')
  })
})

describe('pkt_type of what is delivered into a pod', () => {
  let tmp: string
  let probe: BpfObject
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'pnbpf-probe-'))
    const out = join(tmp, 'deliver_probe.bpf.o')
    const triple = execFileSync('gcc', ['-print-multiarch'], { encoding: 'utf8' }).trim()
    const bpfDir = join(here, '..', '..', 'bpf')
    execFileSync('clang', [
      '-O2',
      '-g',
      '-target',
      'bpf',
      ...(triple ? [`-I/usr/include/${triple}`] : []),
      `-I${join(bpfDir, 'include')}`,
      `-I${bpfDir}`,
      '-c',
      join(here, 'fixtures', 'deliver_probe.bpf.c'),
      '-o',
      out,
    ])
    probe = BpfObject.open(out)
    probe.load()
  })
  afterAll(() => {
    probe?.close()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  // A test run's eth_type_trans makes a frame not addressed to lo's MAC
  // PACKET_OTHERHOST, as the kernel VXLAN device makes a decapsulated frame
  // addressed to the sender's gateway MAC; redirect_peer keeps it before 6.15.
  it('delivers a frame that arrived as PACKET_OTHERHOST as PACKET_HOST', () => {
    const r = progTestRun(probe.program('pn_test_deliver_probe').fd(), {
      data: inner(),
      ctx: Buffer.alloc(192),
      repeat: 1,
      dataSizeOut: 512,
    })
    const cb = [0, 1, 2].map((i) => r.ctx!.readUInt32LE(48 + 4 * i))
    expect(r.retval).toBe(TC_ACT_REDIRECT)
    expect({ before: cb[0], after: cb[1], reason: cb[2] }).toEqual({ before: 3, after: 0, reason: Reason.FWD_LOCAL })
  })

  it('leaves a PACKET_HOST frame as it is', () => {
    const r = progTestRun(probe.program('pn_test_deliver_probe').fd(), {
      data: inner({ ethDst: NODE_MAC }),
      ctx: Buffer.alloc(192),
      repeat: 1,
      dataSizeOut: 512,
    })
    expect([0, 1].map((i) => r.ctx!.readUInt32LE(48 + 4 * i))).toEqual([0, 0])
  })
})

describe('drop events are rate-limited, counters are not', () => {
  it(`emits at most ${DROP_EVENTS_PER_SEC} drop events per second for one reason and still counts every drop`, () => {
    const n = DROP_EVENTS_PER_SEC * 4
    const p = fromA({ src: '10.1.0.66', dst: POD_B.ip })
    h.drainEvents()
    const delta = h.countersDuring(() => {
      for (let i = 0; i < n; i++) h.runCounted('fromPod', p)
    })
    expect(delta.get(`${Dir.FROM_POD}:${Reason.DROP_SPOOFED_SRC}`)?.packets).toBe(BigInt(n))
    const events = h.drainEvents().filter((e) => e.reason === Reason.DROP_SPOOFED_SRC)
    // the runs take a few ms; a one-second window may roll over once meanwhile
    expect(events.length).toBeGreaterThanOrEqual(DROP_EVENTS_PER_SEC)
    expect(events.length).toBeLessThanOrEqual(2 * DROP_EVENTS_PER_SEC)
  })

  it('keeps a separate budget per reason: a flood of one reason does not hide another', () => {
    const spoofed = fromA({ src: '10.1.0.66', dst: POD_B.ip })
    for (let i = 0; i < DROP_EVENTS_PER_SEC * 2; i++) h.runCounted('fromPod', spoofed)
    h.drainEvents()
    h.runCounted('fromPod', fromA({ dst: '10.1.0.77' }))
    expect(h.drainEvents()).toMatchObject([{ type: 'drop', reason: Reason.DROP_UNASSIGNED }])
  })

  it('reports drops again once the second is over', async () => {
    const p = fromA({ src: '10.1.0.66', dst: POD_B.ip })
    for (let i = 0; i < DROP_EVENTS_PER_SEC * 2; i++) h.runCounted('fromPod', p)
    h.runCounted('fromPod', p)
    h.drainEvents()
    await new Promise((r) => setTimeout(r, 1100))
    h.runCounted('fromPod', p)
    expect(h.drainEvents()).toMatchObject([{ type: 'drop', reason: Reason.DROP_SPOOFED_SRC }])
  })

  it('never limits forwarding traces or counters of forwarded packets', () => {
    h.maps.settings.monitorFlags = 1
    const p = fromA({ dst: POD_B.ip })
    const n = DROP_EVENTS_PER_SEC * 2
    for (let i = 0; i < n; i++) expect(h.runCounted('fromPod', p).verdict).toBe(TC_ACT_REDIRECT)
    expect(h.drainEvents().filter((e) => e.type === 'trace')).toHaveLength(n)
    h.maps.settings.monitorFlags = 0
  })
})
