// The Kubernetes datastore against the Kubernetes API test server (HTTPS,
// bearer token, RBAC from deploy/podnet-bpf.yaml) on loopback.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { KubernetesDatastore, loadKubeConfig, peerOf } from '../../../src/agent/datastores/kubernetes.js'
import type { DatastoreContext, Logger } from '../../../src/agent/datastore.js'
import { UserError } from '../../../src/errors.js'
import { KubeApiTestServer, nodeObject } from '../../support/kube-api-server.js'
import { AGENT_TOKEN, AGENT_USER, makeCert, manifestRules, writeKubeconfig } from '../../support/kube.js'

let tls: { cert: string; key: string }
let srv: KubeApiTestServer
let ds: KubernetesDatastore | null = null
let restarts = 0
let errors = 0
const lines: string[] = []
const log: Logger = {
  info: (m, f) => lines.push(`info ${m} ${JSON.stringify(f ?? {})}`),
  warn: (m, f) => lines.push(`warn ${m} ${JSON.stringify(f ?? {})}`),
  error: (m, f) => lines.push(`error ${m} ${JSON.stringify(f ?? {})}`),
  debug: () => undefined,
}
const ctx = (over: Partial<DatastoreContext> = {}): DatastoreContext => ({
  nodeName: 'n1',
  nodeIp: '192.168.5.200',
  mode: 'auto',
  vxlanPort: 8472,
  leaseTtlMs: 30_000,
  log,
  events: { watchRestart: () => restarts++, error: () => errors++ },
  ...over,
})
const until = async (what: string, cond: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}
function open(over: Partial<DatastoreContext> = {}, token = AGENT_TOKEN): KubernetesDatastore {
  ds = new KubernetesDatastore(ctx(over), {
    kubeconfig: writeKubeconfig(srv.url, tls.cert, token, tmp),
    backoffMinMs: 50,
    backoffMaxMs: 200,
  })
  return ds
}
const peerNames = (d: KubernetesDatastore) => d.peers().map((p) => `${p.name}=${p.podCidr}@${p.nodeIp}`)

const tmp = mkdtempSync(join(tmpdir(), 'pnk8-ds-'))
beforeAll(() => {
  tls = makeCert(['127.0.0.1'])
})
afterAll(() => rmSync(tmp, { recursive: true, force: true }))
beforeEach(async () => {
  lines.length = 0
  restarts = errors = 0
  srv = new KubeApiTestServer({ tokens: { [AGENT_TOKEN]: AGENT_USER }, rules: manifestRules(), bookmarkIntervalMs: 100, tls })
  await srv.start()
  srv.createNode({ name: 'n1', podCIDR: '10.244.1.0/24', internalIP: '192.168.5.1' })
  srv.createNode({ name: 'n2', podCIDR: '10.244.2.0/24', internalIP: '192.168.5.2' })
})
afterEach(async () => {
  await ds?.stop()
  ds = null
  await srv.stop()
  // every request the datastore made is one the ClusterRole allows
  expect(srv.log.filter((l) => l.code === 403 || l.code === 401).map((l) => `${l.verb} ${l.resource}`)).toEqual([])
})

