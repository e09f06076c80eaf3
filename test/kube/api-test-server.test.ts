// The Kubernetes API test server itself: it must speak the protocol the real
// client sends and refuse what a kube-apiserver refuses, or the datastore
// tests prove nothing. Loopback only.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { CoreV1Api, KubeConfig, PatchStrategy, Watch, setHeaderOptions } from '@kubernetes/client-node'
import { KubeApiTestServer } from '../support/kube-api-server.js'
import { AGENT_TOKEN, AGENT_USER, makeCert, manifestRules, writeKubeconfig } from '../support/kube.js'

let srv: KubeApiTestServer
const auth = { authorization: `Bearer ${AGENT_TOKEN}` }
const get = (path: string, headers: Record<string, string> = auth) => fetch(srv.url + path, { headers })
const patch = (path: string, type: string, body: unknown) =>
  fetch(srv.url + path, { method: 'PATCH', headers: { ...auth, 'content-type': type }, body: JSON.stringify(body) })

/** Reads a watch stream's first `n` events. */
async function events(path: string, n: number): Promise<{ type: string; object: any }[]> {
  const ac = new AbortController()
  const res = await fetch(srv.url + path, { headers: auth, signal: ac.signal })
  expect(res.status).toBe(200)
  const out: { type: string; object: any }[] = []
  let buf = ''
  const dec = new TextDecoder()
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += dec.decode(chunk)
    let i
    while ((i = buf.indexOf('\n')) >= 0) {
      out.push(JSON.parse(buf.slice(0, i)))
      buf = buf.slice(i + 1)
    }
    if (out.length >= n) break
  }
  ac.abort()
  return out.slice(0, n)
}

beforeEach(async () => {
  srv = new KubeApiTestServer({ tokens: { [AGENT_TOKEN]: AGENT_USER }, rules: manifestRules(), bookmarkIntervalMs: 100 })
  await srv.start()
  srv.createNode({ name: 'n1', podCIDR: '10.244.1.0/24', internalIP: '192.168.5.1' })
  srv.createNode({ name: 'n2', internalIP: '192.168.5.2' })
})
afterEach(() => srv.stop())

