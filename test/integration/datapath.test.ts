// Issue 2 acceptance: two node namespaces, pods per the pod contract, every
// command run as `nsenter --net=/run/netns/NODE podnet-bpf … --pin-dir DIR`.
import { existsSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DatapathMaps } from '../../src/datapath/maps.js'
import { Dir, Reason } from '../../src/datapath/abi.js'
import { cli, cliJson, runId, sh, tempStateDir } from '../support/sys.js'
import { TwoNodes, type Pod } from '../support/topology.js'
import { capture, peerAddressSeen, ping, hookPrograms } from '../support/traffic.js'

function counter(pinDir: string, dir: number, reason: number): bigint {
  const m = DatapathMaps.open(pinDir)
  try {
    return m.metrics.read().find((c) => c.dir === dir && c.reason === reason)?.packets ?? 0n
  } finally {
    m.close()
  }
}

describe.each(['direct', 'vxlan'] as const)('two nodes in %s mode', (mode) => {
  const topo = new TwoNodes(runId('pnt'))
  const env = { PODNET_STATE_DIR: tempStateDir() }
  const [n1, n2] = topo.nodes as [(typeof topo.nodes)[0], (typeof topo.nodes)[0]]
  let p11: Pod, p12: Pod, p21: Pod
  let detached = false

  beforeAll(() => {
    topo.up()
    const mtus: number[] = []
    for (const n of topo.nodes) {
      const r = cliJson<{ podMtu: number; action: string }>(
        n.ns,
        ['attach', '--node-ip', n.ip, '--pod-cidr', n.podCidr, '--device', 'eth0', '--mode', mode, '--pin-dir', n.pinDir],
        env,
      )
      expect(r.action).toBe('attached')
      mtus.push(r.podMtu)
    }
    expect(mtus[0]).toBe(mode === 'vxlan' ? 1450 : 1500)
    p11 = topo.addPod(n1, 1, mtus[0]!)
    p12 = topo.addPod(n1, 2, mtus[0]!)
    p21 = topo.addPod(n2, 1, mtus[1]!)
    for (const p of topo.pods) cliJson(p.node.ns, ['endpoints', 'add', '--ip', p.ip, '--ifname', p.hostIf, '--pin-dir', p.node.pinDir], env)
    cliJson(n1.ns, ['routes', 'add', n2.podCidr, '--node-ip', n2.ip, '--pin-dir', n1.pinDir], env)
    cliJson(n2.ns, ['routes', 'add', n1.podCidr, '--node-ip', n1.ip, '--pin-dir', n2.pinDir], env)
  })

  afterAll(() => {
    if (!detached) for (const n of topo.nodes) cli(n.ns, ['detach', '--pin-dir', n.pinDir], env)
    topo.down()
    for (const n of topo.nodes) sh('rm', ['-rf', n.pinDir])
  })

  it('carries TCP from a pod on node1 to a pod on node2 and the listener sees the client pod IP', async () => {
    expect(await peerAddressSeen('tcp', p21.ns, p21.ip, p11.ns)).toBe(p11.ip)
    expect(await peerAddressSeen('tcp', p11.ns, p11.ip, p21.ns)).toBe(p21.ip)
  })

  it('carries UDP and ICMP across nodes without NAT', async () => {
    expect(await peerAddressSeen('udp', p21.ns, p21.ip, p12.ns)).toBe(p12.ip)
    expect(ping(p21.ns, p12.ip).status).toBe(0)
  })

  it(
    mode === 'direct' ? 'puts the pod IPs themselves on the underlay' : 'puts only UDP 8472 between node IPs on the underlay',
    async () => {
      const lines = await capture(n1.ns, 'eth0', ['-c', '8', 'icmp or udp port 8472'], () => ping(p11.ns, p21.ip, { count: 3 }))
      expect(lines.length).toBeGreaterThan(0)
      if (mode === 'direct') {
        expect(lines.some((l) => l.includes(`${p11.ip} > ${p21.ip}: ICMP echo request`))).toBe(true)
        expect(lines.some((l) => l.includes('.8472'))).toBe(false)
      } else {
        // outer headers start with a timestamp; tcpdump prints the decoded inner packet on its own line
        const outer = lines.filter((l) => /^\d/.test(l))
        expect(outer.length).toBeGreaterThan(0)
        for (const l of outer) expect(l).toMatch(/ 192\.168\.77\.[12]\.\d+ > 192\.168\.77\.[12]\.8472: /)
        expect(lines.some((l) => l.startsWith(`IP ${p11.ip} > ${p21.ip}: ICMP echo request`))).toBe(true)
      }
    },
  )

  it('delivers between pods on the same node', async () => {
    expect(await peerAddressSeen('tcp', p12.ns, p12.ip, p11.ns)).toBe(p11.ip)
    expect(counter(n1.pinDir, Dir.FROM_POD, Reason.FWD_LOCAL)).toBeGreaterThan(0n)
  })

  it('lets a node reach its local pod and a remote pod', () => {
    expect(ping(n1.ns, p11.ip).status).toBe(0)
    expect(ping(n1.ns, p21.ip).status).toBe(0)
  })

  it('lets a pod reach either node', () => {
    expect(ping(p11.ns, n1.ip).status).toBe(0)
    expect(ping(p11.ns, n2.ip).status).toBe(0)
  })

  it("answers ICMP time exceeded from the receiving node when a packet's TTL runs out there", () => {
    // TTL 2: node1 forwards it with TTL 1, node2 must not deliver it but say so
    const r = sh('ip', ['netns', 'exec', p11.ns, 'ping', '-n', '-c', '1', '-W', '2', '-t', '2', p21.ip])
    expect(r.stdout).toMatch(new RegExp(`From ${n2.ip.replace(/\./g, '\\.')} .*Time to live exceeded`))
    // VXLAN too: from_netdev decapsulates it and hands the inner packet to the stack
    expect(counter(n2.pinDir, Dir.FROM_NETDEV, Reason.FWD_STACK_TTL)).toBeGreaterThan(0n)
  })

  it('forwarded cross-node packets through the BPF path, not the kernel', () => {
    expect(counter(n1.pinDir, Dir.FROM_POD, mode === 'direct' ? Reason.FWD_DIRECT : Reason.FWD_VXLAN)).toBeGreaterThan(0n)
    expect(counter(n2.pinDir, Dir.FROM_NETDEV, mode === 'direct' ? Reason.FWD_LOCAL : Reason.FWD_DECAP)).toBeGreaterThan(0n)
    // VXLAN for local pods is decapsulated on the NIC: the kernel's device never sees it
    if (mode === 'vxlan') expect(counter(n2.pinDir, Dir.FROM_OVERLAY, Reason.FWD_LOCAL)).toBe(0n)
  })

  it("drops and counts a packet whose source IP is not the pod's", () => {
    const before = counter(n1.pinDir, Dir.FROM_POD, Reason.DROP_SPOOFED_SRC)
    sh('ip', ['-n', p11.ns, 'addr', 'add', '10.244.1.99/32', 'dev', 'eth0'])
    const r = ping(p11.ns, p21.ip, { src: '10.244.1.99', count: 3, timeoutS: 1 })
    sh('ip', ['-n', p11.ns, 'addr', 'del', '10.244.1.99/32', 'dev', 'eth0'])
    expect(r.status).not.toBe(0)
    expect(counter(n1.pinDir, Dir.FROM_POD, Reason.DROP_SPOOFED_SRC) - before).toBeGreaterThanOrEqual(3n)
  })

  it('detach on both nodes leaves no tc filters, pins or VXLAN device', () => {
    for (const n of topo.nodes) {
      const r = cli(n.ns, ['detach', '--pin-dir', n.pinDir], env)
      expect(r.status, r.stderr).toBe(0)
    }
    detached = true
    for (const n of topo.nodes) {
      expect(hookPrograms(n.ns, 'eth0', 'ingress')).toBe('')
      expect(existsSync(n.pinDir)).toBe(false)
      expect(sh('ip', ['-n', n.ns, 'link', 'show', 'podnet_vxlan']).status).not.toBe(0)
      expect(sh('ip', ['-n', n.ns, 'route', 'show', 'proto', '112']).stdout.trim()).toBe('')
    }
    for (const p of topo.pods) expect(hookPrograms(p.node.ns, p.hostIf, 'ingress')).toBe('')
    // and a second detach says so and succeeds
    const again = cli(n1.ns, ['detach', '--pin-dir', n1.pinDir], env)
    expect(again.status).toBe(0)
    expect(again.stdout).toContain('nothing attached')
  })
})
