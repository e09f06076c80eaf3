// SPDX-License-Identifier: Apache-2.0
// Hostile pods on a real lab (issue 12, items 1, 2, 4, 5, 6): pods with
// CAP_NET_RAW send hand-made VXLAN and VLAN-tagged frames from raw sockets
// (test/support/rawpkt.py), the underlay sends tagged and unassigned traffic,
// and a bulk TCP transfer must ride the BPF encapsulation. Each check asserts
// the drop counter and that nothing reached the target pod's listener.
// Own lab name prefix (pnbpf), own state dir: runs beside other suites.
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Dir, MONITOR_F_TRACE, Reason } from '../../src/datapath/abi.js'
import { DatapathMaps } from '../../src/datapath/maps.js'
import type { LabNode } from '../../src/services/lab/state.js'
import { NODE_DEVICE } from '../../src/services/lab/plan.js'
import type { NodeStatus } from '../../src/services/inspect/status.js'
import { spawnCli, waitForStderr } from '../support/inspect.js'
import { ROOT, sh, sleep } from '../support/sys.js'
import { labName, spawnAsync, TestLab } from './helpers.js'

const RAW = join(ROOT, 'test', 'support', 'rawpkt.py')
const PORT = 7477

/** rawpkt.py ARGS inside a namespace. */
async function raw(ns: string, args: string[]): Promise<void> {
  const r = await spawnAsync('ip', ['netns', 'exec', ns, 'python3', RAW, ...args]).done
  if (r.status !== 0) throw new Error(`rawpkt.py ${args.join(' ')} in ${ns} → ${r.status}\n${r.stderr}`)
}

/** A UDP listener in ns on ip:PORT; received() is what arrived so far. */
async function listener(ns: string, ip: string) {
  const s = spawnAsync('ip', ['netns', 'exec', ns, 'python3', RAW, 'listen', '--bind', ip, '--port', String(PORT), '--timeout', '30'])
  let out = ''
  s.child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  for (let i = 0; i < 100 && !out.includes('listening'); i++) await sleep(50)
  if (!out.includes('listening')) throw new Error(`listener in ${ns} did not start`)
  return {
    received: () => out.split('\n').filter((l) => l.startsWith('got ')),
    stop: () => s.child.kill('SIGTERM'),
  }
}

function macOf(ns: string, dev: string): string {
  return (JSON.parse(sh('ip', ['-n', ns, '-j', 'link', 'show', 'dev', dev]).stdout) as { address: string }[])[0]!.address
}

