// A node's pin dir belongs to the network namespace it was attached in, one
// podnet per namespace, and a re-attach with another device or mode leaves
// nothing of the old configuration attached (issue 12 items 9, 11, 12).
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cli, cliJson, must, runId, sh, tempStateDir, type Result } from '../support/sys.js'
import { hookPrograms } from '../support/hooks.js'
import { TwoNodes } from '../support/topology.js'

const topo = new TwoNodes(runId('pncore'))
const [n1, n2] = topo.nodes as [(typeof topo.nodes)[0], (typeof topo.nodes)[0]]
const env = { PODNET_STATE_DIR: tempStateDir() }
const otherPin = `${n1.pinDir}-second`

function attachArgs(n: typeof n1, extra: string[] = []): string[] {
  return ['attach', '--node-ip', n.ip, '--pod-cidr', n.podCidr, '--device', 'eth0', '--pin-dir', n.pinDir, ...extra]
}

function expectUserError(r: Result, ...fragments: string[]): void {
  expect(r.status, r.stdout).not.toBe(0)
  const err = r.stderr.trim()
  expect(err).toMatch(/^Error: /)
  expect(err).toMatch(/\nFix: /)
  expect(err.split('\n'), err).toHaveLength(2)
  for (const f of fragments) expect(err).toContain(f)
}

/** tc filters (ingress+egress) and links of a node, pins and state: what must not change. */
function snapshot(n: typeof n1): string {
  const tc = (dev: string, dir: 'ingress' | 'egress') => hookPrograms(n.ns, dev, dir)
  const links = must('ip', ['-n', n.ns, '-o', 'link', 'show']).replace(/\s+link\/.*$/gm, '')
  const routes = must('ip', ['-n', n.ns, 'route', 'show'])
  const pins = existsSync(n.pinDir) ? readdirSync(n.pinDir).sort().join(',') : ''
  const statePath = join(env.PODNET_STATE_DIR, `${n.pinDir.replace(/\//g, '_')}.json`)
  const state = existsSync(statePath) ? readFileSync(statePath, 'utf8') : ''
  const fwd = must('ip', ['netns', 'exec', n.ns, 'sysctl', '-n', 'net.ipv4.ip_forward'])
  return [tc('eth0', 'ingress'), tc('podnet_vxlan', 'ingress'), tc('podnet_vxlan', 'egress'), links, routes, pins, state, fwd].join(
    '\n--\n',
  )
}

beforeAll(() => {
  topo.up()
  for (const n of topo.nodes) {
    const r = cli(n.ns, attachArgs(n, ['--mode', 'vxlan']), env)
    expect(r.status, r.stderr).toBe(0)
  }
  const r = cli(n1.ns, ['routes', 'add', n2.podCidr, '--node-ip', n2.ip, '--pin-dir', n1.pinDir], env)
  expect(r.status, r.stderr).toBe(0)
}, 120_000)

afterAll(() => {
  for (const n of topo.nodes) cli(n.ns, ['detach', '--pin-dir', n.pinDir], env)
  topo.down()
  for (const p of [n1.pinDir, n2.pinDir, otherPin]) sh('rm', ['-rf', p])
  sh('rm', ['-rf', env.PODNET_STATE_DIR])
})

describe('a pin dir belongs to its network namespace', () => {
  it.each([
    ['detach', ['detach']],
    ['routes del', ['routes', 'del', n2.podCidr]],
    ['routes add', ['routes', 'add', '10.244.9.0/24', '--node-ip', n1.ip]],
    ['endpoints del', ['endpoints', 'del', '--ip', '10.244.1.10']],
    ['routes list', ['routes', 'list']],
    ['attach', attachArgs(n1, ['--mode', 'vxlan'])],
  ])('refuses %s from another namespace, naming the right one, and changes neither node', (_name, args) => {
    const before = [snapshot(n1), snapshot(n2)]
    // run in n2's namespace against n1's pin dir
    const r = cli(n2.ns, args.includes('--pin-dir') ? args : [...args, '--pin-dir', n1.pinDir], env)
    expectUserError(r, `pin dir ${n1.pinDir} belongs to network namespace "${n1.ns}"`, `nsenter --net=/run/netns/${n1.ns}`)
    expect([snapshot(n1), snapshot(n2)]).toEqual(before)
  })

  it('lets map-only readers (maps, metrics) run from any namespace: pins are the same everywhere', () => {
    const maps = cliJson<{ name: string }[]>(null, ['maps', 'list', '--pin-dir', n1.pinDir], env)
    expect(maps.map((m) => m.name)).toContain('podnet_routes')
    const dump = cliJson<unknown[]>(n2.ns, ['maps', 'dump', 'routes', '--pin-dir', n1.pinDir], env)
    expect(JSON.stringify(dump)).toContain(n2.podCidr.split('/')[0])
  })

  it('still serves the right namespace', () => {
    const routes = cliJson<{ cidr: string }[]>(n1.ns, ['routes', 'list', '--pin-dir', n1.pinDir], env)
    expect(routes.map((r) => r.cidr)).toEqual([n2.podCidr])
  })
})

