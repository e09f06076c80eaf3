// The end-to-end suite (issue 4), run once per mode on a 3-node lab with 2
// pods per node brought up by `podnet-bpf lab up`. In auto mode node3 sits
// behind the lab's router (another subnet), so auto must pick VXLAN for it
// and direct routing between node1 and node2.
import { existsSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Dir, Reason } from '../../src/datapath/abi.js'
import { DatapathMaps } from '../../src/datapath/maps.js'
import type { RouteView, SyncResult } from '../../src/services/routes.js'
import type { LabNode } from '../../src/services/lab/state.js'
import { sh, sleep } from '../support/sys.js'
import { tempDir } from '../support/tmp.js'
import { capture, peerAddressSeen, hookPrograms } from '../support/traffic.js'
import { floodPing, labName, pingA, spawnAsync, tcpStream, tcpTransfer, TestLab } from './helpers.js'

type Mode = 'direct' | 'vxlan' | 'auto'

/** The path node1 must take to node2 and node3 in each mode. */
const EXPECTED: Record<Mode, { node2: 'direct' | 'vxlan'; node3: 'direct' | 'vxlan' }> = {
  direct: { node2: 'direct', node3: 'direct' },
  vxlan: { node2: 'vxlan', node3: 'vxlan' },
  auto: { node2: 'direct', node3: 'vxlan' },
}

/** Re-attach alternates each node between its mode and one that keeps every
 * peer reachable: a node in direct mode has no VXLAN device, so nothing may
 * send it VXLAN. direct ↔ auto (peers on-link: auto still routes directly,
 * but the VXLAN device and overlay programs come and go); vxlan ↔ auto and
 * auto ↔ vxlan (every peer keeps its VXLAN device, and from_netdev delivers
 * directly routed packets in every mode). */
const ALT_MODE: Record<Mode, Mode> = { direct: 'auto', vxlan: 'auto', auto: 'vxlan' }

