// `podnet-bpf agent --datastore kubernetes` on nodes in network namespaces,
// against the Kubernetes API test server (its own namespace on the underlay,
// HTTPS, bearer token, the ClusterRole from deploy/podnet-bpf.yaml enforced).
// Real datapath, pods created by the CNI plugin from the conflist each agent
// writes, real pings; the test server only stands in for
// kube-apiserver and kube-controller-manager (it assigns pod CIDRs when told).
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { allowedBy } from '../support/kube-api-server.js'
import { KubeCluster, type KNode } from '../support/kube-cluster.js'
import { manifestRules } from '../support/kube.js'
import { cli, cliJson, sleep } from '../support/sys.js'

const c = new KubeCluster('pnk8e')
const CIDRS = (names: string[]) => names.map((n) => `10.88.${n.slice(1)}.0/24`).sort()

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 30_000): Promise<number> {
  const t0 = Date.now()
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await sleep(100)
  }
  return Date.now() - t0
}
const ready = (n: KNode) => c.probe(n, '/readyz').code === 200
const peerCidrs = (n: KNode) => Object.keys(c.kernelRoutes(n)).sort()
const nodes = (...names: string[]) => names.map((x) => c.node(x))

/** `ip monitor route` in each node namespace: every route the agents add or remove while it runs. */
function monitorRoutes(ns: KNode[]): { stop: () => Promise<string[]> } {
  const procs: [KNode, ChildProcess, string[]][] = ns.map((n) => {
    const p = spawn('ip', ['-n', n.ns, 'monitor', 'route'], { stdio: ['ignore', 'pipe', 'inherit'] })
    const lines: string[] = []
    p.stdout.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)))
    return [n, p, lines]
  })
  return {
    stop: async () => {
      await sleep(200)
      for (const [, p] of procs) p.kill()
      return procs.flatMap(([n, , lines]) => lines.filter((l) => l.includes('10.88.')).map((l) => `${n.name}: ${l}`))
    },
  }
}

beforeAll(async () => {
  await c.up()
  for (const i of [1, 2, 3, 4]) c.addNodeNs(i)
  for (const n of nodes('n1', 'n2', 'n3')) {
    await c.api.createNode({ name: n.name, podCIDR: n.podCidr, internalIP: n.ip })
    c.startAgent(n)
  }
  await until('three ready agents', () => nodes('n1', 'n2', 'n3').every(ready), 90_000)
  for (const n of nodes('n1', 'n2', 'n3')) c.addPodCni(n, 1)
}, 180_000)

afterAll(async () => {
  const left = existsSync(c.dir) ? [...c.nodes.values()].map((n) => `--- ${n.name}\n${c.log(n).slice(-3000)}`).join('\n') : ''
  await c.down()
  if (process.env.PODNET_TEST_VERBOSE) console.log(left)
}, 60_000)