describe('one podnet per network namespace', () => {
  it('refuses a second attach with another pin dir, naming the attached one, and creates nothing', () => {
    const before = snapshot(n1)
    const r = cli(n1.ns, ['attach', '--node-ip', n1.ip, '--pod-cidr', n1.podCidr, '--device', 'eth0', '--pin-dir', otherPin], env)
    expectUserError(r, `already attached in this network namespace with pin dir ${n1.pinDir}`)
    expect(existsSync(otherPin)).toBe(false)
    expect(snapshot(n1)).toEqual(before)
  })
})

describe('re-attach with another device or mode', () => {
  it('moves from eth0 in VXLAN mode to another device in direct mode and leaves nothing on eth0 or the VXLAN device', () => {
    must('ip', ['-n', n1.ns, 'link', 'add', 'dum0', 'type', 'veth', 'peer', 'name', 'dum0p'])
    must('ip', ['-n', n1.ns, 'addr', 'add', '192.168.78.1/24', 'dev', 'dum0'])
    must('ip', ['-n', n1.ns, 'link', 'set', 'dum0', 'up'])
    // the VXLAN device existed before podnet: podnet must take its programs off, not delete it
    expect(hookPrograms(n1.ns, 'eth0', 'ingress')).toContain('pn_from_netdev')
    cli(n1.ns, ['routes', 'del', n2.podCidr, '--pin-dir', n1.pinDir], env)
    const r = cli(
      n1.ns,
      ['attach', '--node-ip', '192.168.78.1', '--pod-cidr', n1.podCidr, '--device', 'dum0', '--mode', 'direct', '--pin-dir', n1.pinDir],
      env,
    )
    expect(r.status, r.stderr).toBe(0)
    const tc = (dev: string, dir: 'ingress' | 'egress') => hookPrograms(n1.ns, dev, dir)
    expect(tc('dum0', 'ingress')).toContain('pn_from_netdev')
    expect(tc('eth0', 'ingress')).toBe('')
    // the clsact qdisc podnet created on eth0 went with it
    expect(must('ip', ['netns', 'exec', n1.ns, 'tc', 'qdisc', 'show', 'dev', 'eth0'])).not.toContain('clsact')
    // podnet created the VXLAN device, so it is gone
    expect(sh('ip', ['-n', n1.ns, 'link', 'show', 'podnet_vxlan']).status).not.toBe(0)
  })

  it('takes its programs off a VXLAN device it did not create when it goes direct', () => {
    // back to eth0 in VXLAN mode over a VXLAN device made beforehand
    must('ip', ['-n', n1.ns, 'link', 'add', 'podnet_vxlan', 'type', 'vxlan', 'external', 'dstport', '8472', 'nolearning'])
    must('ip', ['-n', n1.ns, 'link', 'set', 'podnet_vxlan', 'up'])
    let r = cli(n1.ns, attachArgs(n1, ['--mode', 'vxlan']), env)
    expect(r.status, r.stderr).toBe(0)
    const tc = (dev: string, dir: 'ingress' | 'egress') => hookPrograms(n1.ns, dev, dir)
    expect(tc('podnet_vxlan', 'ingress')).toContain('pn_from_overlay')
    expect(tc('dum0', 'ingress')).toBe('')
    r = cli(n1.ns, attachArgs(n1, ['--mode', 'direct']), env)
    expect(r.status, r.stderr).toBe(0)
    expect(sh('ip', ['-n', n1.ns, 'link', 'show', 'podnet_vxlan']).status).toBe(0) // not ours to delete
    expect(tc('podnet_vxlan', 'ingress')).toBe('')
    expect(tc('podnet_vxlan', 'egress')).toBe('')
    expect(tc('eth0', 'ingress')).toContain('pn_from_netdev')
  })
})
