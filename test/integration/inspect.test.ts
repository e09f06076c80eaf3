// Issue 3 acceptance: status, maps, metrics (+ Prometheus), monitor and
// explain on the live datapath of two node namespaces with pods, in both
// modes. Commands run as an operator runs them:
// `nsenter --net=/run/netns/NODE podnet-bpf … --pin-dir DIR`.
import { spawn } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cli, cliJson, inNs, mustNs, runId, sh, tempStateDir } from '../support/sys.js'
import { TwoNodes, type Node, type Pod } from '../support/topology.js'
import { peerAddressSeen, ping } from '../support/traffic.js'
import { countersOf, deltaOf, promSample, spawnCli, waitForStderr, type Streamed } from '../support/inspect.js'

const SPOOFED = '10.244.1.99'

interface LinkJson {
  ifindex: number
  address: string
}
function link(ns: string, dev: string): LinkJson {
  return (JSON.parse(mustNs(ns, 'ip', ['-j', 'link', 'show', 'dev', dev])) as LinkJson[])[0]!
}

interface ExplainJson {
  packet: { src: string; dst: string; outer?: { src: string; dst: string; sport: number; dport: number; vni: number; frameLen: number } }
  entry: { hook: string; device: string; ifindex: number }
  program: { name: string; id: number } | null
  verdict: string
  reason: string
  outcome: string
  to: { pod: string | null; device: string | null; ifindex: number | null; nodeIp: string | null; vni: number | null }
  summary: string
  notes: string[]
  steps: { hook: string; device: string; program: { name: string; id: number }; frame: string; verdict: string; reason: string }[]
}

