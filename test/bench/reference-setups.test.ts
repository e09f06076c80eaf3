// The benchmark's setups must really forward traffic the way they claim to —
// a broken reference must not look fast. No timing is asserted here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execSync } from '../../scripts/bench/lib/exec.js'
import { runCleanup } from '../../scripts/bench/lib/cleanup.js'
import { ip, link, runTag } from '../../scripts/bench/lib/netns.js'
import { podnetAvailable } from '../../scripts/bench/lib/podnet.js'
import { buildSetup, NODE_IP, POD_CIDR, POD_IP, type Setup, type SetupId } from '../../scripts/bench/lib/setups.js'
import { measure, startServers, type Servers } from '../../scripts/bench/lib/measure.js'
import { captureUnderlay, ENCAP_PING_BYTES, verifyForwarding } from '../../scripts/bench/lib/verify.js'
import { existsSync, readdirSync } from 'node:fs'

const isRoot = process.getuid?.() === 0
const tag = runTag(`t${Math.random().toString(36).slice(2, 6)}`)
const pingBurst = (s: Setup) => () =>
  execSync(['ip', 'netns', 'exec', s.client, 'ping', '-n', '-q', '-c', '5', '-i', '0.05', s.serverIp], { allowFail: true })

const ourNamespaces = (): string[] => (existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(tag)) : [])

describe.skipIf(!isRoot)('benchmark reference setups', () => {
  beforeAll(() => {
    for (const tool of ['iperf3', 'sockperf', 'tcpdump']) {
      expect(
        execSync(['sh', '-c', `command -v ${tool}`], { allowFail: true }).code,
        `${tool} is required (apt-get install iperf3 sockperf tcpdump)`,
      ).toBe(0)
    }
  })
  afterAll(() => {
    runCleanup()
  })

  const cases: Array<{ id: SetupId; underlay: string; encapsulated: boolean }> = [
    { id: 'limit', underlay: `host ${NODE_IP[0]} and host ${NODE_IP[1]} and icmp`, encapsulated: false },
    { id: 'kernel-routing', underlay: `host ${POD_IP[0]} and host ${POD_IP[1]} and icmp`, encapsulated: false },
    { id: 'kernel-vxlan', underlay: `src ${NODE_IP[0]} and dst ${NODE_IP[1]} and udp dst port 8472`, encapsulated: true },
    { id: 'podnet-direct', underlay: `host ${POD_IP[0]} and host ${POD_IP[1]} and icmp`, encapsulated: false },
    { id: 'podnet-vxlan', underlay: `src ${NODE_IP[0]} and dst ${NODE_IP[1]} and udp dst port 8472`, encapsulated: true },
  ]

  for (const c of cases) {
    describe.skipIf(c.id.startsWith('podnet') && !podnetAvailable())(c.id, () => {
      let s: Setup
      let servers: Servers
      beforeAll(async () => {
        s = await buildSetup(c.id, tag)
        servers = await startServers(s)
      })
      afterAll(() => servers?.stop())

      it('reaches the server across the underlay, full-MTU packets unfragmented', async () => {
        const check = await verifyForwarding(s)
        expect(check.problems).toEqual([])
        expect(check.underlayTx).toBeGreaterThanOrEqual(check.burst)
      })

      it(
        c.encapsulated
          ? 'carries UDP 8472 between the node IPs on the underlay'
          : 'carries the endpoints\u2019 own IPs on the underlay, unencapsulated',
        async () => {
          const lines = await captureUnderlay(s, c.underlay, 3, async () => pingBurst(s)())
          expect(lines.length, lines.join('\n')).toBeGreaterThanOrEqual(3)
          if (!c.encapsulated) {
            const vx = await captureUnderlay(s, 'udp port 8472', 1, async () => pingBurst(s)(), 2_500)
            expect(vx).toEqual([])
          }
        },
      )

      it('uses the kernel router only where the setup is meant to', async () => {
        const check = await verifyForwarding(s)
        if (c.id.startsWith('kernel')) expect(Math.min(...check.kernelForwarded)).toBeGreaterThanOrEqual(check.burst)
        else expect(Math.max(...check.kernelForwarded)).toBeLessThan(check.burst / 2)
        if (c.encapsulated) expect(check.underlayBytesPerPing).toBeGreaterThanOrEqual(ENCAP_PING_BYTES)
        else expect(check.underlayBytesPerPing).toBeLessThan(ENCAP_PING_BYTES)
      })

      it('moves bulk TCP over the underlay: the underlay carries at least the bytes iperf3 received', async () => {
        const before = link(s.nodes[0], 'eth0').txBytes
        const sample = await measure(s, 'tcp1', 0, 1)
        const sent = link(s.nodes[0], 'eth0').txBytes - before
        expect(sample.error).toBeUndefined()
        expect(sample.extra?.['bytes']).toBeGreaterThan(0)
        expect(sent).toBeGreaterThanOrEqual(sample.extra!['bytes']!)
      })

      it('produces every figure (4 TCP streams, ping-pong percentiles, small UDP)', async () => {
        for (const m of ['tcp4', 'rtt', 'udp'] as const) {
          const sample = await measure(s, m, 0, 1)
          expect(sample.error, `${m}: ${sample.error}`).toBeUndefined()
          expect(sample.value).toBeGreaterThan(0)
          if (m === 'rtt') expect(sample.p99).toBeGreaterThanOrEqual(sample.value)
        }
      })

      if (c.id === 'kernel-vxlan') {
        it('gives pods the Flannel MTU of 1450', () => {
          expect(link(s.client, 'eth0').mtu).toBe(1450)
          expect(link(s.nodes[0], 'flannel.1').mtu).toBe(1450)
        })
      }
    })
  }

  it('notices a broken reference: without the peer route, verification reports the failure', async () => {
    const s = await buildSetup('kernel-routing', `${tag}-broken`)
    ip(s.nodes[0], 'route', 'del', POD_CIDR[1])
    const check = await verifyForwarding(s)
    expect(check.problems.join('\n')).toMatch(/cannot ping/)
  })

  it('notices traffic that does not cross the underlay', async () => {
    // a "setup" whose server address is local to the client: fast, and wrong
    const s = await buildSetup('limit', `${tag}-local`)
    ip(s.nodes[0], 'addr', 'add', '192.0.2.7/32', 'dev', 'lo')
    const check = await verifyForwarding({ ...s, serverIp: '192.0.2.7' })
    expect(check.problems.join('\n')).toMatch(/does not cross the underlay/)
  })

  it('leaves no namespaces behind after cleanup', () => {
    expect(ourNamespaces().length).toBeGreaterThan(0)
    runCleanup()
    expect(ourNamespaces()).toEqual([])
  })
})