export function e2eSuite(mode: Mode): void {
  describe(`lab in ${mode} mode (3 nodes × 2 pods)`, () => {
    const t = new TestLab(labName(mode.slice(0, 1) + 'e'))
    let n1: LabNode, n2: LabNode, n3: LabNode
    const pod = (name: string) => t.pod(name)

    beforeAll(async () => {
      await t.up(['--mode', mode, '--nodes', '3', '--pods-per-node', '2'])
      ;[n1, n2, n3] = t.lab.nodes as [LabNode, LabNode, LabNode]
      console.log(`[${mode}] lab up: ${t.upSeconds.toFixed(2)}s (CLI wall time)`)
    })

    afterAll(async () => {
      await t.forceCleanup()
    })

    it(`chooses ${EXPECTED[mode].node2} to node2 and ${EXPECTED[mode].node3} to node3`, async () => {
      expect(t.encap(n1, n2)).toBe(EXPECTED[mode].node2)
      expect(t.encap(n1, n3)).toBe(EXPECTED[mode].node3)
      expect(t.encap(n3, n1)).toBe(EXPECTED[mode].node3)
      if (mode === 'auto') expect(n3.subnet).not.toBe(n1.subnet)
      // the lab's table is what the node's datapath really holds
      const routes = await t.cliJson<RouteView[]>(n1, ['routes', 'list'])
      expect(routes.map((r) => [r.cidr, r.encap])).toEqual([
        [n2.podCidr, EXPECTED[mode].node2],
        [n3.podCidr, EXPECTED[mode].node3],
      ])
    })

    it('gives every pod the pod contract: one /32 on eth0, gateway 169.254.1.1, pod MTU, no IPv6', async () => {
      const p = pod('node1-pod1')
      const link = JSON.parse(sh('ip', ['-n', p.ns, '-j', 'addr', 'show', 'dev', 'eth0']).stdout)[0]
      expect(link.mtu).toBe(n1.podMtu)
      expect(n1.podMtu).toBe(mode === 'direct' ? 1500 : 1450)
      expect(
        link.addr_info.map((a: { local: string; prefixlen: number; family: string }) => `${a.family} ${a.local}/${a.prefixlen}`),
      ).toEqual([`inet ${p.ip}/32`])
      expect(sh('ip', ['-n', p.ns, 'route', 'show', 'default']).stdout).toContain('via 169.254.1.1 dev eth0')
    })

    describe.each([
      ['node1-pod1', 'node2-pod1'],
      ['node1-pod1', 'node3-pod2'],
    ])('%s ↔ %s', (a, b) => {
      it('carries ICMP both ways', async () => {
        expect((await pingA(pod(a).ns, pod(b).ip)).status).toBe(0)
        expect((await pingA(pod(b).ns, pod(a).ip)).status).toBe(0)
      })

      it("carries TCP and UDP both ways and the receiver sees the sender's pod IP", async () => {
        const [pa, pb] = [pod(a), pod(b)]
        expect(await peerAddressSeen('tcp', pb.ns, pb.ip, pa.ns)).toBe(pa.ip)
        expect(await peerAddressSeen('tcp', pa.ns, pa.ip, pb.ns)).toBe(pb.ip)
        expect(await peerAddressSeen('udp', pb.ns, pb.ip, pa.ns)).toBe(pa.ip)
        expect(await peerAddressSeen('udp', pa.ns, pa.ip, pb.ns)).toBe(pb.ip)
      })

      it('forwards in the BPF programs on the chosen path (counters)', async () => {
        const [pa, pb] = [pod(a), pod(b)]
        const vx = t.encap(pa.node, pb.node) === 'vxlan'
        const fwd = () => t.counter(pa.node, Dir.FROM_POD, vx ? Reason.FWD_VXLAN : Reason.FWD_DIRECT)
        // VXLAN is decapsulated on the receiving NIC too: from_netdev, not the kernel's VXLAN device
        const local = () => t.counter(pb.node, Dir.FROM_NETDEV, vx ? Reason.FWD_DECAP : Reason.FWD_LOCAL)
        const overlay = () => t.counter(pb.node, Dir.FROM_OVERLAY, Reason.FWD_LOCAL)
        const [f0, l0, o0] = [fwd(), local(), overlay()]
        expect((await pingA(pa.ns, pb.ip, { count: 3 })).status).toBe(0)
        expect(fwd() - f0).toBeGreaterThanOrEqual(3n)
        expect(local() - l0).toBeGreaterThanOrEqual(3n)
        expect(overlay() - o0).toBe(0n)
      })

      it('shows on the underlay only UDP 8472 between node IPs for VXLAN, the pod IPs for direct', async () => {
        const [pa, pb] = [pod(a), pod(b)]
        const vx = t.encap(pa.node, pb.node) === 'vxlan'
        // node1's port on the underlay bridge, in the underlay namespace
        const lines = await capture(t.lab.underlayNs, pa.node.underlayPort, ['icmp or udp'], () => pingA(pa.ns, pb.ip, { count: 3 }))
        const outer = lines.filter((l) => /^\d/.test(l))
        expect(outer.length).toBeGreaterThanOrEqual(6)
        const nodeIps = `(${pa.node.ip}|${pb.node.ip})`.replace(/\./g, '\\.')
        if (vx) {
          for (const l of outer) expect(l).toMatch(new RegExp(` IP ${nodeIps}\\.\\d+ > ${nodeIps}\\.8472: `))
          // tcpdump decodes the inner packet on its own line
          expect(lines.some((l) => l.includes(`IP ${pa.ip} > ${pb.ip}: ICMP echo request`))).toBe(true)
        } else {
          expect(outer.some((l) => l.includes(` IP ${pa.ip} > ${pb.ip}: ICMP echo request`))).toBe(true)
          expect(outer.some((l) => l.includes(` IP ${pb.ip} > ${pa.ip}: ICMP echo reply`))).toBe(true)
          expect(lines.some((l) => l.includes('.8472'))).toBe(false)
        }
      })

      it('carries a 10 MB TCP transfer intact (SHA-256 compared)', async () => {
        const [pa, pb] = [pod(a), pod(b)]
        const r = await tcpTransfer(pb.ns, pb.ip, pa.ns, 10 * 1024 * 1024)
        expect(r.server.bytes).toBe(10 * 1024 * 1024)
        expect(r.server.sha256).toBe(r.sha256)
        expect(r.server.peer).toBe(pa.ip)
      })

      it('passes a DF ping of the largest size the pod MTU allows, and not one byte more', async () => {
        const [pa, pb] = [pod(a), pod(b)]
        const max = pa.node.podMtu! - 28
        expect((await pingA(pa.ns, pb.ip, { size: max, df: true, count: 3 })).status).toBe(0)
        expect((await pingA(pb.ns, pa.ip, { size: max, df: true, count: 3 })).status).toBe(0)
        const over = await pingA(pa.ns, pb.ip, { size: max + 1, df: true, count: 1 })
        expect(over.status).not.toBe(0)
      })
    })

    it('delivers between pods on the same node (redirect_peer, counted as local)', async () => {
      const [p11, p12] = [pod('node1-pod1'), pod('node1-pod2')]
      const before = t.counter(n1, Dir.FROM_POD, Reason.FWD_LOCAL)
      expect(await peerAddressSeen('tcp', p12.ns, p12.ip, p11.ns)).toBe(p11.ip)
      expect(await peerAddressSeen('udp', p11.ns, p11.ip, p12.ns)).toBe(p12.ip)
      expect((await pingA(p11.ns, p12.ip)).status).toBe(0)
      expect(t.counter(n1, Dir.FROM_POD, Reason.FWD_LOCAL) - before).toBeGreaterThanOrEqual(4n)
      // redirect_peer puts the packet straight into the pod: the host-side
      // veths transmit nothing (a plain redirect would transmit on them)
      const tx = () => [p11, p12].map((p) => hostTxPackets(n1.ns, p.hostIf))
      const tx0 = tx()
      expect((await pingA(p11.ns, p12.ip, { count: 20 })).status).toBe(0)
      const tx1 = tx()
      expect(tx1[0]! - tx0[0]!, 'host veth of the sender').toBeLessThan(3)
      expect(tx1[1]! - tx0[1]!, 'host veth of the receiver').toBeLessThan(3)
    })

    it('lets a node reach its local pods and remote pods', async () => {
      for (const p of ['node1-pod1', 'node1-pod2', 'node2-pod1', 'node3-pod1']) expect((await pingA(n1.ns, pod(p).ip)).status, p).toBe(0)
      expect((await pingA(n3.ns, pod('node1-pod2').ip)).status).toBe(0)
    })

    it('lets a pod reach every node', async () => {
      for (const n of [n1, n2, n3]) expect((await pingA(pod('node1-pod1').ns, n.ip)).status, n.name).toBe(0)
      expect((await pingA(pod('node3-pod1').ns, n1.ip)).status).toBe(0)
    })

    it('stops traffic to a CIDR when its route is deleted (counted as passed to the stack) and restores it on re-add', async () => {
      const [p11, p21] = [pod('node1-pod1'), pod('node2-pod1')]
      const vx = t.encap(n1, n2) === 'vxlan'
      const stack0 = t.counter(n1, Dir.FROM_POD, Reason.FWD_STACK)
      const del = await t.cli(n1, ['routes', 'del', n2.podCidr])
      expect(del.status, del.stderr).toBe(0)
      try {
        expect((await pingA(p11.ns, p21.ip, { count: 3, timeoutS: 1 })).status).not.toBe(0)
        expect((await pingA(n1.ns, p21.ip, { count: 1, timeoutS: 1 })).status).not.toBe(0)
        // with no route the pod's packets go to the host stack (which has no route either)
        expect(t.counter(n1, Dir.FROM_POD, Reason.FWD_STACK) - stack0).toBeGreaterThanOrEqual(3n)
        // the other peer is untouched
        expect((await pingA(p11.ns, pod('node3-pod1').ip, { count: 1 })).status).toBe(0)
      } finally {
        const add = await t.cli(n1, ['routes', 'add', n2.podCidr, '--node-ip', n2.ip])
        expect(add.status, add.stderr).toBe(0)
      }
      const fwd0 = t.counter(n1, Dir.FROM_POD, vx ? Reason.FWD_VXLAN : Reason.FWD_DIRECT)
      expect((await pingA(p11.ns, p21.ip, { count: 3 })).status).toBe(0)
      expect(t.counter(n1, Dir.FROM_POD, vx ? Reason.FWD_VXLAN : Reason.FWD_DIRECT) - fwd0).toBeGreaterThanOrEqual(3n)
      expect((await t.cliJson<RouteView[]>(n1, ['routes', 'list'])).find((r) => r.cidr === n2.podCidr)?.encap).toBe(EXPECTED[mode].node2)
    })

    it("drops and counts packets from a pod whose source IP is not the pod's", async () => {
      const p11 = pod('node1-pod1')
      const before = t.counter(n1, Dir.FROM_POD, Reason.DROP_SPOOFED_SRC)
      const fake = n1.podCidr.replace(/0\/24$/, '99')
      sh('ip', ['-n', p11.ns, 'addr', 'add', `${fake}/32`, 'dev', 'eth0'])
      try {
        expect((await pingA(p11.ns, pod('node2-pod1').ip, { src: fake, count: 3, timeoutS: 1 })).status).not.toBe(0)
        expect((await pingA(p11.ns, pod('node3-pod1').ip, { src: fake, count: 2, timeoutS: 1 })).status).not.toBe(0)
      } finally {
        sh('ip', ['-n', p11.ns, 'addr', 'del', `${fake}/32`, 'dev', 'eth0'])
      }
      expect(t.counter(n1, Dir.FROM_POD, Reason.DROP_SPOOFED_SRC) - before).toBeGreaterThanOrEqual(5n)
      expect((await pingA(p11.ns, pod('node2-pod1').ip)).status).toBe(0)
    })

    it(`re-attaches 10 times (switching ${mode} ↔ ${ALT_MODE[mode]}) under a 1,000 pps ping and a TCP stream: no lost ping, no reset`, async () => {
      const [p11, p12, p21, p31] = [pod('node1-pod1'), pod('node1-pod2'), pod('node2-pod1'), pod('node3-pod1')]
      const flood = floodPing(p11.ns, p21.ip)
      const flood3 = floodPing(p31.ns, pod('node2-pod2').ip, 0.005)
      const stream = await tcpStream(p31.ns, p31.ip, p12.ns, 7100, 16_384, 10)
      const actions: string[] = []
      try {
        await sleep(300)
        // node1 and node2 in turn: alt, alt, own, own, alt, alt, own, own, then the same arguments again (no change)
        const plan: [LabNode, Mode][] = [
          [n1, ALT_MODE[mode]],
          [n2, ALT_MODE[mode]],
          [n1, mode],
          [n2, mode],
          [n1, ALT_MODE[mode]],
          [n2, ALT_MODE[mode]],
          [n1, mode],
          [n2, mode],
          [n1, mode],
          [n2, mode],
        ]
        for (const [node, m] of plan) {
          const r = await t.cli(node, [
            'attach',
            '--node-ip',
            node.ip,
            '--pod-cidr',
            node.podCidr,
            '--device',
            'eth0',
            '--mode',
            m,
            '--json',
          ])
          expect(r.status, r.stderr).toBe(0)
          actions.push(`${node.name}:${m}:${(JSON.parse(r.stdout) as { action: string }).action}`)
          await sleep(100)
        }
        await sleep(300)
      } finally {
        const [f, f3, s] = [await flood.stop(), await flood3.stop(), await stream.stop()]
        console.log(
          `[${mode}] re-attach: ${actions.join(' ')}\n  ping ${p11.name}→${p21.name}: ${f.summary} (lost seqs ${JSON.stringify(f.lost.slice(0, 20))})\n  ping ${p31.name}→node2-pod2: ${f3.summary}\n  stream ${p12.name}→${p31.name}: sent ${s.sent} received ${s.received} error ${s.error}`,
        )
        expect(f.maxSeq).toBeGreaterThan(2000)
        expect(f.lost).toEqual([])
        expect(f3.lost).toEqual([])
        expect(s.error).toBeNull()
        expect(s.received).toBe(s.sent)
        expect(s.sent).toBeGreaterThan(500_000)
        expect(s.peer).toBe(p12.ip)
      }
      expect(actions.filter((a) => a.endsWith(':replaced'))).toHaveLength(8)
      expect(actions.slice(8).every((a) => a.endsWith(':unchanged'))).toBe(true)
      expect((await t.cliJson<RouteView[]>(n1, ['routes', 'list'])).map((r) => r.encap)).toEqual([
        EXPECTED[mode].node2,
        EXPECTED[mode].node3,
      ])
    })

    it('keeps forwarding when the control plane is SIGKILLed in the middle of `routes sync`, and a re-run converges', async () => {
      const [p11, p21, p31] = [pod('node1-pod1'), pod('node2-pod1'), pod('node3-pod1')]
      const dir = tempDir('pnlab-sync-')
      const peers = [
        { cidr: n2.podCidr, nodeIp: n2.ip },
        { cidr: n3.podCidr, nodeIp: n3.ip },
      ]
      const extra = Array.from({ length: 500 }, (_, k) => ({ cidr: `10.${100 + (k >> 8)}.${k & 255}.0/24`, nodeIp: n2.ip }))
      const big = join(dir, 'big.json')
      const small = join(dir, 'peers.json')
      writeFileSync(big, JSON.stringify([...peers, ...extra]))
      writeFileSync(small, JSON.stringify(peers))
      const lastCidr = extra.at(-1)!.cidr

      const maps = DatapathMaps.open(n1.pinDir)
      let seen: { mapWritten: boolean; kernelRoutes: number }
      try {
        const run = spawnAsync('nsenter', t.nodeArgs(n1, ['routes', 'sync', '--file', big]), t.env)
        // kill as soon as the map is written: kernel routes and state come after
        const deadline = performance.now() + 30_000
        while (!maps.routes.get(lastCidr) && performance.now() < deadline) await sleep(1)
        run.child.kill('SIGKILL')
        const r = await run.done
        expect(r.signal, `sync finished before it could be killed: ${r.stdout}`).toBe('SIGKILL')
        seen = {
          mapWritten: maps.routes.get(lastCidr) !== null,
          kernelRoutes: sh('ip', ['-n', n1.ns, 'route', 'show', 'proto', '112']).stdout.split('\n').filter(Boolean).length,
        }
      } finally {
        maps.close()
      }
      console.log(`[${mode}] routes sync SIGKILLed: map written ${seen.mapWritten}, kernel routes at kill ${seen.kernelRoutes}`)
      await sleep(200) // the orphaned `ip -batch` may still be finishing

      expect((await pingA(p11.ns, p21.ip, { count: 2 })).status).toBe(0)
      expect((await pingA(p11.ns, p31.ip, { count: 2 })).status).toBe(0)
      expect((await pingA(p21.ns, p11.ip, { count: 2 })).status).toBe(0)

      const again = await t.cliJson<SyncResult>(n1, ['routes', 'sync', '--file', big])
      expect(again.added + again.changed + again.unchanged).toBe(502)
      const listed = await t.cliJson<RouteView[]>(n1, ['routes', 'list'])
      expect(listed).toHaveLength(502)
      const kernel = sh('ip', ['-n', n1.ns, 'route', 'show', 'proto', '112']).stdout
      for (const c of [n2.podCidr, n3.podCidr, extra[0]!.cidr, lastCidr]) expect(kernel).toContain(c)
      expect(kernel.split('\n').filter((l) => l.startsWith('10.') && l.split(' ')[0]!.endsWith('/24'))).toHaveLength(502)

      const back = await t.cliJson<SyncResult>(n1, ['routes', 'sync', '--file', small])
      expect(back).toMatchObject({ removed: 500, added: 0 })
      expect((await t.cliJson<RouteView[]>(n1, ['routes', 'list'])).map((r) => [r.cidr, r.encap])).toEqual([
        [n2.podCidr, EXPECTED[mode].node2],
        [n3.podCidr, EXPECTED[mode].node3],
      ])
      const kernelAfter = sh('ip', ['-n', n1.ns, 'route', 'show', 'proto', '112']).stdout.split('\n').filter(Boolean)
      expect(kernelAfter.map((l) => l.split(' ')[0]).sort()).toEqual(
        [pod('node1-pod1').ip, pod('node1-pod2').ip, n2.podCidr, n3.podCidr].sort(),
      )
      expect((await pingA(p11.ns, p21.ip, { count: 2 })).status).toBe(0)
      expect((await pingA(p11.ns, p31.ip, { count: 2 })).status).toBe(0)
    })

    it('detach leaves no tc filters, pins, VXLAN device or routes on any node', async () => {
      for (const n of t.lab.nodes) {
        // present before, so the checks below are not vacuous
        expect(hookPrograms(n.ns, 'eth0', 'ingress')).toContain('pn_from_netdev')
        expect(existsSync(n.pinDir)).toBe(true)
        const r = await t.cli(n, ['detach'])
        expect(r.status, r.stderr).toBe(0)
      }
      for (const n of t.lab.nodes) {
        expect(hookPrograms(n.ns, 'eth0', 'ingress')).toBe('')
        expect(hookPrograms(n.ns, 'eth0', 'egress')).toBe('')
        for (const p of n.pods) expect(hookPrograms(n.ns, p.hostIf, 'ingress'), p.hostIf).toBe('')
        expect(sh('ip', ['-n', n.ns, 'link', 'show', 'podnet_vxlan']).status).not.toBe(0)
        expect(sh('ip', ['-n', n.ns, 'route', 'show', 'proto', '112']).stdout.trim()).toBe('')
        expect(existsSync(n.pinDir)).toBe(false)
        expect(sh('ip', ['-n', n.ns, '-d', 'link', 'show']).stdout).not.toContain('vxlan')
      }
    })

    it('lab down leaves no namespaces, pins, state files, or anything in the host namespace', async () => {
      const r = await t.down()
      expect(r.status, r.stderr).toBe(0)
      expect(t.leftovers()).toEqual([])
      const stateDir = t.env.PODNET_STATE_DIR!
      const files = existsSync(stateDir) ? readdirSync(stateDir, { recursive: true }).map(String) : []
      expect(files.filter((f) => f.endsWith('.json'))).toEqual([])
      // nothing of the lab leaked into the host namespace
      expect(sh('ip', ['route', 'show', 'proto', '112']).stdout.trim()).toBe('')
      const hostLinks = sh('ip', ['-o', 'link', 'show']).stdout
      expect(hostLinks).not.toMatch(/: (podnet_vxlan|pn[0-9a-f]{11}|br-[ab]|rtr-[ab])[@:]/)
      expect(sh('ip', ['-4', 'addr', 'show']).stdout).not.toMatch(/inet (192\.168\.(77|88)\.|10\.244\.)/)
      expect((await t.down()).stdout).toContain('nothing to remove')
    })
  })
}

/** TX packets of a device in a namespace (iproute2's 64-bit counters). */
function hostTxPackets(ns: string, dev: string): number {
  const r = sh('ip', ['-n', ns, '-s', '-j', 'link', 'show', 'dev', dev])
  if (r.status !== 0) throw new Error(`ip -s link show ${dev} in ${ns}: ${r.stderr}`)
  return (JSON.parse(r.stdout) as { stats64: { tx: { packets: number } } }[])[0]!.stats64.tx.packets
}
