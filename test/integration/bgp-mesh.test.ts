// `--routing bgp` without a router: the iBGP full mesh between the nodes of
// one subnet (Calico's node-to-node mesh), each node's next hop the owner.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Cluster, type AgentProc, type CNode } from '../support/cluster.js'
import { runId, sh } from '../support/sys.js'
import { peerAddressSeen, ping } from '../support/traffic.js'
import { killBirdsUnder } from '../support/bgp.js'

const c = new Cluster(runId('pnbgpm'))
const cidr = (i: number) => `10.244.${i}.0/24`
const nodes: CNode[] = []
const agents: AgentProc[] = []
const pods: { ns: string; ip: string }[] = []

beforeAll(async () => {
  c.up()
  for (let i = 1; i <= 3; i++) nodes.push(c.addNode(i))
  const peers = join(c.dir, 'peers.yaml')
  writeFileSync(peers, `peers:\n${nodes.map((n, i) => `  - {name: ${n.name}, nodeIp: ${n.ip}, podCidr: ${cidr(i + 1)}}`).join('\n')}\n`)
  for (const [i, n] of nodes.entries()) {
    agents.push(
      c.startAgent(n, [
        ...['--datastore', 'file', '--pod-cidr', cidr(i + 1), '--peers-file', peers],
        ...['--routing', 'bgp', '--cluster-cidr', '10.244.0.0/16'],
      ]),
    )
  }
  for (const n of nodes) await c.waitFor(`${n.name} ready`, () => c.http(n, '/readyz').status === 200, 30_000, 200)
  for (const [i, n] of nodes.entries()) pods.push(c.addPod(n, cidr(i + 1), 1))
})

afterAll(async () => {
  for (const a of agents) await c.stopAgent(a, 'SIGKILL')
  killBirdsUnder(c.stateDir)
  await c.down()
})

describe('BGP full mesh without a router', () => {
  it('learns every peer CIDR from its owner over iBGP, next hop the owner node', async () => {
    for (const [i, n] of nodes.entries()) {
      const want = nodes.map((m, k) => ({ cidr: cidr(k + 1), nodeIp: m.ip, encap: 'direct', origin: 'bgp' })).filter((_r, k) => k !== i)
      await c.waitFor(
        `${n.name}: mesh routes`,
        () =>
          JSON.stringify(
            c.routes(n).map(({ cidr, nodeIp, encap, origin }: Record<string, unknown>) => ({ cidr, nodeIp, encap, origin })),
          ) === JSON.stringify(want),
        30_000,
        250,
      )
      expect(sh('ip', ['-n', n.ns, 'route', 'show', 'table', '201']).stdout).toContain(`via ${nodes[(i + 1) % 3]!.ip}`)
    }
  })

  it('carries pod traffic between every pair, TCP with the pod source IP kept', async () => {
    for (const a of pods) for (const b of pods) if (a !== b) expect(ping(a.ns, b.ip).status).toBe(0)
    expect(await peerAddressSeen('tcp', pods[2]!.ns, pods[2]!.ip, pods[0]!.ns)).toBe(pods[0]!.ip)
  })
})
