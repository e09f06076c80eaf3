// routes sync (what every agent reconcile runs) writes only the difference
// to the kernel: a second sync of the same set sends no route change at all
// (watched with `ip monitor route` in the node's namespace), a route of ours
// deleted or changed by hand is put back, a stale one of ours is removed, the
// pods' /32 routes are left alone, and a CIDR another owner routes is
// refused with nothing changed.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cli, cliJson, must, ROOT, runId, sh, sleep, loneNodeNs } from '../support/sys.js'

const ns = runId('pnagt-r')
const pinDir = `/sys/fs/bpf/${ns}`
const dir = mkdtempSync(join(tmpdir(), `${ns}-`))
const env = { PODNET_STATE_DIR: join(dir, 'state') }
const pin = ['--pin-dir', pinDir]
const peers = Array.from({ length: 40 }, (_, i) => ({ cidr: `10.245.${i}.0/24`, nodeIp: `192.168.99.${10 + i}` }))
const file = (name: string, routes: unknown[]) => {
  const p = join(dir, name)
  writeFileSync(p, JSON.stringify(routes))
  return p
}
const sync = (path: string) =>
  cliJson<{ added: number; changed: number; removed: number; unchanged: number }>(ns, ['routes', 'sync', '--file', path, ...pin], env)
const ours = () => sh('ip', ['-n', ns, '-4', 'route', 'show', 'proto', '112']).stdout

/** Route notifications in the namespace while `fn` runs. */
async function routeEvents(fn: () => void): Promise<string[]> {
  const mon: ChildProcess = spawn('ip', ['-n', ns, '-4', 'monitor', 'route'], { stdio: ['ignore', 'pipe', 'ignore'] })
  let out = ''
  mon.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  await sleep(300) // the monitor is subscribed
  fn()
  await sleep(300)
  mon.kill()
  return out.split('\n').filter((l) => l.trim())
}

beforeAll(() => {
  loneNodeNs(ns, '192.168.99.1/24')
  cliJson(ns, ['attach', '--node-ip', '192.168.99.1', '--pod-cidr', '10.244.1.0/24', '--device', 'eth0', '--mode', 'auto', ...pin], env)
  // a pod's route as endpoints add writes it: ours, inside the pod CIDR, not a peer route
  must('ip', ['-n', ns, 'route', 'add', '10.244.1.10/32', 'dev', 'eth1', 'proto', '112', 'scope', 'link'])
})
afterAll(() => {
  cli(ns, ['detach', ...pin], env)
  sh('ip', ['netns', 'del', ns])
  rmSync(pinDir, { recursive: true, force: true })
  rmSync(dir, { recursive: true, force: true })
})

describe('routes sync writes only the difference to the kernel', () => {
  const all = () => file('all.json', [...peers, { cidr: '10.246.0.0/24', nodeIp: '192.168.99.200', encap: 'vxlan' }])

  it('a second sync of an unchanged set sends no route change', async () => {
    // the services in the node's namespace, with a kernel-route writer that counts what it is given
    const script = `
      import { syncRoutes } from '${join(ROOT, 'dist/services/routes.js')}'
      import { applyRoutes } from '${join(ROOT, 'dist/datapath/netdev.js')}'
      import { readFileSync } from 'node:fs'
      const specs = JSON.parse(readFileSync(process.argv[1], 'utf8'))
      const counts = []
      for (let i = 0; i < 2; i++) {
        let n = 0
        const res = syncRoutes(specs, '${pinDir}', { applyRoutes: (rep, rem) => ((n += rep.length + rem.length), applyRoutes(rep, rem)) })
        counts.push({ ...res, kernelOps: n })
      }
      console.log(JSON.stringify(counts))`
    const events = await routeEvents(() => {
      const out = must('nsenter', [`--net=/run/netns/${ns}`, 'node', '--input-type=module', '-e', script, all()], {
        env: { ...process.env, ...env },
      })
      const [first, second] = JSON.parse(out) as { added: number; unchanged: number; kernelOps: number }[]
      expect(first).toMatchObject({ added: 41, kernelOps: 41 })
      expect(second).toEqual({ added: 0, changed: 0, removed: 0, unchanged: 41, kernelOps: 0 })
    })
    // the first sync's 41 routes, and nothing more
    expect(events.filter((l) => /^10\.24[56]\./.test(l))).toHaveLength(41)
  })

  it("puts back a route deleted or changed by hand, removes a stale one of ours, and leaves the pods' routes", async () => {
    must('ip', ['-n', ns, 'route', 'del', '10.245.3.0/24'])
    must('ip', ['-n', ns, 'route', 'replace', '10.245.4.0/24', 'via', '192.168.99.99', 'dev', 'eth0', 'proto', '112'])
    must('ip', ['-n', ns, 'route', 'add', '10.250.0.0/24', 'via', '192.168.99.98', 'dev', 'eth0', 'proto', '112'])
    const events = await routeEvents(() => expect(sync(all())).toMatchObject({ added: 0, changed: 0, removed: 0, unchanged: 41 }))
    // exactly the three repairs: two routes written, one deleted
    expect(
      events
        .filter((l) => !l.startsWith('Deleted'))
        .map((l) => l.split(' ')[0])
        .sort(),
    ).toEqual(['10.245.3.0/24', '10.245.4.0/24'])
    expect(events.filter((l) => l.startsWith('Deleted')).map((l) => l.split(' ')[1])).toEqual(['10.250.0.0/24'])
    const now = ours()
    expect(now).toContain('10.245.3.0/24 via 192.168.99.13 dev eth0')
    expect(now).toContain('10.245.4.0/24 via 192.168.99.14 dev eth0')
    expect(now).not.toContain('10.250.0.0/24')
    expect(now).toContain('10.244.1.10 dev eth1')
  })

  it('refuses a CIDR another owner routes, all or nothing', () => {
    must('ip', ['-n', ns, 'route', 'add', '10.247.0.0/24', 'via', '192.168.99.97', 'dev', 'eth0'])
    const before = ours()
    const r = cli(ns, ['routes', 'sync', '--file', file('foreign.json', [{ cidr: '10.247.0.0/24', nodeIp: '192.168.99.5' }]), ...pin], env)
    expect(r.status).not.toBe(0)
    expect(r.stderr).toContain(
      'the kernel already has a route for 10.247.0.0/24 (dev eth0 via 192.168.99.97) that podnet-bpf did not install',
    )
    expect(ours()).toBe(before)
    expect(cliJson<unknown[]>(ns, ['routes', 'list', ...pin], env)).toHaveLength(41)
  })
})