describe('hostile pods and underlay on a 2-node VXLAN lab', () => {
  const t = new TestLab(labName('pnbpf'))
  let n1: LabNode, n2: LabNode
  const pod = (name: string) => t.pod(name)
  const counter = (n: LabNode, dir: number, reason: number) => t.counter(n, dir, reason)

  beforeAll(async () => {
    await t.up(['--mode', 'vxlan', '--nodes', '2', '--pods-per-node', '2'])
    ;[n1, n2] = t.lab.nodes as [LabNode, LabNode]
  })
  afterAll(async () => {
    await t.forceCleanup()
  })

  /** Runs send() with a listener in node2-pod1; returns what it received (after a grace period). */
  async function intoNode2Pod1(send: () => Promise<void>): Promise<string[]> {
    const target = pod('node2-pod1')
    const l = await listener(target.ns, target.ip)
    try {
      await send()
      await sleep(500)
      return l.received()
    } finally {
      l.stop()
    }
  }

  it('delivers a well-formed datagram from a pod to node2-pod1 (the listener works)', async () => {
    const [a, b] = [pod('node1-pod1'), pod('node2-pod1')]
    const got = await intoNode2Pod1(() =>
      raw(a.ns, [
        'frame',
        '--ifname',
        'eth0',
        '--dst-mac',
        macOf(a.node.ns, a.hostIf),
        '--src',
        a.ip,
        '--dst',
        b.ip,
        '--dport',
        `${PORT}`,
        '--payload',
        'pnbpf-ok',
      ]),
    )
    expect(got).toContain(`got ${a.ip} pnbpf-ok`)
  })

  it("drops a pod's hand-made VXLAN to another node's VXLAN port at the pod, and nothing reaches the inner destination", async () => {
    const [a, b] = [pod('node1-pod1'), pod('node2-pod1')]
    const before = counter(n1, Dir.FROM_POD, Reason.DROP_POD_TO_VXLAN)
    const got = await intoNode2Pod1(() =>
      raw(a.ns, [
        'vxlan',
        ...['--outer-src', a.ip, '--outer-dst', n2.ip, '--inner-src', pod('node2-pod2').ip, '--inner-dst', b.ip],
        ...['--dport', `${PORT}`, '--payload', 'pnbpf-injected'],
      ]),
    )
    expect(got).toEqual([])
    expect(counter(n1, Dir.FROM_POD, Reason.DROP_POD_TO_VXLAN) - before).toBe(3n)
  })

  it('drops VXLAN on the wire from a sender that is not a peer node, and nothing reaches the pod', async () => {
    const b = pod('node2-pod1')
    const before = counter(n2, Dir.FROM_NETDEV, Reason.DROP_UNKNOWN_PEER)
    const stranger = n1.ip.replace(/\.\d+$/, '.250')
    const got = await intoNode2Pod1(() =>
      raw(n1.ns, [
        'vxlan',
        ...['--outer-src', stranger, '--outer-dst', n2.ip, '--inner-src', stranger, '--inner-dst', b.ip],
        ...['--dport', `${PORT}`, '--payload', 'pnbpf-stranger'],
      ]),
    )
    expect(got).toEqual([])
    expect(counter(n2, Dir.FROM_NETDEV, Reason.DROP_UNKNOWN_PEER) - before).toBe(3n)
  })

  it("drops VXLAN from a peer node whose inner source is not one of that peer's pods, and nothing reaches the pod", async () => {
    const b = pod('node2-pod1')
    const before = counter(n2, Dir.FROM_NETDEV, Reason.DROP_PEER_SPOOFED)
    const got = await intoNode2Pod1(() =>
      raw(n1.ns, [
        'vxlan',
        ...['--outer-src', n1.ip, '--outer-dst', n2.ip, '--inner-src', pod('node2-pod2').ip, '--inner-dst', b.ip],
        ...['--dport', `${PORT}`, '--payload', 'pnbpf-spoofed'],
      ]),
    )
    expect(got).toEqual([])
    expect(counter(n2, Dir.FROM_NETDEV, Reason.DROP_PEER_SPOOFED) - before).toBe(3n)
  })

  it.each([
    ['a sender that is not a peer node', 'stranger', Reason.DROP_UNKNOWN_PEER],
    ["a peer node with an inner source that is not one of that peer's pods", 'peer', Reason.DROP_PEER_SPOOFED],
  ])('drops VXLAN that the kernel device decapsulates (outer IP options) from %s, in from_overlay', async (_n, who, reason) => {
    const b = pod('node2-pod1')
    const src = who === 'peer' ? n1.ip : n1.ip.replace(/\.\d+$/, '.250')
    const before = counter(n2, Dir.FROM_OVERLAY, reason)
    const got = await intoNode2Pod1(() =>
      raw(n1.ns, [
        ...['vxlan', '--outer-options', '--outer-src', src, '--outer-dst', n2.ip, '--inner-src', pod('node2-pod2').ip],
        ...['--inner-dst', b.ip, '--dport', `${PORT}`, '--payload', 'pnbpf-kernel-path'],
      ]),
    )
    expect(got).toEqual([])
    expect(counter(n2, Dir.FROM_OVERLAY, reason) - before).toBe(3n)
  })

  it('delivers VXLAN that the kernel device decapsulates (outer IP options) from a peer node into the pod', async () => {
    const b = pod('node2-pod1')
    const before = counter(n2, Dir.FROM_OVERLAY, Reason.FWD_LOCAL)
    const got = await intoNode2Pod1(() =>
      raw(n1.ns, [
        ...['vxlan', '--outer-options', '--outer-src', n1.ip, '--outer-dst', n2.ip, '--inner-src', n1.ip],
        ...['--inner-dst', b.ip, '--dport', `${PORT}`, '--payload', 'pnbpf-fallback'],
      ]),
    )
    expect(got).toContain(`got ${n1.ip} pnbpf-fallback`)
    expect(counter(n2, Dir.FROM_OVERLAY, Reason.FWD_LOCAL) - before).toBe(3n)
  })

  it('still delivers VXLAN from a peer node for node-to-pod traffic (inner source the peer node)', async () => {
    const b = pod('node2-pod1')
    const got = await intoNode2Pod1(() =>
      raw(n1.ns, [
        'vxlan',
        ...['--outer-src', n1.ip, '--outer-dst', n2.ip, '--inner-src', n1.ip, '--inner-dst', b.ip],
        ...['--dport', `${PORT}`, '--payload', 'pnbpf-node'],
      ]),
    )
    expect(got).toContain(`got ${n1.ip} pnbpf-node`)
  })

  it('drops a VLAN-tagged frame from a pod (tag stripped by the kernel into metadata), and nothing reaches the destination', async () => {
    const [a, b] = [pod('node1-pod1'), pod('node2-pod1')]
    const before = counter(n1, Dir.FROM_POD, Reason.DROP_VLAN)
    const got = await intoNode2Pod1(() =>
      raw(a.ns, [
        ...['frame', '--ifname', 'eth0', '--vid', '5', '--dst-mac', macOf(a.node.ns, a.hostIf)],
        ...['--src', a.ip, '--dst', b.ip, '--dport', `${PORT}`, '--payload', 'pnbpf-tagged'],
      ]),
    )
    expect(got).toEqual([])
    expect(counter(n1, Dir.FROM_POD, Reason.DROP_VLAN) - before).toBe(3n)
  })

  it('does not deliver a VLAN-tagged frame arriving on the NIC into a pod', async () => {
    const b = pod('node2-pod1')
    const before = counter(n2, Dir.FROM_NETDEV, Reason.DROP_VLAN)
    const got = await intoNode2Pod1(() =>
      raw(n1.ns, [
        ...['frame', '--ifname', NODE_DEVICE, '--vid', '5', '--dst-mac', macOf(n2.ns, NODE_DEVICE)],
        ...['--src', n1.ip, '--dst', b.ip, '--dport', `${PORT}`, '--payload', 'pnbpf-wire-tagged'],
      ]),
    )
    expect(got).toEqual([])
    expect(counter(n2, Dir.FROM_NETDEV, Reason.DROP_VLAN) - before).toBe(3n)
  })

  it('delivers the same frame untagged from the NIC (only the tag makes the difference)', async () => {
    const b = pod('node2-pod1')
    const got = await intoNode2Pod1(() =>
      raw(n1.ns, [
        ...['frame', '--ifname', NODE_DEVICE, '--dst-mac', macOf(n2.ns, NODE_DEVICE)],
        ...['--src', n1.ip, '--dst', b.ip, '--dport', `${PORT}`, '--payload', 'pnbpf-wire'],
      ]),
    )
    expect(got).toContain(`got ${n1.ip} pnbpf-wire`)
  })

  it("drops a pod's traffic to an unassigned address of its node's pod CIDR", async () => {
    const a = pod('node1-pod1')
    const free = n1.podCidr.replace(/\.0\/\d+$/, '.200')
    const before = counter(n1, Dir.FROM_POD, Reason.DROP_UNASSIGNED)
    await raw(a.ns, [
      'frame',
      '--ifname',
      'eth0',
      '--dst-mac',
      macOf(a.node.ns, a.hostIf),
      '--src',
      a.ip,
      '--dst',
      free,
      '--dport',
      '9',
      '--payload',
      'x',
    ])
    expect(counter(n1, Dir.FROM_POD, Reason.DROP_UNASSIGNED) - before).toBe(3n)
  })

  it('drops traffic from the wire to an unassigned address of the pod CIDR instead of routing it back out', async () => {
    const free = n2.podCidr.replace(/\.0\/\d+$/, '.200')
    const before = counter(n2, Dir.FROM_NETDEV, Reason.DROP_UNASSIGNED)
    await raw(n1.ns, [
      'frame',
      '--ifname',
      NODE_DEVICE,
      '--dst-mac',
      macOf(n2.ns, NODE_DEVICE),
      '--src',
      n1.ip,
      '--dst',
      free,
      '--dport',
      '9',
      '--payload',
      'x',
    ])
    expect(counter(n2, Dir.FROM_NETDEV, Reason.DROP_UNASSIGNED) - before).toBe(3n)
  })

  it('carries a bulk TCP transfer (iperf3) almost entirely in the BPF encapsulation and decapsulation, not the stack fallbacks', async () => {
    const [a, b] = [pod('node1-pod1'), pod('node2-pod1')]
    const read = () => {
      const m1 = DatapathMaps.open(n1.pinDir)
      const m2 = DatapathMaps.open(n2.pinDir)
      try {
        const c1 = m1.metrics.read()
        const c2 = m2.metrics.read()
        const bytes = (cs: typeof c1, dir: number, reason: number) => cs.find((c) => c.dir === dir && c.reason === reason)?.bytes ?? 0n
        return {
          encap: bytes(c1, Dir.FROM_POD, Reason.FWD_VXLAN),
          decap: bytes(c2, Dir.FROM_NETDEV, Reason.FWD_DECAP),
          fallback:
            bytes(c1, Dir.FROM_POD, Reason.FWD_STACK_ENCAP) +
            bytes(c1, Dir.FROM_POD, Reason.FWD_STACK_MTU) +
            bytes(c1, Dir.TO_OVERLAY, Reason.FWD_ENCAP_STACK) +
            bytes(c2, Dir.FROM_OVERLAY, Reason.FWD_LOCAL),
        }
      } finally {
        m1.close()
        m2.close()
      }
    }
    const server = spawnAsync('ip', ['netns', 'exec', b.ns, 'iperf3', '-s', '-1', '-B', b.ip, '-p', '7478'])
    try {
      await sleep(500)
      const before = read()
      const size = 200 * 1024 * 1024
      const c = await spawnAsync('ip', ['netns', 'exec', a.ns, 'iperf3', '-c', b.ip, '-p', '7478', '-n', String(size), '-J']).done
      expect(c.status, c.stderr + c.stdout.slice(0, 2000)).toBe(0)
      await sleep(300) // iperf3 -n ends when the last byte is written, not delivered
      const after = read()
      const d = { encap: after.encap - before.encap, decap: after.decap - before.decap, fallback: after.fallback - before.fallback }
      console.log(`bulk TCP ${size} bytes: BPF encap ${d.encap} B, BPF decap ${d.decap} B, stack fallbacks ${d.fallback} B`)
      // counted bytes include headers; a few MB may still sit in socket buffers when the client exits
      expect(d.encap).toBeGreaterThanOrEqual((BigInt(size) * 95n) / 100n)
      expect(d.decap).toBeGreaterThanOrEqual((BigInt(size) * 95n) / 100n)
      expect(d.fallback).toBeLessThan(BigInt(size / 100))
    } finally {
      server.child.kill('SIGTERM')
    }
  })

  it('turns off tracing that a SIGKILLed `monitor --type trace` left on, at the next `status`', async () => {
    const settings = () => {
      const m = DatapathMaps.open(n1.pinDir)
      try {
        return m.settings.monitorFlags & MONITOR_F_TRACE
      } finally {
        m.close()
      }
    }
    const mon = spawnCli(n1.ns, ['monitor', '--type', 'trace', '--pin-dir', n1.pinDir], { PODNET_STATE_DIR: t.env.PODNET_STATE_DIR! })
    await waitForStderr(mon, 'tracing on')
    expect(settings()).toBe(MONITOR_F_TRACE)
    mon.proc.kill('SIGKILL')
    await mon.wait(5000)
    expect(settings(), 'still on after the SIGKILL (nothing ran its cleanup)').toBe(MONITOR_F_TRACE)
    const s = await t.cliJson<NodeStatus>(n1, ['status'])
    expect(s.tracing).toEqual({ on: false, orphanCleared: true })
    expect(settings()).toBe(0)
  })

  it('turns off tracing that a SIGKILLed monitor left on when the next monitor starts, but keeps a live tracer’s', async () => {
    const settings = () => {
      const m = DatapathMaps.open(n1.pinDir)
      try {
        return m.settings.monitorFlags & MONITOR_F_TRACE
      } finally {
        m.close()
      }
    }
    const env = { PODNET_STATE_DIR: t.env.PODNET_STATE_DIR! }
    const dead = spawnCli(n1.ns, ['monitor', '--type', 'trace', '--pin-dir', n1.pinDir], env)
    await waitForStderr(dead, 'tracing on')
    dead.proc.kill('SIGKILL')
    await dead.wait(5000)
    const drops = spawnCli(n1.ns, ['monitor', '--type', 'drop', '--pin-dir', n1.pinDir], env)
    await waitForStderr(drops, 'monitoring drops')
    expect(settings()).toBe(0)
    // a live tracer keeps tracing on through another monitor's start and a status
    const live = spawnCli(n1.ns, ['monitor', '--type', 'trace', '--pin-dir', n1.pinDir], env)
    await waitForStderr(live, 'tracing on')
    const other = spawnCli(n1.ns, ['monitor', '--type', 'drop', '--pin-dir', n1.pinDir], env)
    await waitForStderr(other, 'monitoring drops')
    expect((await t.cliJson<NodeStatus>(n1, ['status'])).tracing).toEqual({ on: true, orphanCleared: false })
    expect(settings()).toBe(MONITOR_F_TRACE)
    await other.stop()
    await drops.stop()
    await live.stop()
    expect(settings()).toBe(0)
  })
})
