// The etcd datastore against a real etcd (one member on the loopback of a
// namespace of this test's own), driven by scripts that run the built
// modules in that namespace:
// - keepalives go over one LeaseKeepAlive stream for the lease's life
//   (counted by etcd itself: grpc_server_started_total) and keep a 2 s lease
//   alive for 4 TTLs;
// - a watch whose connection breaks after etcd confirmed it, before the
//   history it asked for arrived, still delivers that history when it
//   resumes (etcd3 alone resumes from etcd's newest revision and skips it).
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { etcdArgs } from '../../src/services/lab/cluster.js'
import { must, ROOT, runId, sh, sleep } from '../support/sys.js'

const ns = runId('pnagt-e')
const dir = mkdtempSync(join(tmpdir(), `${ns}-`))
const ENDPOINT = 'http://127.0.0.1:2379'
let etcd: ChildProcess

/** Runs an ES module script in the namespace; it prints one JSON line. */
function runScript<T>(body: string, timeoutMs = 60_000): T {
  const script = `
    import { EtcdDatastore } from '${join(ROOT, 'dist/agent/etcd-datastore.js')}'
    import { clusterInit } from '${join(ROOT, 'dist/services/etcd.js')}'
    import { createLogger } from '${join(ROOT, 'dist/agent/log.js')}'
    import { Etcd3 } from '${join(ROOT, 'node_modules/etcd3/lib/index.js')}'
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
    const log = createLogger('json', { level: 'debug', write: (l) => process.stderr.write(l) })
    const ctx = (name, ttlMs) => ({ nodeName: name, nodeIp: '192.168.99.1', vxlanPort: 8472, leaseTtlMs: ttlMs, log, events: { watchRestart() {}, error() {} } })
    ${body}`
  const r = sh('nsenter', [`--net=/run/netns/${ns}`, 'node', '--input-type=module', '-e', script], { timeoutMs })
  if (r.status !== 0) throw new Error(`script failed (${r.status}):\n${r.stderr}`)
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as T
}

/** etcd's own count of LeaseKeepAlive streams opened so far. */
function keepaliveStreams(): number {
  const m = must('nsenter', [`--net=/run/netns/${ns}`, 'curl', '-s', `${ENDPOINT}/metrics`])
  const line = m.split('\n').find((l) => l.startsWith('grpc_server_started_total') && l.includes('grpc_method="LeaseKeepAlive"'))
  return line ? Number(line.split(' ').pop()) : 0
}

beforeAll(async () => {
  must('ip', ['netns', 'add', ns])
  must('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
  // one member on the namespace's loopback (ENDPOINT), with the lab's etcd flags
  const member = { name: 'e1', ip: '127.0.0.1', dataDir: join(dir, 'etcd'), initialCluster: 'e1=http://127.0.0.1:2380' }
  etcd = spawn('nsenter', [`--net=/run/netns/${ns}`, ...etcdArgs({ ...member, state: 'new', token: ns })], { stdio: 'ignore' })
  for (
    let i = 0;
    sh('nsenter', [`--net=/run/netns/${ns}`, 'etcdctl', '--endpoints', ENDPOINT, 'endpoint', 'health'], {
      env: { ...process.env, ETCDCTL_API: '3' },
    }).status !== 0;
    i++
  ) {
    if (i > 100) throw new Error('etcd did not start')
    await sleep(200)
  }
  must('nsenter', [
    `--net=/run/netns/${ns}`,
    'node',
    join(ROOT, 'bin/run.js'),
    'cluster',
    'init',
    '--etcd-endpoints',
    ENDPOINT,
    '--network',
    '10.244.0.0/16',
  ])
}, 60_000)
afterAll(() => {
  etcd?.kill('SIGKILL')
  sh('ip', ['netns', 'del', ns])
  rmSync(dir, { recursive: true, force: true })
})

describe('etcd datastore', () => {
  it('keeps a 2 s lease alive for 4 TTLs over one keepalive stream', () => {
    const before = keepaliveStreams()
    const r = runScript<{ streams: number; alive: boolean; ttl: number }>(`
      const ds = new EtcdDatastore(ctx('ka1', 2000), { endpoints: ['${ENDPOINT}'], prefix: '/podnet.io/network' })
      const ac = new AbortController()
      await ds.start(ac.signal)
      await sleep(8000)
      const c = new Etcd3({ hosts: '${ENDPOINT}' })
      const kv = await c.get(ds.status().detail.subnetKey).exec()
      const ttl = kv.kvs[0] ? (await c.leaseClient.leaseTimeToLive({ ID: kv.kvs[0].lease })).TTL : -1
      console.log(JSON.stringify({ streams: ds.status().detail.keepaliveStreams, alive: kv.kvs.length === 1, ttl: Number(ttl) }))
      await ds.stop(); c.close(); process.exit(0)`)
    expect(r.alive).toBe(true)
    expect(r.ttl).toBeGreaterThan(0)
    expect(keepaliveStreams() - before).toBe(1) // etcd's count
    expect(r.streams).toBe(1) // the store's
  })

  it('resumes a watch broken before its history arrived from the revision it applied, and sees that history', () => {
    // every connection of the store goes through a proxy the script can cut at the right moment
    const r = runScript<{ peers: number; waitedMs: number }>(`
      import net from 'node:net'
      const conns = new Set()
      const proxy = net.createServer((c) => {
        const u = net.connect(2379, '127.0.0.1')
        for (const s of [c, u]) { conns.add(s); s.on('error', () => {}); s.on('close', () => conns.delete(s)) }
        c.pipe(u); u.pipe(c)
        c.on('close', () => u.destroy()); u.on('close', () => c.destroy())
      })
      await new Promise((r) => proxy.listen(23790, '127.0.0.1', r))
      await clusterInit({ endpoints: ['${ENDPOINT}'], prefix: '/resume', network: '10.250.0.0/16', subnetLen: 24, mode: 'auto' })
      const ds = new EtcdDatastore(ctx('w1', 30000), { endpoints: ['http://127.0.0.1:23790'], prefix: '/resume' })
      const ac = new AbortController()
      await ds.start(ac.signal)
      // history after the store's list: 5 peers, then writes elsewhere that move etcd's revision on
      const c = new Etcd3({ hosts: '${ENDPOINT}' })
      for (let i = 0; i < 5; i++) {
        const cidr = '10.250.' + (100 + i) + '.0/24'
        await c.put('/resume/subnets/' + cidr.replace('/', '-')).value(JSON.stringify({ node: 'p' + i, nodeIp: '192.168.99.' + (10 + i), podCidr: cidr }))
      }
      for (let i = 0; i < 5; i++) await c.put('/elsewhere/' + i).value('x')
      ds.watch(() => {}, ac.signal)
      // etcd confirms the watch at once and sends the history on its next sync tick (up to 100 ms later): cut in between
      while (!ds.watcher) await new Promise((r) => setImmediate(r))
      const early = ds.peers().length
      for (const s of conns) s.destroy()
      const t0 = Date.now()
      while (ds.peers().length < 5 && Date.now() - t0 < 15000) await sleep(50)
      console.log(JSON.stringify({ peers: ds.peers().length, early, waitedMs: Date.now() - t0 }))
      await ds.stop(); c.close(); proxy.close(); process.exit(0)`)
    expect(r.peers).toBe(5)
  })
})