describe('agent --datastore kubernetes', () => {
  it('refuses to start with no cluster to talk to: one clear error with a Fix hint, non-zero exit, nothing attached', () => {
    const pinDir = `/sys/fs/bpf/${c.prefix}-bad`
    const base = ['agent', '--datastore', 'kubernetes', '--node-name', 'x', '--listen', '127.0.0.1:0', '--pin-dir', pinDir]
    const env = { ...c.env, KUBERNETES_SERVICE_HOST: '', KUBERNETES_SERVICE_PORT: '' }
    for (const [args, msg] of [
      [base, /^Error: not running in a Kubernetes pod: KUBERNETES_SERVICE_HOST\/PORT are not set\nFix: pass --kubeconfig FILE/m],
      [[...base, '--kubeconfig', '/nonexistent/kubeconfig'], /^Error: cannot load kubeconfig \/nonexistent\/kubeconfig: ENOENT.*\nFix: /m],
    ] as const) {
      const r = cli(null, [...args], env)
      expect(r.status).not.toBe(0)
      expect(r.stderr).toMatch(msg)
      expect(existsSync(pinDir)).toBe(false)
    }
  })

  it('three Nodes: every agent routes both peers, the pod mesh (pods from the CNI plugin) is complete, each Node is marked network-ready before its CNI config', async () => {
    for (const n of nodes('n1', 'n2', 'n3')) {
      expect(peerCidrs(n), n.name).toEqual(CIDRS(['n1', 'n2', 'n3'].filter((x) => x !== n.name)))
      // the plugin (ADD with the conflist the agent wrote) gave the pod an address of this node's CIDR and registered it
      expect(n.pods[0]!.ip.startsWith(n.podCidr.replace(/0\/24$/, ''))).toBe(true)
      const eps = cliJson<{ ip: string }[]>(n.ns, ['endpoints', 'list', '--pin-dir', n.pinDir], c.env)
      expect(eps.map((e) => e.ip)).toEqual([n.pods[0]!.ip])
    }
    const pods = nodes('n1', 'n2', 'n3').map((n) => n.pods[0]!)
    for (const a of pods) for (const b of pods) if (a !== b) expect(c.ping(a, b), `${a.ip} → ${b.ip}`).toBe(true)
    for (const n of nodes('n1', 'n2', 'n3')) {
      const node = (await c.api.getNode(n.name))!
      expect(node.status.conditions.find((x: { type: string }) => x.type === 'NetworkUnavailable')).toMatchObject({
        status: 'False',
        reason: 'PodnetIsUp',
      })
      expect(node.metadata.annotations).toMatchObject({
        'podnet.io/node-ip': n.ip,
        'podnet.io/mode': 'auto',
        'podnet.io/vxlan-port': '8472',
      })
      const log = c.log(n)
      expect(log.indexOf('NetworkUnavailable=False'), n.name).toBeGreaterThan(0)
      expect(log.indexOf('NetworkUnavailable=False')).toBeLessThan(log.indexOf('CNI config written'))
    }
    const reqs = await c.api.log()
    const statusPatches = reqs.filter((r) => r.resource === 'nodes/status')
    expect(statusPatches.map((r) => [r.verb, r.contentType, r.code])).toEqual(
      Array(3).fill(['patch', 'application/strategic-merge-patch+json', 200]),
    )
    // every request the agents made is one the ClusterRole in deploy/ allows (the test server enforces it too)
    const rules = manifestRules()
    expect(reqs.filter((r) => !allowedBy(rules, r.verb, r.resource, r.name) || r.code >= 400)).toEqual([])
  })

  it('a Node without a pod CIDR: its agent waits (not ready, nothing attached), then attaches and its peers add it', async () => {
    const n4 = c.node('n4')
    await c.api.createNode({ name: 'n4', internalIP: n4.ip })
    c.startAgent(n4)
    await until('n4 to report the missing pod CIDR', () => /no IPv4 pod CIDR yet/.test(c.probe(n4, '/readyz').body))
    expect(existsSync(n4.pinDir)).toBe(false)
    expect(peerCidrs(c.node('n1'))).not.toContain('10.88.4.0/24')
    await c.api.setPodCidr('n4', n4.podCidr)
    await until('n4 ready', () => ready(n4))
    await until('n1..n3 to route n4', () => nodes('n1', 'n2', 'n3').every((n) => peerCidrs(n).includes('10.88.4.0/24')))
    expect(peerCidrs(n4)).toEqual(CIDRS(['n1', 'n2', 'n3']))
    const pod = c.addPodCni(n4, 1)
    expect(c.ping(c.node('n1').pods[0]!, pod)).toBe(true)
  })

  it('a Node deleted: its routes vanish from every peer; registered again: back, annotations and condition rewritten', async () => {
    const others = nodes('n1', 'n3', 'n4')
    await c.api.deleteNode('n2')
    const gone = await until('n2 routes gone everywhere', () => others.every((n) => !peerCidrs(n).includes('10.88.2.0/24')), 15_000)
    expect(c.ping(c.node('n1').pods[0]!, c.node('n2').pods[0]!)).toBe(false)
    const n2 = c.node('n2')
    await c.api.createNode({ name: 'n2', podCIDR: n2.podCidr, internalIP: n2.ip })
    const back = await until('n2 routes back', () => others.every((n) => peerCidrs(n).includes('10.88.2.0/24')), 15_000)
    expect(c.ping(c.node('n1').pods[0]!, n2.pods[0]!)).toBe(true)
    await until('n2 annotated and network-ready again', async () => {
      const node = (await c.api.getNode('n2'))!
      return (
        node.metadata.annotations['podnet.io/node-ip'] === n2.ip &&
        node.status.conditions.some((x: { reason?: string }) => x.reason === 'PodnetIsUp')
      )
    })
    console.log(`node deleted → routes gone on 3 peers in ${gone} ms; re-created → back in ${back} ms`)
  })

  it('a cut watch and a 410 relist change no route: nothing removed and re-added, no reconcile writes', async () => {
    const all = nodes('n1', 'n2', 'n3', 'n4')
    const before = all.map((n) => c.kernelRoutes(n))
    const logLen = all.map((n) => c.log(n).length)
    const mon = monitorRoutes(all)
    const watchesBefore = (await c.api.log()).filter((r) => r.verb === 'watch').length
    expect(await c.api.cutWatches()).toBe(4)
    await until('4 re-watches', async () => (await c.api.log()).filter((r) => r.verb === 'watch').length >= watchesBefore + 4)
    // history compacted past the agents' resourceVersion while they are cut off: their watch gets ERROR 410
    const listsBefore = (await c.api.log()).filter((r) => r.verb === 'list').length
    await c.api.down()
    await c.api.setLabel('n1', 'example.com/touched', 'yes')
    await c.api.compact()
    await c.api.up()
    await until('4 relists', async () => (await c.api.log()).filter((r) => r.verb === 'list').length >= listsBefore + 4)
    await until('all ready again', () => all.every(ready))
    await sleep(1000)
    expect(await mon.stop()).toEqual([])
    expect(all.map((n) => c.kernelRoutes(n))).toEqual(before)
    for (const [i, n] of all.entries()) {
      const since = c.log(n).slice(logLen[i])
      expect(since, n.name).toContain('410 Gone')
      expect(since, n.name).not.toContain('routes reconciled')
    }
  })

  it('API server down 30 s: forwarding unchanged, agents not ready and saying why; back: they converge', async () => {
    const all = nodes('n1', 'n2', 'n3', 'n4')
    const before = all.map((n) => c.kernelRoutes(n))
    const [a, b] = [c.node('n1').pods[0]!, c.node('n3').pods[0]!]
    const pinger = spawn('ip', ['netns', 'exec', a.ns, 'ping', '-c', '150', '-i', '0.2', '-q', b.ip], { stdio: ['ignore', 'pipe', 'pipe'] })
    let pingOut = ''
    pinger.stdout.on('data', (d: Buffer) => (pingOut += d.toString()))
    const pingDone = new Promise<number>((r) => pinger.on('exit', (code) => r(code ?? -1)))
    await c.api.down()
    const t0 = Date.now()
    await until('every agent not ready', () => all.every((n) => !ready(n)), 15_000)
    for (const n of all) expect(c.probe(n, '/readyz').body).toMatch(/Kubernetes API https:\/\/192\.168\.88\.250:6443 unavailable/)
    await c.api.deleteNode('n4') // lands while the agents cannot see it
    await sleep(30_000 - (Date.now() - t0))
    expect(all.map((n) => c.kernelRoutes(n))).toEqual(before)
    await c.api.up()
    const took = await until('n4 routes gone after the outage', () =>
      nodes('n1', 'n2', 'n3').every((n) => !peerCidrs(n).includes('10.88.4.0/24')),
    )
    await until('n1..n3 ready', () => nodes('n1', 'n2', 'n3').every(ready))
    expect(await pingDone, pingOut).toBe(0)
    expect(pingOut).toMatch(/150 packets transmitted, 150 received/)
    console.log(`API server back → converged in ${took} ms; 150/150 pings during the outage`)
    const rss = all.map((n) => /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${n.agent!.pid}/status`, 'utf8'))![1]!)
    console.log(`agent RSS (kB): ${all.map((n, i) => `${n.name} ${rss[i]}`).join(', ')}`)
  }, 120_000)
})