describe('Kubernetes datastore', () => {
  it('takes the own pod CIDR and InternalIP from its Node, and publishes node IP, mode and VXLAN port as annotations', async () => {
    const d = open({ mode: 'vxlan', vxlanPort: 4789 })
    const own = await d.start(AbortSignal.timeout(5000))
    expect(own).toEqual({ name: 'n1', podCidr: '10.244.1.0/24', nodeIp: '192.168.5.1' })
    expect(srv.getNode('n1')!.metadata.annotations).toEqual({
      'podnet.io/node-ip': '192.168.5.1',
      'podnet.io/mode': 'vxlan',
      'podnet.io/vxlan-port': '4789',
    })
    const patches = srv.log.filter((l) => l.verb === 'patch')
    expect(patches.map((p) => [p.resource, p.contentType, p.code])).toEqual([['nodes', 'application/merge-patch+json', 200]])
    expect(peerNames(d)).toEqual(['n2=10.244.2.0/24@192.168.5.2'])
    expect(d.status().ready).toBe(true)
  })

  it('waits for a pod CIDR, says so in status, and starts once kube-controller-manager assigns one', async () => {
    srv.createNode({ name: 'n3', internalIP: '192.168.5.3' })
    const d = open({ nodeName: 'n3' })
    let own: unknown = null
    const started = d.start(AbortSignal.timeout(10_000)).then((o) => (own = o))
    await until('the waiting status', () => /no IPv4 pod CIDR yet/.test(d.status().reason ?? ''))
    expect(d.status().ready).toBe(false)
    expect(own).toBe(null)
    expect(lines.some((l) => l.includes('no IPv4 pod CIDR yet'))).toBe(true)
    srv.updateNode('n3', (n) => (n.spec = { podCIDR: '10.244.3.0/24', podCIDRs: ['fd00::/64', '10.244.3.0/24'] }))
    await started
    expect(own).toEqual({ name: 'n3', podCidr: '10.244.3.0/24', nodeIp: '192.168.5.3' })
    expect(d.status().ready).toBe(true)
  })

  it('says when its Node does not exist rather than waiting silently', async () => {
    const d = open({ nodeName: 'ghost' })
    const started = d.start(AbortSignal.timeout(300)).catch((e) => e)
    await until('the status', () => /Node "ghost" does not exist/.test(d.status().reason ?? ''))
    expect(await started).toBeInstanceOf(Error)
  })

  it('follows peers: a Node given a pod CIDR appears, annotations override the IP and set mode, a deleted Node disappears', async () => {
    const d = open()
    await d.start(AbortSignal.timeout(5000))
    let changes = 0
    d.watch(() => changes++, AbortSignal.timeout(60_000))
    srv.createNode({ name: 'n4', internalIP: '10.0.0.4' })
    await new Promise((r) => setTimeout(r, 200))
    expect(peerNames(d)).toEqual(['n2=10.244.2.0/24@192.168.5.2'])
    expect(changes).toBe(0) // a Node without a pod CIDR is no peer: no change to act on
    srv.updateNode('n4', (n) => (n.spec = { podCIDR: '10.244.4.0/24' }))
    srv.updateNode('n2', (n) => Object.assign(n.metadata.annotations, { 'podnet.io/node-ip': '172.16.0.2', 'podnet.io/mode': 'vxlan' }))
    await until('n4 and the n2 override', () => peerNames(d).join() === 'n2=10.244.2.0/24@172.16.0.2,n4=10.244.4.0/24@10.0.0.4')
    expect(d.peers()[0]!.mode).toBe('vxlan')
    srv.deleteNode('n2')
    await until('n2 gone', () => peerNames(d).join() === 'n4=10.244.4.0/24@10.0.0.4')
    expect(changes).toBeGreaterThanOrEqual(2)
  })

  it('re-watches from the last resourceVersion when a watch ends, without relisting', async () => {
    const d = open()
    await d.start(AbortSignal.timeout(5000))
    await until('a watch', () => srv.watchCount === 1)
    srv.updateNode('n2', (n) => (n.metadata.labels.a = 'b'))
    await until('the event', () => d.status().detail?.resourceVersion === srv.resourceVersion)
    expect(srv.cutWatches()).toBe(1)
    await until('a second watch', () => srv.watchCount === 1)
    const watches = srv.log.filter((l) => l.verb === 'watch')
    expect(watches).toHaveLength(2)
    expect(watches[1]!.query.resourceVersion).toBe(srv.resourceVersion)
    expect(watches[1]!.query.allowWatchBookmarks).toBe('true')
    expect(srv.log.filter((l) => l.verb === 'list')).toHaveLength(1)
  })

  it('follows bookmarks, so a compaction after them does not force a relist', async () => {
    const d = open()
    await d.start(AbortSignal.timeout(5000))
    await until('a watch', () => srv.watchCount === 1)
    srv.advance(50) // other resources were written; no Node changed
    await until('a bookmark with the new resourceVersion', () => d.status().detail?.resourceVersion === srv.resourceVersion)
    srv.compact()
    srv.cutWatches()
    await until('a new watch', () => srv.watchCount === 1)
    const watches = srv.log.filter((l) => l.verb === 'watch')
    expect(watches.at(-1)!.query.resourceVersion).toBe(srv.resourceVersion)
    expect(srv.log.filter((l) => l.verb === 'list')).toHaveLength(1)
    expect(d.status().detail).toMatchObject({ relists410: 0 })
    expect((d.status().detail?.bookmarks as number) > 0).toBe(true)
  })

  it('relists on 410 Gone and keeps its peers throughout (no change reported when nothing changed)', async () => {
    srv.createNode({ name: 'n3', podCIDR: '10.244.3.0/24', internalIP: '192.168.5.3' })
    const d = open()
    await d.start(AbortSignal.timeout(5000))
    await until('a watch', () => srv.watchCount === 1)
    const before = peerNames(d)
    let changes = 0
    d.watch(() => changes++, AbortSignal.timeout(60_000))
    const snapshots: string[][] = []
    const sampler = setInterval(() => snapshots.push(peerNames(d)), 5)
    // while the agent is cut off, a change lands and history is compacted past
    // its resourceVersion: the re-watch gets ERROR 410 and must relist
    await srv.stop()
    srv.updateNode('n3', (n) => (n.metadata.labels.c = 'd'))
    srv.compact()
    await srv.start()
    await until('a relist', () => srv.log.filter((l) => l.verb === 'list').length === 2)
    await until('a new watch', () => srv.watchCount === 1)
    clearInterval(sampler)
    expect(d.status().detail).toMatchObject({ relists410: 1, lists: 2 })
    expect(restarts).toBeGreaterThanOrEqual(2) // the watch after the outage's first error, and the relist
    expect(errors).toBeGreaterThanOrEqual(1)
    expect(snapshots.every((s) => s.join() === before.join())).toBe(true)
    expect(changes).toBe(0)
    expect(lines.some((l) => l.includes('410 Gone'))).toBe(true)
  })

  it('keeps its peers and reports not ready while the API server is down, and converges when it is back', async () => {
    const d = open()
    await d.start(AbortSignal.timeout(5000))
    await until('a watch', () => srv.watchCount === 1)
    await srv.stop()
    await until('not ready', () => !d.status().ready)
    // first the cut watch ("Premature close"), then the refused reconnects
    await until('a refused reconnect', () => /ECONNREFUSED/.test(d.status().reason ?? ''))
    expect(d.status().ready).toBe(false)
    expect(d.status().reason).toMatch(/^Kubernetes API https:\/\/127\.0\.0\.1:\d+ unavailable: .*; datapath kept as it is$/)
    expect(peerNames(d)).toEqual(['n2=10.244.2.0/24@192.168.5.2'])
    srv.deleteNode('n2') // while down
    srv.createNode({ name: 'n5', podCIDR: '10.244.5.0/24', internalIP: '192.168.5.5' })
    await new Promise((r) => setTimeout(r, 300))
    expect(peerNames(d)).toEqual(['n2=10.244.2.0/24@192.168.5.2'])
    await srv.start()
    await until('ready', () => d.status().ready)
    await until('converged', () => peerNames(d).join() === 'n5=10.244.5.0/24@192.168.5.5')
  })

  it('keeps its peers and reports not ready while the API server answers 503, and converges when it is healthy', async () => {
    const d = open()
    await d.start(AbortSignal.timeout(5000))
    await until('a watch', () => srv.watchCount === 1)
    srv.fail(503)
    srv.cutWatches()
    await until('not ready with the status', () => /unavailable: HTTP 503/.test(d.status().reason ?? ''))
    srv.deleteNode('n2')
    await new Promise((r) => setTimeout(r, 300))
    expect(peerNames(d)).toEqual(['n2=10.244.2.0/24@192.168.5.2'])
    srv.fail(null)
    await until('ready and converged', () => d.status().ready && peerNames(d).length === 0)
    srv.log.length = 0 // the 503s were ours
  })

  it('sets NetworkUnavailable=False with reason PodnetIsUp by a strategic merge patch on nodes/status, once', async () => {
    const d = open()
    await d.start(AbortSignal.timeout(5000))
    await d.markReady()
    const conds = srv.getNode('n1')!.status.conditions
    expect(conds.map((c: { type: string }) => c.type)).toEqual(['Ready', 'NetworkUnavailable'])
    const nu = conds[1]
    expect(nu).toMatchObject({ type: 'NetworkUnavailable', status: 'False', reason: 'PodnetIsUp' })
    expect(Date.parse(nu.lastTransitionTime)).toBeGreaterThan(Date.now() - 10_000)
    expect(nu.lastHeartbeatTime).toBe(nu.lastTransitionTime)
    const p = srv.log.filter((l) => l.resource === 'nodes/status')
    expect(p.map((l) => [l.verb, l.contentType, l.code])).toEqual([['patch', 'application/strategic-merge-patch+json', 200]])
    expect(Object.keys(p[0]!.body as object)).toEqual(['status'])
    await until(
      'the cache sees it',
      () => srv.log.filter((l) => l.verb === 'watch').length > 0 && d.status().detail?.resourceVersion === srv.resourceVersion,
    )
    await d.markReady() // already so: no second write
    expect(srv.log.filter((l) => l.resource === 'nodes/status')).toHaveLength(1)
  })

  it('writes its annotations and condition again when its Node is deleted and registered again', async () => {
    const d = open()
    await d.start(AbortSignal.timeout(5000))
    await d.markReady()
    srv.deleteNode('n1')
    srv.createNode({ name: 'n1', podCIDR: '10.244.1.0/24', internalIP: '192.168.5.1' })
    await until('annotations and condition back', () => {
      const n = srv.getNode('n1')!
      return (
        n.metadata.annotations['podnet.io/mode'] === 'auto' &&
        n.status.conditions.some((c: { reason?: string }) => c.reason === 'PodnetIsUp')
      )
    })
    expect(srv.log.filter((l) => l.verb === 'patch').map((l) => l.resource)).toEqual(['nodes', 'nodes/status', 'nodes', 'nodes/status'])
  })

  it('uses only verbs the ClusterRole grants, and every verb it grants', async () => {
    const d = open()
    await d.start(AbortSignal.timeout(5000))
    await d.markReady()
    await until('a watch', () => srv.watchCount === 1)
    const used = new Set(srv.log.map((l) => `${l.resource}:${l.verb}`))
    const granted = new Set(manifestRules().flatMap((r) => r.resources!.flatMap((res) => r.verbs!.map((v) => `${res}:${v}`))))
    expect([...used].sort()).toEqual([...granted].sort())
  })

  it('reports a wrong token as not ready with the HTTP status, and keeps trying', async () => {
    const d = open({}, 'wrong-token')
    const started = d.start(AbortSignal.timeout(500)).catch((e) => e)
    await until('not ready', () => /HTTP 401/.test(d.status().reason ?? ''))
    await started
    await d.stop()
    expect(srv.log.filter((l) => l.verb === 'list' && l.code === 401).length).toBeGreaterThan(1)
    srv.log.length = 0 // expected 401s
  })

  it('refuses a missing kubeconfig and a missing in-cluster environment with a Fix hint', () => {
    expect(() => loadKubeConfig('/nonexistent/kubeconfig')).toThrow(UserError)
    const saved = process.env.KUBERNETES_SERVICE_HOST
    delete process.env.KUBERNETES_SERVICE_HOST
    try {
      expect(() => loadKubeConfig()).toThrow(/not running in a Kubernetes pod/)
    } finally {
      if (saved !== undefined) process.env.KUBERNETES_SERVICE_HOST = saved
    }
  })

  it('turns a Node into a peer only with an IPv4 pod CIDR and an address, ignoring malformed annotations', () => {
    const n = (over: object) => ({ ...nodeObject({ name: 'x', podCIDR: '10.244.9.0/24', internalIP: '10.1.1.1' }), ...over })
    expect(peerOf(n({}) as never)).toEqual({ name: 'x', podCidr: '10.244.9.0/24', nodeIp: '10.1.1.1' })
    expect(peerOf(n({ spec: { podCIDRs: ['fd00::/64'] } }) as never)).toBe(null)
    expect(peerOf(n({ status: { addresses: [] } }) as never)).toBe(null)
    const ann = { 'podnet.io/node-ip': 'nope', 'podnet.io/mode': 'warp', 'podnet.io/vxlan-port': '99999' }
    expect(peerOf(n({ metadata: { name: 'x', annotations: ann } }) as never)).toEqual({
      name: 'x',
      podCidr: '10.244.9.0/24',
      nodeIp: '10.1.1.1',
    })
  })
})
