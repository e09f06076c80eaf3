// One lock per node: commands that change a node run one at a time, so
// parallel callers (a container runtime starting many pods) lose no update,
// and a holder that dies never blocks the next one.
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, cli, cliJson, must, runId, sh, tempStateDir, type Result } from '../support/sys.js'
import { hookView } from '../support/hooks.js'
import { TwoNodes } from '../support/topology.js'

const topo = new TwoNodes(runId('pncore'))
const n1 = topo.nodes[0]!
const podsNs = `${topo.id}-pods`
const stateDir = tempStateDir()
const env = { PODNET_STATE_DIR: stateDir, PODNET_LOCK_TIMEOUT_MS: '170000' }
const pin = ['--pin-dir', n1.pinDir]
const lockFile = join(stateDir, `${n1.pinDir.replace(/\//g, '_')}.lock`)
const statePath = join(stateDir, `${n1.pinDir.replace(/\//g, '_')}.json`)

const PODS = 32
const ROUTES = 16
const podIp = (i: number) => `10.244.1.${10 + i}`
const routeCidr = (i: number) => `10.250.${i}.0/24`

/** The CLI in the node namespace, started without waiting for it. */
function cliAsync(args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    const p = spawn('nsenter', [`--net=/run/netns/${n1.ns}`, 'node', CLI, ...args], { env: { ...process.env, ...env } })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    p.on('close', (code) => resolve({ status: code ?? -1, stdout, stderr }))
  })
}

/** One process (sh exec'ing sleep) that holds the node's lock: flock(1) locks
 * the shell's descriptor, which sleep inherits and nothing else shares. */
function holdLock(): ChildProcess {
  return spawn('sh', ['-c', `exec 9>>'${lockFile}'; flock --exclusive 9; exec sleep 600`], { stdio: 'ignore' })
}

beforeAll(() => {
  topo.up()
  must('ip', ['netns', 'add', podsNs])
  // one veth per pod, host side in the node, pod side in a pods namespace
  const batch = Array.from({ length: PODS }, (_, i) => `link add vq${i} type veth peer name eth${i} netns ${podsNs}\nlink set vq${i} up`)
  must('ip', ['-n', n1.ns, '-batch', '-'], { input: batch.join('\n') + '\n' })
  const r = cli(n1.ns, ['attach', '--node-ip', n1.ip, '--pod-cidr', n1.podCidr, '--device', 'eth0', '--mode', 'direct', ...pin], env)
  expect(r.status, r.stderr).toBe(0)
}, 120_000)

afterAll(() => {
  cli(n1.ns, ['detach', ...pin], env)
  sh('ip', ['netns', 'del', podsNs])
  topo.down()
  sh('rm', ['-rf', n1.pinDir, stateDir])
})

describe('the node lock', () => {
  it(`keeps every one of ${PODS} endpoints add and ${ROUTES} routes add started at once`, async () => {
    const runs = [
      ...Array.from({ length: PODS }, (_, i) => cliAsync(['endpoints', 'add', '--ip', podIp(i), '--ifname', `vq${i}`, ...pin])),
      ...Array.from({ length: ROUTES }, (_, i) => cliAsync(['routes', 'add', routeCidr(i), '--node-ip', '192.168.77.2', ...pin])),
    ]
    const results = await Promise.all(runs)
    for (const r of results) expect(r.status, r.stderr).toBe(0)

    // the maps
    const eps = cliJson<{ ip: string }[]>(n1.ns, ['endpoints', 'list', ...pin], env)
    expect(eps.map((e) => e.ip).sort()).toEqual(Array.from({ length: PODS }, (_, i) => podIp(i)).sort())
    const routes = cliJson<{ cidr: string }[]>(n1.ns, ['routes', 'list', ...pin], env)
    expect(routes.map((r) => r.cidr).sort()).toEqual(Array.from({ length: ROUTES }, (_, i) => routeCidr(i)).sort())

    // the state file
    const state = JSON.parse(readFileSync(statePath, 'utf8')) as { endpoints: Record<string, unknown>; routeEncap: Record<string, unknown> }
    expect(Object.keys(state.endpoints).sort()).toEqual(eps.map((e) => e.ip).sort())
    expect(Object.keys(state.routeEncap).sort()).toEqual(routes.map((r) => r.cidr).sort())

    // the kernel: a /32 per pod on its veth, a /24 per peer route
    const kernel = must('ip', ['-n', n1.ns, '-j', 'route', 'show'])
    const dsts = new Map((JSON.parse(kernel) as { dst: string; dev?: string }[]).map((r) => [r.dst, r.dev]))
    for (let i = 0; i < PODS; i++) expect(dsts.get(podIp(i)), podIp(i)).toBe(`vq${i}`)
    for (let i = 0; i < ROUTES; i++) expect(dsts.has(routeCidr(i)), routeCidr(i)).toBe(true)
    // every pod device carries from-pod
    const hooks = hookView(
      n1.ns,
      Array.from({ length: PODS }, (_, i) => [`vq${i}`, 'ingress'] as [string, 'ingress']),
    )
    hooks.forEach((h, i) => expect(`${h.tc} ${h.tcx.join(' ')}`, `vq${i}`).toContain('pn_from_pod'))
  }, 180_000)

  it('is released when its holder is killed, so the next command runs at once', async () => {
    // a holder that dies without unlocking, SIGKILLed while it holds the lock
    const holder = holdLock()
    await new Promise((r) => setTimeout(r, 300))
    expect(sh('flock', ['--nonblock', lockFile, 'true']).status).not.toBe(0) // really held
    holder.kill('SIGKILL')
    await new Promise((r) => holder.on('exit', r))
    const r = cli(n1.ns, ['routes', 'add', '10.251.0.0/24', '--node-ip', '192.168.77.2', ...pin], {
      ...env,
      PODNET_LOCK_TIMEOUT_MS: '2000',
    })
    expect(r.status, r.stderr).toBe(0)
  })

  it('makes a command that waited too long fail naming the holder and the fix, changing nothing', async () => {
    writeFileSync(lockFile, '424242 podnet-bpf endpoints add --ip 10.244.1.99\n')
    const holder = holdLock()
    try {
      await new Promise((r) => setTimeout(r, 300))
      const r = cli(n1.ns, ['routes', 'del', '10.251.0.0/24', ...pin], { ...env, PODNET_LOCK_TIMEOUT_MS: '1500' })
      expect(r.status).not.toBe(0)
      const err = r.stderr.trim()
      expect(err).toMatch(/^Error: pin dir .* is busy: pid 424242 \(podnet-bpf endpoints add --ip 10\.244\.1\.99\)/)
      expect(err).toMatch(/\nFix: /)
      expect(err.split('\n')).toHaveLength(2)
    } finally {
      holder.kill('SIGKILL')
      await new Promise((r) => holder.on('exit', r))
    }
    const routes = cliJson<{ cidr: string }[]>(n1.ns, ['routes', 'list', ...pin], env)
    expect(routes.map((x) => x.cidr)).toContain('10.251.0.0/24')
  })

  it('lets detach remove the lock file with the node', () => {
    expect(cli(n1.ns, ['detach', ...pin], env).status).toBe(0)
    expect(sh('test', ['-e', lockFile]).status).not.toBe(0)
  })
})