describe('Kubernetes API test server', () => {
  it('lists Nodes with the collection resourceVersion', async () => {
    const r = await get('/api/v1/nodes')
    const list = await r.json()
    expect(list.kind).toBe('NodeList')
    expect(list.metadata.resourceVersion).toBe(srv.resourceVersion)
    expect(list.items.map((n: any) => n.metadata.name)).toEqual(['n1', 'n2'])
  })

  it('answers 401 with a Status without a valid bearer token, and 403 for a verb the ClusterRole lacks', async () => {
    for (const h of [{}, { authorization: 'Bearer nope' }]) {
      const r = await get('/api/v1/nodes', h)
      expect(r.status).toBe(401)
      expect((await r.json()).kind).toBe('Status')
    }
    const r = await fetch(srv.url + '/api/v1/nodes/n1', { method: 'DELETE', headers: auth })
    expect(r.status).toBe(403)
    expect((await r.json()).message).toContain(`User "${AGENT_USER}" cannot delete resource "nodes"`)
    expect(srv.log.filter((l) => l.code === 403)).toHaveLength(1)
  })

  it('streams changes after a resourceVersion, with bookmarks only when asked', async () => {
    const rv = srv.resourceVersion
    srv.updateNode('n2', (n) => (n.spec = { podCIDR: '10.244.2.0/24', podCIDRs: ['10.244.2.0/24'] }))
    srv.deleteNode('n1')
    const ev = await events(`/api/v1/nodes?watch=1&resourceVersion=${rv}&allowWatchBookmarks=true`, 3)
    expect(ev.map((e) => e.type)).toEqual(['MODIFIED', 'DELETED', 'BOOKMARK'])
    expect(ev[0]!.object.kind).toBe('Node')
    expect(Number(ev[1]!.object.metadata.resourceVersion)).toBeGreaterThan(Number(ev[0]!.object.metadata.resourceVersion))
    expect(ev[2]!.object.metadata.resourceVersion).toBe(srv.resourceVersion)
    const noBookmarks = await events(`/api/v1/nodes?watch=true&resourceVersion=${rv}`, 2)
    srv.createNode({ name: 'n3' })
    expect(noBookmarks.map((e) => e.type)).toEqual(['MODIFIED', 'DELETED'])
  })

  it('starts a watch without resourceVersion with ADDED for every existing Node', async () => {
    const ev = await events('/api/v1/nodes?watch=true', 2)
    expect(ev.map((e) => [e.type, e.object.metadata.name])).toEqual([
      ['ADDED', 'n1'],
      ['ADDED', 'n2'],
    ])
  })

  it('answers a watch from a compacted resourceVersion with an ERROR event carrying a 410 Expired Status', async () => {
    const rv = srv.resourceVersion
    srv.updateNode('n2', (n) => (n.metadata.labels.x = 'y'))
    srv.compact()
    const [e] = await events(`/api/v1/nodes?watch=true&resourceVersion=${rv}`, 1)
    expect(e).toMatchObject({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } })
    // from the current resourceVersion the watch is fine
    const ok = await fetch(`${srv.url}/api/v1/nodes?watch=true&resourceVersion=${srv.resourceVersion}&timeoutSeconds=1`, { headers: auth })
    expect(ok.status).toBe(200)
    expect(await ok.text()).toBe('')
  })

  it('refuses a malformed or future resourceVersion and resourceVersionMatch on a watch', async () => {
    expect((await get('/api/v1/nodes?watch=true&resourceVersion=abc')).status).toBe(400)
    expect((await get(`/api/v1/nodes?watch=true&resourceVersion=${Number(srv.resourceVersion) + 5}`)).status).toBe(504)
    expect((await get('/api/v1/nodes?watch=true&resourceVersion=1&resourceVersionMatch=Exact')).status).toBe(400)
    expect((await get('/api/v1/nodes?resourceVersionMatch=Exact')).status).toBe(422)
  })

  it('refuses patch content types Kubernetes does not accept for a patch, and bodies that are not JSON', async () => {
    expect((await patch('/api/v1/nodes/n1', 'application/json', { metadata: {} })).status).toBe(415)
    expect((await patch('/api/v1/nodes/n1', 'text/plain', {})).status).toBe(415)
    const bad = await fetch(srv.url + '/api/v1/nodes/n1', {
      method: 'PATCH',
      headers: { ...auth, 'content-type': PatchStrategy.MergePatch },
      body: '{oops',
    })
    expect(bad.status).toBe(400)
    expect((await patch('/api/v1/nodes/nope', PatchStrategy.MergePatch, {})).status).toBe(404)
  })

  it('merges status.conditions by type in a strategic merge patch, and replaces the list in a merge patch', async () => {
    const cond = { type: 'NetworkUnavailable', status: 'False', reason: 'PodnetIsUp' }
    let r = await patch('/api/v1/nodes/n1/status', PatchStrategy.StrategicMergePatch, { status: { conditions: [cond] } })
    expect(r.status).toBe(200)
    expect(srv.getNode('n1')!.status.conditions.map((c: any) => c.type)).toEqual(['Ready', 'NetworkUnavailable'])
    r = await patch('/api/v1/nodes/n1/status', PatchStrategy.MergePatch, { status: { conditions: [cond] } })
    expect(srv.getNode('n1')!.status.conditions.map((c: any) => c.type)).toEqual(['NetworkUnavailable'])
  })

  it('writes only status through nodes/status and never status through nodes', async () => {
    await patch('/api/v1/nodes/n2/status', PatchStrategy.MergePatch, {
      spec: { podCIDR: '10.244.9.0/24' },
      metadata: { annotations: { a: 'b' } },
    })
    expect(srv.getNode('n2')!.spec.podCIDR).toBeUndefined()
    expect(srv.getNode('n2')!.metadata.annotations.a).toBeUndefined()
    await patch('/api/v1/nodes/n2', PatchStrategy.MergePatch, { status: { conditions: [] }, metadata: { annotations: { a: 'b' } } })
    expect(srv.getNode('n2')!.status.conditions).toHaveLength(1)
    expect(srv.getNode('n2')!.metadata.annotations.a).toBe('b')
  })

  it('rejects what validation rejects: a changed podCIDR, a non-string annotation, a bad condition, a stale resourceVersion', async () => {
    expect((await patch('/api/v1/nodes/n1', PatchStrategy.MergePatch, { spec: { podCIDR: '10.244.7.0/24' } })).status).toBe(422)
    expect((await patch('/api/v1/nodes/n1', PatchStrategy.MergePatch, { metadata: { annotations: { p: 8472 } } })).status).toBe(400)
    const badCond = { status: { conditions: [{ type: 'NetworkUnavailable', status: 'false' }] } }
    expect((await patch('/api/v1/nodes/n1/status', PatchStrategy.StrategicMergePatch, badCond)).status).toBe(422)
    const stale = { metadata: { resourceVersion: '1', annotations: { a: 'b' } } }
    expect((await patch('/api/v1/nodes/n1', PatchStrategy.MergePatch, stale)).status).toBe(409)
    expect(srv.getNode('n1')!.metadata.annotations).toEqual({})
  })

  it('applies a JSON patch and fails it as a whole when a test op fails', async () => {
    const ops = [{ op: 'add', path: '/metadata/annotations/x', value: '1' }]
    expect((await patch('/api/v1/nodes/n1', PatchStrategy.JsonPatch, ops)).status).toBe(200)
    expect(srv.getNode('n1')!.metadata.annotations).toEqual({ x: '1' })
    const failing = [
      { op: 'add', path: '/metadata/annotations/y', value: '2' },
      { op: 'test', path: '/metadata/annotations/x', value: '9' },
    ]
    expect((await patch('/api/v1/nodes/n1', PatchStrategy.JsonPatch, failing)).status).toBe(422)
    expect(srv.getNode('n1')!.metadata.annotations).toEqual({ x: '1' })
  })

  it('does not write (no new resourceVersion, no event) for a patch that changes nothing', async () => {
    await patch('/api/v1/nodes/n1', PatchStrategy.MergePatch, { metadata: { annotations: { a: 'b' } } })
    const rv = srv.resourceVersion
    await patch('/api/v1/nodes/n1', PatchStrategy.MergePatch, { metadata: { annotations: { a: 'b' } } })
    expect(srv.resourceVersion).toBe(rv)
  })

  it('serves the real client over HTTPS: listNode, Watch with bookmarks, patchNodeStatus with the content type chosen by a middleware', async () => {
    // the raw protocol tests above use plain HTTP; the client insists on TLS
    const tls = makeCert(['127.0.0.1'])
    await srv.stop()
    srv = new KubeApiTestServer({ tokens: { [AGENT_TOKEN]: AGENT_USER }, rules: manifestRules(), bookmarkIntervalMs: 100, tls })
    await srv.start()
    srv.createNode({ name: 'n1', podCIDR: '10.244.1.0/24', internalIP: '192.168.5.1' })
    srv.createNode({ name: 'n2', internalIP: '192.168.5.2' })
    const kc = new KubeConfig()
    const dir = mkdtempSync(join(tmpdir(), 'pnk8-kc-'))
    kc.loadFromFile(writeKubeconfig(srv.url, tls.cert, AGENT_TOKEN, dir))
    rmSync(dir, { recursive: true })
    const api = kc.makeApiClient(CoreV1Api)
    const list = await api.listNode({})
    expect(list.items).toHaveLength(2)
    const seen: string[] = []
    const req = await new Watch(kc).watch(
      '/api/v1/nodes',
      { resourceVersion: list.metadata!.resourceVersion, allowWatchBookmarks: true },
      (type) => seen.push(type),
      () => undefined,
    )
    const body = { status: { conditions: [{ type: 'NetworkUnavailable', status: 'False', reason: 'PodnetIsUp' }] } }
    await api.patchNodeStatus({ name: 'n1', body }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch))
    // without the middleware the client sends application/json-patch+json, which needs an array of ops
    await expect(api.patchNodeStatus({ name: 'n1', body })).rejects.toMatchObject({ code: 400 })
    await new Promise((r) => setTimeout(r, 250))
    req.abort()
    expect(seen).toContain('MODIFIED')
    expect(seen).toContain('BOOKMARK')
    const patches = srv.log.filter((l) => l.verb === 'patch')
    expect(patches.map((p) => [p.contentType, p.code])).toEqual([
      [PatchStrategy.StrategicMergePatch, 200],
      [PatchStrategy.JsonPatch, 400],
    ])
    expect(srv.log.find((l) => l.verb === 'watch')!.query).toMatchObject({ watch: 'true', allowWatchBookmarks: 'true' })
  })
})