describe.each(['direct', 'vxlan'] as const)('inspecting two nodes in %s mode', (mode) => {
  const topo = new TwoNodes(runId('pni'))
  const env = { PODNET_STATE_DIR: tempStateDir() }
  const [n1, n2] = topo.nodes as [Node, Node]
  const cross = mode === 'direct' ? 'direct' : 'vxlan'
  // arrivals from the peer: on the NIC, decapsulated there in VXLAN mode
  const arrival = 'from-netdev'
  const arrivalReason = mode === 'direct' ? 'local' : 'decap'
  let p11: Pod, p12: Pod, p21: Pod
  const attached = new Map<string, { program: string; id: number }[]>()
  const background: Streamed[] = []

  const run = (n: Node, args: string[]) => cli(n.ns, [...args, '--pin-dir', n.pinDir], env)
  const json = <T>(n: Node, args: string[]) => cliJson<T>(n.ns, [...args, '--pin-dir', n.pinDir], env)

  /** Sends `count` pings from p11 with the spoofed source; they are dropped, so ping fails. */
  function spoofedPing(count: number) {
    sh('ip', ['-n', p11.ns, 'addr', 'add', `${SPOOFED}/32`, 'dev', 'eth0'])
    try {
      return ping(p11.ns, p21.ip, { src: SPOOFED, count, timeoutS: 1 })
    } finally {
      sh('ip', ['-n', p11.ns, 'addr', 'del', `${SPOOFED}/32`, 'dev', 'eth0'])
    }
  }

  beforeAll(() => {
    topo.up()
    const mtus: number[] = []
    for (const n of topo.nodes) {
      const r = json<{ podMtu: number; programs: { program: string; id: number }[] }>(n, [
        'attach',
        '--node-ip',
        n.ip,
        '--pod-cidr',
        n.podCidr,
        '--device',
        'eth0',
        '--mode',
        mode,
      ])
      mtus.push(r.podMtu)
      attached.set(n.name, r.programs)
    }
    p11 = topo.addPod(n1, 1, mtus[0]!)
    p12 = topo.addPod(n1, 2, mtus[0]!)
    p21 = topo.addPod(n2, 1, mtus[1]!)
    for (const p of topo.pods) json(p.node, ['endpoints', 'add', '--ip', p.ip, '--ifname', p.hostIf])
    json(n1, ['routes', 'add', n2.podCidr, '--node-ip', n2.ip])
    json(n2, ['routes', 'add', n1.podCidr, '--node-ip', n1.ip])
    // warm up neighbours so later counters see only the packets we send
    expect(ping(p11.ns, p21.ip, { count: 1 }).status).toBe(0)
    expect(ping(p11.ns, p12.ip, { count: 1 }).status).toBe(0)
  })

  afterAll(async () => {
    for (const b of background) await b.stop()
    for (const n of topo.nodes) cli(n.ns, ['detach', '--pin-dir', n.pinDir], env)
    topo.down()
    for (const n of topo.nodes) sh('rm', ['-rf', n.pinDir])
    sh('rm', ['-rf', env.PODNET_STATE_DIR])
  })

  it('status shows the node, every live program with its id and tag, and every map', () => {
    const r = run(n1, ['status'])
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toContain(`node ${n1.ip}  pod CIDR ${n1.podCidr}  mode ${mode}  device eth0`)
    expect(r.stdout).toContain(mode === 'vxlan' ? 'VXLAN podnet_vxlan' : 'VXLAN: none (direct mode)')
    expect(r.stdout).toMatch(/PROGRAM\s+DEVICE\s+HOOK\s+VIA\s+ID\s+TAG\s+LOADED/)
    expect(r.stdout).toMatch(new RegExp(`pn_from_pod\\s+${p11.hostIf} \\(\\d+\\)\\s+ingress\\s+tcx?\\s+\\d+\\s+[0-9a-f]{16}`))

    const s = json<{
      nodeIp: string
      podCidr: string
      mode: string
      vxlan: { device: string; vni: number } | null
      endpoints: number
      programs: { program: string; device: string; hook: string; id: number; tag: string; expected: boolean }[]
      maps: { name: string; entries: number | null; maxEntries: number }[]
    }>(n1, ['status'])
    expect(s).toMatchObject({ nodeIp: n1.ip, podCidr: n1.podCidr, mode, endpoints: 2 })
    expect(s.vxlan).toEqual(mode === 'vxlan' ? expect.objectContaining({ device: 'podnet_vxlan', vni: 1 }) : null)
    // the ids attach reported are the ones live on the hooks
    for (const a of attached.get('node1')!) {
      expect(s.programs.find((p) => p.program === a.program)?.id).toBe(a.id)
    }
    const fromPod = s.programs.filter((p) => p.program === 'pn_from_pod')
    expect(fromPod.map((p) => p.device).sort()).toEqual([p11.hostIf, p12.hostIf])
    expect(new Set(fromPod.map((p) => p.id)).size).toBe(1)
    for (const p of s.programs) {
      expect(p.expected).toBe(true)
      expect(p.tag).toMatch(/^[0-9a-f]{16}$/)
    }
    expect(s.programs.map((p) => p.program).sort()).toEqual(
      mode === 'vxlan'
        ? ['pn_from_netdev', 'pn_from_overlay', 'pn_from_pod', 'pn_from_pod', 'pn_to_overlay']
        : ['pn_from_netdev', 'pn_from_pod', 'pn_from_pod'],
    )
    const maps = Object.fromEntries(s.maps.map((m) => [m.name, m]))
    expect(Object.keys(maps).sort()).toEqual([
      'podnet_endpoints',
      'podnet_events',
      'podnet_metrics',
      'podnet_peers',
      'podnet_routes',
      'podnet_settings',
    ])
    expect(maps.podnet_endpoints!.entries).toBe(2)
    expect(maps.podnet_routes!.entries).toBe(1)
    // the one route's node: the only sender whose VXLAN is decapsulated
    expect(maps.podnet_peers!.entries).toBe(1)
    expect(s.tracing).toEqual({ on: false, orphanCleared: false })
  })

  it('maps list names every map with its BTF key and value types', () => {
    const r = run(n1, ['maps', 'list'])
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/podnet_routes\s+\d+\s+lpm_trie\s+struct podnet_route_key\s+struct podnet_route\s+1\s+16384/)
    const ms = json<{ name: string; type: string; keyType: string | null; valueType: string | null; entries: number | null }[]>(n1, [
      'maps',
      'list',
    ])
    expect(ms.find((m) => m.name === 'podnet_endpoints')).toMatchObject({
      type: 'hash',
      keyType: '__u32',
      valueType: 'struct podnet_endpoint',
      entries: 2,
    })
    expect(ms.find((m) => m.name === 'podnet_metrics')).toMatchObject({ type: 'percpu_array', valueType: 'struct podnet_metric' })
    expect(ms.find((m) => m.name === 'podnet_events')).toMatchObject({ type: 'ringbuf', entries: null })
  })

  it('maps dump podnet_endpoints decodes what endpoints add configured, and agrees with endpoints list', () => {
    type Dump = { map: { name: string; keyType: string; valueType: string }; entries: { key: string; value: Record<string, unknown> }[] }
    const d = json<Dump>(n1, ['maps', 'dump', 'podnet_endpoints'])
    expect(d.map).toMatchObject({ name: 'podnet_endpoints', keyType: '__u32', valueType: 'struct podnet_endpoint' })
    const want = [p11, p12].map((p) => ({
      key: p.ip,
      value: {
        ifindex: link(n1.ns, p.hostIf).ifindex,
        flags: 0,
        pod_mac: link(p.ns, 'eth0').address,
        host_mac: link(n1.ns, p.hostIf).address,
      },
    }))
    expect([...d.entries].sort((a, b) => a.key.localeCompare(b.key))).toEqual(want)

    const list = json<{ ip: string; ifname: string; ifindex: number; podMac: string; hostMac: string }[]>(n1, ['endpoints', 'list'])
    expect(list.map((e) => ({ key: e.ip, value: { ifindex: e.ifindex, flags: 0, pod_mac: e.podMac, host_mac: e.hostMac } }))).toEqual(want)
    expect(list.map((e) => e.ifname)).toEqual([p11.hostIf, p12.hostIf])

    const text = run(n1, ['maps', 'dump', 'endpoints'])
    expect(text.status, text.stderr).toBe(0)
    expect(text.stdout).toContain(
      `${p11.ip}         ifindex=${want[0]!.value.ifindex} flags=0 pod_mac=${want[0]!.value.pod_mac} host_mac=${want[0]!.value.host_mac}`,
    )
    expect(text.stdout).toContain('2 entries')
    const lt = run(n1, ['endpoints', 'list'])
    expect(lt.stdout).toMatch(
      new RegExp(
        `^IP\\s+IFNAME\\s+IFINDEX\\s+POD MAC\\s+HOST MAC\\n${p11.ip.replace(/\./g, '\\.')}\\s+${p11.hostIf}\\s+${want[0]!.value.ifindex}\\s`,
      ),
    )
  })

  it('maps dump podnet_routes decodes what routes add configured, and agrees with routes list', () => {
    const d = json<{ entries: { key: string; value: { node_ip: string; flags: string[] } }[] }>(n1, ['maps', 'dump', 'routes'])
    const want = [{ key: n2.podCidr, value: { node_ip: n2.ip, flags: mode === 'vxlan' ? ['vxlan'] : [] } }]
    expect(d.entries).toEqual(want)
    const list = json<{ cidr: string; nodeIp: string; encap: string }[]>(n1, ['routes', 'list'])
    expect(list.map((r) => ({ key: r.cidr, value: { node_ip: r.nodeIp, flags: r.encap === 'vxlan' ? ['vxlan'] : [] } }))).toEqual(want)
    const text = run(n1, ['maps', 'dump', 'podnet_routes'])
    expect(text.stdout).toContain(`${n2.podCidr}       node_ip=${n2.ip} flags=${mode === 'vxlan' ? 'vxlan' : '-'}`)
    expect(run(n1, ['routes', 'list']).stdout).toMatch(
      new RegExp(
        `CIDR\\s+NODE\\s+ENCAP\\s+REQUESTED\\s+ORIGIN\\n10\\.244\\.2\\.0/24\\s+${n2.ip.replace(/\./g, '\\.')}\\s+${cross}\\s+default`,
      ),
    )
  })

  it('maps dump of the per-CPU counters and of the ring buffer are readable', () => {
    const m = json<{ entries: { key: string; value: { packets: number; bytes: number }; perCpu: unknown[] }[] }>(n1, [
      'maps',
      'dump',
      'metrics',
    ])
    const e = m.entries.find((x) => x.key === `from-pod/${cross}`)
    expect(e?.value.packets).toBeGreaterThan(0)
    expect(e?.perCpu.length).toBeGreaterThanOrEqual(1)
    const counters = countersOf(n1.ns, n1.pinDir, env)
    // same map, read twice: nothing sends pod traffic in between
    expect(e?.value.packets).toBe(counters.get(`from-pod/${cross}`))
    expect(run(n1, ['maps', 'dump', 'podnet_events']).stdout).toContain('podnet-bpf monitor')
    const bad = run(n1, ['maps', 'dump', 'nosuch'])
    expect(bad.status).toBe(1)
    expect(bad.stderr).toContain('no map "nosuch"')
  })

  it('metrics prints counters by direction and reason, and --watch prints rates', () => {
    const r = run(n1, ['metrics'])
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^DIRECTION\s+KIND\s+REASON\s+PACKETS\s+BYTES/)
    expect(r.stdout).toMatch(new RegExp(`from-pod\\s+forward\\s+${cross}\\s+\\d+\\s+\\d+`))
    const w = spawnCli(n1.ns, ['metrics', '--watch', '--interval', '1', '--count', '1', '--json', '--pin-dir', n1.pinDir], env)
    background.push(w)
    return (async () => {
      const pinger = spawn('ip', ['netns', 'exec', p11.ns, 'ping', '-q', '-c', '100', '-i', '0.2', p21.ip], { stdio: 'ignore' })
      const line = await w.waitFor((l) => l.startsWith('{'), 20_000)
      pinger.kill()
      const sample = JSON.parse(line.text) as { counters: { direction: string; reason: string; packetsPerSec: number }[] }
      expect(sample.counters.find((c) => c.direction === 'from-pod' && c.reason === cross)?.packetsPerSec).toBeGreaterThan(0)
      expect(await w.wait()).toBe(0)
    })()
  })

  it('metrics serve is scraped over loopback and its counters move with traffic and with a spoofed packet', async () => {
    // maps are reached through the pins, so the exporter can listen on the host's loopback
    const srv = spawnCli(null, ['metrics', 'serve', '--port', '0', '--pin-dir', n1.pinDir], env)
    background.push(srv)
    const banner = await srv.waitFor((l) => l.includes('serving Prometheus metrics on'), 20_000)
    const url = /http:\/\/127\.0\.0\.1:\d+\/metrics/.exec(banner.text)![0]
    const scrape = async () => {
      const res = await fetch(url)
      expect(res.status).toBe(200)
      expect(res.headers.get('content-type')).toContain('text/plain')
      return res.text()
    }
    const fwd = { reason: cross, direction: 'from-pod' }
    const back = { reason: arrivalReason, direction: arrival }
    const drop = { reason: 'spoofed-src', direction: 'from-pod' }
    const t0 = await scrape()
    expect(t0).toContain('# TYPE podnet_forward_packets_total counter')
    expect(t0).toContain('# TYPE podnet_drop_packets_total counter')
    expect(t0).toMatch(/^podnet_endpoints 2$/m)
    expect(t0).toMatch(/^podnet_routes 1$/m)

    expect(ping(p11.ns, p21.ip, { count: 3 }).status).toBe(0)
    const t1 = await scrape()
    expect(
      promSample(t1, 'podnet_forward_packets_total', fwd) - promSample(t0, 'podnet_forward_packets_total', fwd),
    ).toBeGreaterThanOrEqual(3)
    expect(promSample(t1, 'podnet_forward_bytes_total', fwd) - promSample(t0, 'podnet_forward_bytes_total', fwd)).toBeGreaterThanOrEqual(
      3 * 98,
    )
    // the replies: decapsulated on the NIC in VXLAN mode, labelled so
    expect(
      promSample(t1, 'podnet_forward_packets_total', back) - promSample(t0, 'podnet_forward_packets_total', back),
    ).toBeGreaterThanOrEqual(3)
    expect(promSample(t1, 'podnet_forward_packets_total', { reason: 'local', direction: 'from-overlay' })).toBe(0)
    expect(promSample(t1, 'podnet_drop_packets_total', drop)).toBe(promSample(t0, 'podnet_drop_packets_total', drop))

    expect(spoofedPing(2).status).not.toBe(0)
    const t2 = await scrape()
    expect(promSample(t2, 'podnet_drop_packets_total', drop) - promSample(t1, 'podnet_drop_packets_total', drop)).toBeGreaterThanOrEqual(2)
    expect(promSample(t2, 'podnet_forward_packets_total', fwd)).toBe(promSample(t1, 'podnet_forward_packets_total', fwd))
    expect(await srv.stop()).toBe(0)
  })

  it('monitor shows a drop event within a second of a spoofed packet', async () => {
    const mon = spawnCli(n1.ns, ['monitor', '--json', '--pin-dir', n1.pinDir], env)
    background.push(mon)
    await waitForStderr(mon, 'monitoring drops')
    sh('ip', ['-n', p11.ns, 'addr', 'add', `${SPOOFED}/32`, 'dev', 'eth0'])
    try {
      const sent = Date.now()
      const pinger = spawn('ip', ['netns', 'exec', p11.ns, 'ping', '-c', '1', '-W', '1', '-I', SPOOFED, p21.ip], { stdio: 'ignore' })
      const hit = await mon.waitFor((l) => l.includes('"spoofed-src"'), 5_000)
      pinger.kill()
      expect(hit.at - sent).toBeLessThan(1000)
      const ev = JSON.parse(hit.text) as Record<string, unknown>
      expect(ev).toMatchObject({
        type: 'drop',
        reason: 'spoofed-src',
        direction: 'from-pod',
        device: p11.hostIf,
        saddr: SPOOFED,
        daddr: p21.ip,
        proto: 'icmp',
        icmp: { type: 8, code: 0 },
      })
    } finally {
      sh('ip', ['-n', p11.ns, 'addr', 'del', `${SPOOFED}/32`, 'dev', 'eth0'])
    }
    expect(await mon.stop()).toBe(0)
  })

  it('monitor shows forwarding traces while tracing is on, and turns tracing off again', async () => {
    const settings = () =>
      json<{ entries: { value: { monitor_flags: string[] } }[] }>(n1, ['maps', 'dump', 'settings']).entries[0]!.value.monitor_flags
    expect(settings()).toEqual([])
    const mon = spawnCli(n1.ns, ['monitor', '--type', 'trace', '--ip', p21.ip, '--pin-dir', n1.pinDir], env)
    background.push(mon)
    await waitForStderr(mon, 'tracing on')
    expect(settings()).toEqual(['trace'])
    expect(ping(p11.ns, p21.ip, { count: 1 }).status).toBe(0)
    const out = await mon.waitFor((l) => l.includes(`${p11.ip} > ${p21.ip} icmp echo-request`), 5_000)
    // VXLAN too leaves straight out the NIC, encapsulated by from_pod
    expect(out.text).toMatch(new RegExp(`trace\\s+from-pod\\s+${p11.hostIf}\\s+.* ${cross} → node ${n2.ip.replace(/\./g, '\\.')} via eth0`))
    // the reply comes back to p11 through the arrival hook
    await mon.waitFor(
      (l) =>
        l.includes(`${p21.ip} > ${p11.ip} icmp echo-reply`) &&
        l.includes(`${arrival}`) &&
        l.includes(`${arrivalReason} → `) &&
        l.includes(p11.hostIf),
      5_000,
    )
    expect(await mon.stop()).toBe(0)
    expect(settings()).toEqual([])
  })

  it(`monitor --json traces a reply from the peer as ${arrivalReason} on eth0, into the pod`, async () => {
    const mon = spawnCli(n1.ns, ['monitor', '--type', 'trace', '--ip', p21.ip, '--json', '--pin-dir', n1.pinDir], env)
    background.push(mon)
    await waitForStderr(mon, 'tracing on')
    expect(ping(p11.ns, p21.ip, { count: 1 }).status).toBe(0)
    const hit = await mon.waitFor((l) => l.startsWith('{') && (JSON.parse(l) as { saddr: string }).saddr === p21.ip, 5_000)
    expect(await mon.stop()).toBe(0)
    const ev = JSON.parse(hit.text) as Record<string, unknown>
    expect(ev).toMatchObject({
      type: 'trace',
      reason: arrivalReason,
      direction: 'from-netdev',
      device: 'eth0',
      saddr: p21.ip,
      daddr: p11.ip,
      icmp: { type: 0, code: 0 },
      // the inner packet, as the pod gets it
      len: 98,
      // VXLAN: the peer node it came from
      to: { device: p11.hostIf, ifindex: link(n1.ns, p11.hostIf).ifindex, nodeIp: mode === 'direct' ? null : n2.ip },
    })
    // nothing reaches the kernel's VXLAN device
    expect(mon.lines.some((l) => l.text.includes('"from-overlay"'))).toBe(false)
  })

  it('keeps tracing on until the last of two tracing monitors stops', async () => {
    const settings = () =>
      json<{ entries: { value: { monitor_flags: string[] } }[] }>(n1, ['maps', 'dump', 'settings']).entries[0]!.value.monitor_flags
    const first = spawnCli(n1.ns, ['monitor', '--type', 'trace', '--pin-dir', n1.pinDir], env)
    background.push(first)
    await waitForStderr(first, 'tracing on')
    const second = spawnCli(n1.ns, ['monitor', '--type', 'all', '--pin-dir', n1.pinDir], env)
    background.push(second)
    await waitForStderr(second, 'tracing on')
    expect(await first.stop()).toBe(0)
    expect(settings()).toEqual(['trace'])
    expect(await second.stop()).toBe(0)
    expect(settings()).toEqual([])
  })

  describe('explain agrees with the packet sent for real', () => {
    interface Case {
      name: string
      node: () => Node
      args: () => string[]
      summary: () => string
      outcome: string
      send: () => Promise<unknown> | unknown
    }
    const cases: Case[] = [
      {
        name: 'pod to pod on the same node (TCP)',
        node: () => n1,
        args: () => [p11.ip, p12.ip, '--proto', 'tcp', '--dport', '7001'],
        summary: () => `delivered to pod ${p12.ip} on veth ${p12.hostIf} (ifindex ${link(n1.ns, p12.hostIf).ifindex})`,
        outcome: 'local',
        send: async () => expect(await peerAddressSeen('tcp', p12.ns, p12.ip, p11.ns, 7001)).toBe(p11.ip),
      },
      {
        name: `pod to a pod on the peer node, leaving node1 (${mode})`,
        node: () => n1,
        args: () => [p11.ip, p21.ip],
        summary: () =>
          mode === 'direct' ? `routed directly to node ${n2.ip} via eth0` : `encapsulated to node ${n2.ip} (VNI 1) and sent via eth0`,
        outcome: cross,
        send: () => expect(ping(p11.ns, p21.ip, { count: 3 }).status).toBe(0),
      },
      {
        name: `pod to a pod on the peer node, arriving at node2 (${arrival}, ${arrivalReason})`,
        node: () => n2,
        args: () => [p11.ip, p21.ip, '--proto', 'udp', '--dport', '7002'],
        summary: () =>
          mode === 'direct'
            ? `delivered to pod ${p21.ip} on veth ${p21.hostIf} (ifindex ${link(n2.ns, p21.hostIf).ifindex})`
            : `decapsulated (VXLAN from node ${n1.ip}, VNI 1) and delivered to pod ${p21.ip} on veth ${p21.hostIf} (ifindex ${link(n2.ns, p21.hostIf).ifindex})`,
        outcome: 'local',
        send: async () => expect(await peerAddressSeen('udp', p21.ns, p21.ip, p11.ns, 7002)).toBe(p11.ip),
      },
      {
        name: 'pod to the peer node IP (host stack)',
        node: () => n1,
        args: () => [p11.ip, n2.ip],
        summary: () => 'passed to the host stack',
        outcome: 'stack',
        send: () => expect(ping(p11.ns, n2.ip, { count: 3 }).status).toBe(0),
      },
      {
        name: 'a spoofed source on a pod veth (drop)',
        node: () => n1,
        args: () => [SPOOFED, p21.ip, '--ingress', p11.hostIf],
        summary: () => 'dropped: spoofed-src',
        outcome: 'drop',
        send: () => expect(spoofedPing(3).status).not.toBe(0),
      },
    ]

    it.each(cases)('$name', async (c) => {
      const n = c.node()
      const text = run(n, ['explain', ...c.args()])
      expect(text.status, text.stderr).toBe(0)
      expect(text.stdout.split('\n')[0]).toBe(c.summary())
      const x = json<ExplainJson>(n, ['explain', ...c.args()])
      expect(x.summary).toBe(c.summary())
      expect(x.outcome).toBe(c.outcome)
      expect(x.program).not.toBeNull()
      // one program decides each of these
      expect(x.steps).toHaveLength(1)
      expect(x.steps[0]).toMatchObject({ hook: x.entry.hook, program: x.program!, verdict: x.verdict, reason: x.reason })
      // the counter that moves for the real packet is the one explain named
      const before = countersOf(n.ns, n.pinDir, env)
      await c.send()
      const moved = deltaOf(before, countersOf(n.ns, n.pinDir, env))
      expect(moved.get(`${x.entry.hook}/${x.reason}`) ?? 0, `moved: ${JSON.stringify([...moved])}`).toBeGreaterThanOrEqual(1)
      // and no other verdict for that hook moved (ARP and pass-through noise aside)
      const others = [...moved.keys()].filter(
        (k) => k.startsWith(`${x.entry.hook}/`) && k !== `${x.entry.hook}/${x.reason}` && !/\/(arp-reply|pass)$/.test(k),
      )
      if (x.entry.hook === 'from-pod' && c.outcome !== 'local') expect(others).toEqual([])
      // nothing goes through the kernel's VXLAN device
      expect([...moved.keys()].filter((k) => k.startsWith('from-overlay/'))).toEqual([])
    })

    it(`explains an arrival from node1's pod as ${mode === 'direct' ? 'a plain packet on eth0' : 'a VXLAN frame on eth0 that from_netdev decapsulates'}`, () => {
      const x = json<ExplainJson>(n2, ['explain', p11.ip, p21.ip])
      expect(x.entry).toMatchObject({ hook: 'from-netdev', device: 'eth0', ifindex: link(n2.ns, 'eth0').ifindex })
      expect(x.program?.name).toBe('pn_from_netdev')
      expect(x.steps.map((st) => [st.hook, st.frame, st.reason])).toEqual([
        ['from-netdev', mode === 'direct' ? 'packet' : 'vxlan', arrivalReason],
      ])
      expect(x.verdict).toBe('TC_ACT_REDIRECT')
      expect(x.to).toEqual({
        pod: p21.ip,
        device: p21.hostIf,
        ifindex: link(n2.ns, p21.hostIf).ifindex,
        nodeIp: mode === 'direct' ? null : n1.ip,
        vni: mode === 'direct' ? null : 1,
      })
      if (mode === 'direct') {
        expect(x.packet.outer).toBeUndefined()
      } else {
        // 84-byte ICMP packet + inner Ethernet + VXLAN + UDP + outer IPv4 + outer Ethernet
        expect(x.packet.outer).toEqual({
          src: n1.ip,
          dst: n2.ip,
          sport: expect.any(Number),
          dport: 8472,
          vni: 1,
          frameLen: 84 + 14 + 8 + 8 + 20 + 14,
        })
        expect(x.notes.join(' ')).toContain(`sent by node ${n1.ip} as VXLAN`)
      }
      // node1 itself sends to node2's pods the same way
      const fromNode = json<ExplainJson>(n2, ['explain', n1.ip, p21.ip])
      expect(fromNode.steps.map((st) => [st.hook, st.reason])).toEqual([['from-netdev', arrivalReason]])
      const text = run(n2, ['explain', p11.ip, p21.ip])
      expect(text.stdout).toContain(`  entry    from-netdev on eth0: ${p11.ip} is a pod of node ${n1.ip}`)
      expect(text.stdout).toMatch(new RegExp(`  program  pn_from_netdev id ${x.program!.id} \\(eth0 ingress\\)`))
      expect(text.stdout).toContain(`  verdict  TC_ACT_REDIRECT, reason ${arrivalReason} (${mode === 'direct' ? 1 : 10})`)
    })

    it.runIf(mode === 'vxlan')('explains a node-to-remote-pod packet through to_overlay on podnet_vxlan', () => {
      const x = json<ExplainJson>(n1, ['explain', n1.ip, p21.ip])
      expect(x).toMatchObject({
        entry: { hook: 'to-overlay', device: 'podnet_vxlan' },
        program: { name: 'pn_to_overlay' },
        reason: 'encap-stack',
        outcome: 'vxlan',
        to: { device: 'podnet_vxlan', nodeIp: n2.ip, vni: 1 },
        summary: `encapsulated to node ${n2.ip} (VNI 1) via podnet_vxlan`,
      })
      expect(x.steps.map((st) => st.hook)).toEqual(['to-overlay'])
      // and node2 decapsulates what the kernel's VXLAN device sends, like pod traffic
      const before = countersOf(n2.ns, n2.pinDir, env)
      expect(ping(n1.ns, p21.ip, { count: 3 }).status).toBe(0)
      const moved = deltaOf(before, countersOf(n2.ns, n2.pinDir, env))
      expect(moved.get('from-netdev/decap') ?? 0, JSON.stringify([...moved])).toBeGreaterThanOrEqual(3)
      expect([...moved.keys()].filter((k) => k.startsWith('from-overlay/'))).toEqual([])
    })

    it(`runs an arrival for an address that is no local pod through ${mode === 'direct' ? 'from_netdev (drop: unassigned)' : 'from_netdev (pass), then the live from_overlay (drop)'}, as the real packet goes`, () => {
      const x = json<ExplainJson>(n2, ['explain', p11.ip, '10.244.2.77'])
      if (mode === 'direct') {
        // an address of the pod CIDR with no pod: never to the stack, whose default route would send it back out
        expect(x).toMatchObject({ entry: { hook: 'from-netdev' }, outcome: 'drop', reason: 'unassigned', summary: 'dropped: unassigned' })
        expect(x.steps.map((st) => [st.hook, st.reason])).toEqual([['from-netdev', 'unassigned']])
        return
      }
      // from_netdev leaves the frame to podnet_vxlan, whose from_overlay drops it
      expect(x).toMatchObject({
        entry: { hook: 'from-netdev', device: 'eth0' },
        program: { name: 'pn_from_overlay' },
        verdict: 'TC_ACT_SHOT',
        reason: 'not-local',
        outcome: 'drop',
        summary: 'dropped: not-local',
      })
      expect(x.steps.map((st) => [st.hook, st.device, st.program.name, st.frame, st.verdict, st.reason])).toEqual([
        ['from-netdev', 'eth0', 'pn_from_netdev', 'vxlan', 'TC_ACT_OK', 'pass'],
        ['from-overlay', 'podnet_vxlan', 'pn_from_overlay', 'packet', 'TC_ACT_SHOT', 'not-local'],
      ])
      expect(x.notes).toContain('pn_from_netdev left it to the kernel VXLAN device: 10.244.2.77 is not a local pod')
      expect(x.notes.join(' ')).toContain(`as received from node ${n1.ip} with VNI 1`)
      const text = run(n2, ['explain', p11.ip, '10.244.2.77'])
      expect(text.stdout).toContain('  program  pn_from_overlay id')
      expect(text.stdout).toContain('  note     pn_from_netdev left it to the kernel VXLAN device: 10.244.2.77 is not a local pod')

      // the real packets take both steps and are counted at both
      const before = countersOf(n2.ns, n2.pinDir, env)
      expect(ping(p11.ns, '10.244.2.77', { count: 3, timeoutS: 1 }).status).not.toBe(0)
      const moved = deltaOf(before, countersOf(n2.ns, n2.pinDir, env))
      expect(moved.get('from-netdev/pass') ?? 0, JSON.stringify([...moved])).toBeGreaterThanOrEqual(3)
      expect(moved.get('from-overlay/not-local') ?? 0, JSON.stringify([...moved])).toBeGreaterThanOrEqual(3)
      expect(moved.get('from-netdev/decap') ?? 0).toBe(0)
    })

    it.runIf(mode === 'vxlan')('decapsulates a TTL-1 arrival in from_netdev and hands it to the stack, as real traffic shows', () => {
      const x = json<ExplainJson>(n2, ['explain', p11.ip, p21.ip, '--ttl', '1'])
      expect(x.steps.map((st) => [st.hook, st.reason])).toEqual([['from-netdev', 'stack-ttl']])
      expect(x).toMatchObject({ outcome: 'stack', reason: 'stack-ttl', to: { nodeIp: n1.ip } })
      // sent with TTL 2, it leaves node1 with TTL 1; node2 answers time exceeded
      const before = countersOf(n2.ns, n2.pinDir, env)
      const r = inNs(p11.ns, 'ping', ['-n', '-c', '2', '-i', '0.2', '-W', '1', '-t', '2', p21.ip])
      expect(r.stdout).toContain('Time to live exceeded')
      const moved = deltaOf(before, countersOf(n2.ns, n2.pinDir, env))
      expect(moved.get('from-netdev/stack-ttl') ?? 0, JSON.stringify([...moved])).toBeGreaterThanOrEqual(2)
      expect(moved.get('from-overlay/stack-ttl') ?? 0).toBe(0)
      expect(moved.get('from-netdev/decap') ?? 0).toBe(0)
    })

    it.runIf(mode === 'vxlan')('still runs from_overlay directly for --ingress podnet_vxlan', () => {
      const x = json<ExplainJson>(n2, ['explain', p11.ip, p21.ip, '--ingress', 'podnet_vxlan'])
      expect(x).toMatchObject({
        entry: { hook: 'from-overlay', device: 'podnet_vxlan' },
        program: { name: 'pn_from_overlay' },
        reason: 'local',
        outcome: 'local',
        to: { pod: p21.ip, device: p21.hostIf },
        summary: `delivered to pod ${p21.ip} on veth ${p21.hostIf} (ifindex ${link(n2.ns, p21.hostIf).ifindex})`,
      })
      expect(x.steps.map((st) => [st.hook, st.frame])).toEqual([['from-overlay', 'packet']])
      expect(x.packet.outer).toBeUndefined()
      expect(x.notes).toEqual([`as received from node ${n1.ip} with VNI 1 (the tunnel key is passed in explain mode)`])
      // and --ingress eth0 sends it unencapsulated, as a direct peer would
      const plain = json<ExplainJson>(n2, ['explain', p11.ip, p21.ip, '--ingress', 'eth0'])
      expect(plain.steps.map((st) => [st.hook, st.frame, st.reason])).toEqual([['from-netdev', 'packet', 'local']])
      expect(plain.packet.outer).toBeUndefined()
    })

    it('asks which veth sends a pod-CIDR address that is no endpoint', () => {
      const r = run(n1, ['explain', SPOOFED, p21.ip])
      expect(r.status).toBe(1)
      expect(r.stderr).toContain('--ingress')
    })

    it('leaves the live counters and the monitor untouched', async () => {
      const mon = spawnCli(n1.ns, ['monitor', '--type', 'all', '--json', '--pin-dir', n1.pinDir], env)
      background.push(mon)
      await waitForStderr(mon, 'tracing on')
      const noise = /\/(arp-reply|pass)$/
      const before = countersOf(n1.ns, n1.pinDir, env)
      for (const c of cases.filter((k) => k.node() === n1)) expect(run(n1, ['explain', ...c.args()]).status).toBe(0)
      const moved = [...deltaOf(before, countersOf(n1.ns, n1.pinDir, env)).keys()].filter((k) => !noise.test(k))
      expect(moved).toEqual([])
      await new Promise((r) => setTimeout(r, 300))
      expect(await mon.stop()).toBe(0)
      const pods = new Set([p11.ip, p12.ip, p21.ip, SPOOFED, n2.ip])
      const events = mon.lines.map((l) => JSON.parse(l.text) as { saddr: string; daddr: string; reason: string })
      // a pod refreshing its gateway's ARP entry meanwhile is noise, as above
      expect(events.filter((e) => (pods.has(e.saddr) || pods.has(e.daddr)) && e.reason !== 'arp-reply')).toEqual([])
    })
  })
})
