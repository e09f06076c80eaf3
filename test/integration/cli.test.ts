// Operator-facing behaviour of attach/endpoints/routes/detach: bad input is a
// one-line error with a fix and a non-zero exit, with nothing half-applied;
// re-attach is idempotent, and a new configuration or build replaces the
// programs in place while the maps keep their contents.
import { copyFileSync, existsSync, readdirSync, appendFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cli, cliJson, kernelHasNetkit, ROOT, runId, sh, tempStateDir, type Result } from '../support/sys.js'
import { hookPrograms } from '../support/hooks.js'
import { tempDir } from '../support/tmp.js'
import { TwoNodes } from '../support/topology.js'
import { peerAddressSeen } from '../support/traffic.js'

const topo = new TwoNodes(runId('pnc'))
const [n1, n2] = topo.nodes as [(typeof topo.nodes)[0], (typeof topo.nodes)[0]]
const env = { PODNET_STATE_DIR: tempStateDir() }
const pin = ['--pin-dir', n1.pinDir]
const attachArgs = ['attach', '--node-ip', n1.ip, '--pod-cidr', n1.podCidr, '--device', 'eth0', ...pin]

function expectUserError(r: Result, ...fragments: string[]): void {
  expect(r.status, r.stdout).not.toBe(0)
  const err = r.stderr.trim()
  expect(err).toMatch(/^Error: /)
  expect(err).toMatch(/\nFix: /) // names the fix
  expect(err).not.toMatch(/\bat .*\.js:\d+/) // no stack trace
  for (const f of fragments) expect(err).toContain(f)
}

function nothingAttached(): void {
  expect(existsSync(n1.pinDir) && readdirSync(n1.pinDir).length > 0).toBe(false)
  expect(sh('ip', ['-n', n1.ns, 'link', 'show', 'podnet_vxlan']).status).not.toBe(0)
  expect(hookPrograms(n1.ns, 'eth0', 'ingress')).toBe('')
}

beforeAll(() => topo.up())
afterAll(() => {
  for (const n of topo.nodes) cli(n.ns, ['detach', '--pin-dir', n.pinDir], env)
  topo.down()
  for (const n of topo.nodes) sh('rm', ['-rf', n.pinDir])
})

describe('attach rejects bad input before changing anything', () => {
  it.each([
    [['--node-ip', '192.168.77.300'], 'nodeIp'],
    [['--pod-cidr', '10.244.1.5/24'], 'host bits are set'],
    [['--pod-cidr', '10.244.1.0/33'], 'podCidr'],
    [['--device', 'nosuchdev0'], 'interface "nosuchdev0" not found'],
    [['--node-ip', '192.168.77.9'], 'is not an address of eth0'],
    [['--mode', 'vxlan', '--mtu', '1480'], 'does not fit eth0'],
    [['--vni', '16777216'], 'vni'],
  ])('with %j', (override, msg) => {
    const args = [...attachArgs]
    for (let i = 0; i < override.length; i += 2) {
      const at = args.indexOf(override[i]!)
      if (at >= 0) args[at + 1] = override[i + 1]!
      else args.push(override[i]!, override[i + 1]!)
    }
    const r = cli(n1.ns, args, env)
    if (r.stderr.includes('Expected')) {
      // oclif's own flag validation (e.g. --mode options) is fine as well
      expect(r.status).not.toBe(0)
    } else {
      expectUserError(r, msg as string)
    }
    nothingAttached()
  })

  it('with a config file that has an unknown key', () => {
    const dir = tempDir('pncfg-')
    const f = join(dir, 'node.json')
    sh('sh', ['-c', `echo '{"nodeIp":"${n1.ip}","podCidr":"${n1.podCidr}","device":"eth0","colour":"blue"}' > ${f}`])
    expectUserError(cli(n1.ns, ['attach', '--config', f, ...pin], env), 'colour')
    nothingAttached()
  })

  it('without root privileges', () => {
    const r = sh(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', 'node', join(ROOT, 'bin', 'run.js'), ...attachArgs],
      { env: { ...process.env, ...env, HOME: tmpdir() } },
    )
    expectUserError(r, 'missing capabilities')
    nothingAttached()
  })

  it('with a pin dir outside bpffs', () => {
    const r = cli(
      n1.ns,
      ['attach', '--node-ip', n1.ip, '--pod-cidr', n1.podCidr, '--device', 'eth0', '--pin-dir', join(tmpdir(), runId('notbpf'))],
      env,
    )
    expectUserError(r, 'is not on a bpffs mount')
  })

  it('with the BPF objects missing', () => {
    const r = cli(n1.ns, attachArgs, { ...env, PODNET_BPF_DIR: '/nonexistent' })
    expectUserError(r, 'is missing')
    nothingAttached()
  })

  it('commands other than attach say the node is not attached', () => {
    expectUserError(cli(n1.ns, ['routes', 'list', ...pin], env), 'not attached')
    const d = cli(n1.ns, ['detach', ...pin], env)
    expect(d.status).toBe(0)
    expect(d.stdout).toContain('nothing attached')
  })
})

describe('doctor', () => {
  it('finds every needed feature here, exits 0, and says whether pods may use netkit pairs', () => {
    const r = cliJson<{ ok: boolean; checks: { name: string; ok: boolean; optional?: boolean; detail: string }[] }>(n1.ns, ['doctor'], env)
    expect(r.ok).toBe(true)
    expect(r.checks.filter((c) => !c.ok && !c.optional)).toEqual([])
    for (const name of ['privileges', 'bpf syscall', 'BTF', 'clsact', 'vxlan', 'verifier: from_pod.bpf.o'])
      expect(r.checks.find((c) => c.name === name)?.ok, name).toBe(true)
    const nk = r.checks.find((c) => c.name === 'netkit pods')!
    expect(nk.optional).toBe(true)
    const want = kernelHasNetkit()
    if (want !== null) expect(nk.ok, nk.detail).toBe(want)
    if (!nk.ok) expect(nk.detail).toContain('no netkit devices')
    // the probes left no device behind
    expect(sh('ip', ['-n', n1.ns, '-o', 'link', 'show']).stdout).not.toMatch(/pnnk|pnprobe/)
  })
})

describe('on an attached node', () => {
  beforeAll(() => {
    // leftovers of a detach that could not finish: a first attach removes
    // them (routes sync only looks for stale kernel routes it could own)
    sh('ip', ['-n', n1.ns, 'route', 'add', '10.99.0.0/24', 'dev', 'eth0', 'proto', '112'])
    sh('ip', ['-n', n1.ns, 'route', 'add', '10.99.1.7', 'dev', 'eth0', 'proto', '112'])
    expect(sh('ip', ['-n', n1.ns, 'route', 'show', 'proto', '112']).stdout).toContain('10.99.0.0/24')
    expect(cliJson<{ action: string }>(n1.ns, [...attachArgs, '--mode', 'auto'], env).action).toBe('attached')
    expect(sh('ip', ['-n', n1.ns, 'route', 'show', 'proto', '112']).stdout).not.toMatch(/10\.99\./)
    cliJson(
      n2.ns,
      ['attach', '--node-ip', n2.ip, '--pod-cidr', n2.podCidr, '--device', 'eth0', '--mode', 'auto', '--pin-dir', n2.pinDir],
      env,
    )
  })

  it('running attach again with the same arguments changes nothing', () => {
    const before = cliJson<{ programs: { id: number }[] }>(n1.ns, [...attachArgs, '--mode', 'auto'], env)
    const again = cliJson<{ action: string; programs: { id: number }[] }>(n1.ns, [...attachArgs, '--mode', 'auto'], env)
    expect(again.action).toBe('unchanged')
    expect(again.programs.map((p) => p.id)).toEqual(before.programs.map((p) => p.id))
  })

  it('rejects an endpoint outside the pod CIDR, an unknown interface and a non-veth', () => {
    expectUserError(
      cli(n1.ns, ['endpoints', 'add', '--ip', '10.244.2.10', '--ifname', 'eth0', ...pin], env),
      "outside this node's pod CIDR",
    )
    expectUserError(cli(n1.ns, ['endpoints', 'add', '--ip', '10.244.1.10', '--ifname', 'nope0', ...pin], env), 'not found')
    expectUserError(cli(n1.ns, ['endpoints', 'add', '--ip', '10.244.1.10', '--ifname', 'lo', ...pin], env), 'lo')
    expectUserError(cli(n1.ns, ['endpoints', 'add', '--ip', '10.244.1', '--ifname', 'lo', ...pin], env), 'invalid endpoint IP')
    expect(cliJson<unknown[]>(n1.ns, ['endpoints', 'list', ...pin], env)).toEqual([])
  })

  it("rejects routes overlapping the node's own CIDR or another route, and invalid CIDRs", () => {
    expectUserError(cli(n1.ns, ['routes', 'add', '10.244.0.0/16', '--node-ip', n2.ip, ...pin], env), "overlaps this node's own pod CIDR")
    cliJson(n1.ns, ['routes', 'add', n2.podCidr, '--node-ip', n2.ip, ...pin], env)
    expectUserError(cli(n1.ns, ['routes', 'add', '10.244.2.128/25', '--node-ip', n2.ip, ...pin], env), 'overlaps route 10.244.2.0/24')
    expectUserError(cli(n1.ns, ['routes', 'add', '10.244.3.0/240', '--node-ip', n2.ip, ...pin], env), 'invalid route CIDR')
    expectUserError(cli(n1.ns, ['routes', 'del', '10.244.9.0/24', ...pin], env), 'no route for')
    const routes = cliJson<{ cidr: string; encap: string }[]>(n1.ns, ['routes', 'list', ...pin], env)
    expect(routes).toEqual([{ cidr: n2.podCidr, nodeIp: n2.ip, encap: 'direct', requested: 'default', origin: 'static' }])
  })

  it("changes a route's encapsulation in place and back, and traffic follows on the next packet", async () => {
    const p1 = topo.addPod(n1, 1, 1450)
    const p2 = topo.addPod(n2, 1, 1450)
    cliJson(n1.ns, ['endpoints', 'add', '--ip', p1.ip, '--ifname', p1.hostIf, ...pin], env)
    cliJson(n2.ns, ['endpoints', 'add', '--ip', p2.ip, '--ifname', p2.hostIf, '--pin-dir', n2.pinDir], env)
    cliJson(n2.ns, ['routes', 'add', n1.podCidr, '--node-ip', n1.ip, '--pin-dir', n2.pinDir], env)
    expect(await peerAddressSeen('tcp', p2.ns, p2.ip, p1.ns)).toBe(p1.ip)
    const r = cliJson<{ encap: string }>(n1.ns, ['routes', 'add', n2.podCidr, '--node-ip', n2.ip, '--encap', 'vxlan', ...pin], env)
    expect(r.encap).toBe('vxlan')
    expect(await peerAddressSeen('tcp', p2.ns, p2.ip, p1.ns)).toBe(p1.ip)
    cliJson(n1.ns, ['routes', 'add', n2.podCidr, '--node-ip', n2.ip, '--encap', 'none', ...pin], env)
    expect(await peerAddressSeen('tcp', p2.ns, p2.ip, p1.ns)).toBe(p1.ip)
  })

  it("a new build replaces the programs in place and keeps the maps' contents", async () => {
    const before = cliJson<{ programs: { program: string; id: number }[] }>(n1.ns, [...attachArgs, '--mode', 'auto'], env)
    const eps = cliJson<unknown[]>(n1.ns, ['endpoints', 'list', ...pin], env)
    // a "new build": the same objects with different bytes (trailing data is ignored by the ELF loader)
    const dir = tempDir('pnbuild-')
    for (const f of readdirSync(join(ROOT, 'bpf', 'build'))) {
      copyFileSync(join(ROOT, 'bpf', 'build', f), join(dir, f))
      appendFileSync(join(dir, f), Buffer.from('rebuild'))
    }
    const after = cliJson<{ action: string; programs: { program: string; id: number }[] }>(n1.ns, [...attachArgs, '--mode', 'auto'], {
      ...env,
      PODNET_BPF_DIR: dir,
    })
    expect(after.action).toBe('replaced')
    for (const p of after.programs) expect(p.id).not.toBe(before.programs.find((b) => b.program === p.program)?.id)
    expect(cliJson<unknown[]>(n1.ns, ['endpoints', 'list', ...pin], env)).toEqual(eps)
    const p1 = topo.pods.find((p) => p.node === n1)!
    const p2 = topo.pods.find((p) => p.node === n2)!
    expect(await peerAddressSeen('tcp', p2.ns, p2.ip, p1.ns)).toBe(p1.ip)
    // the live filter is the new program, on the pod veth too
    const tc = hookPrograms(n1.ns, p1.hostIf, 'ingress')
    const fromPod = cliJson<{ programs: { program: string; id: number }[] }>(n1.ns, [...attachArgs, '--mode', 'auto'], {
      ...env,
      PODNET_BPF_DIR: dir,
    })
    expect(fromPod.programs.length).toBeGreaterThan(0)
    expect(tc).toMatch(/pn_from_pod/)
  })

  it('routes sync validates everything first and converges', () => {
    const dir = tempDir('pnsync-')
    const bad = join(dir, 'bad.json')
    const good = join(dir, 'good.json')
    sh('sh', ['-c', `echo '[{"cidr":"10.244.5.0/24","nodeIp":"${n2.ip}"},{"cidr":"10.244.1.0/24","nodeIp":"${n2.ip}"}]' > ${bad}`])
    sh('sh', [
      '-c',
      `echo '[{"cidr":"${n2.podCidr}","nodeIp":"${n2.ip}"},{"cidr":"10.244.5.0/24","nodeIp":"${n2.ip}","encap":"vxlan"}]' > ${good}`,
    ])
    const before = cliJson<unknown[]>(n1.ns, ['routes', 'list', ...pin], env)
    expectUserError(cli(n1.ns, ['routes', 'sync', '--file', bad, ...pin], env), "overlaps this node's own pod CIDR")
    expect(cliJson<unknown[]>(n1.ns, ['routes', 'list', ...pin], env)).toEqual(before)
    const r1 = cliJson<{ added: number }>(n1.ns, ['routes', 'sync', '--file', good, ...pin], env)
    expect(r1.added).toBe(1)
    const r2 = cliJson<{ added: number; changed: number; removed: number; unchanged: number }>(
      n1.ns,
      ['routes', 'sync', '--file', good, ...pin],
      env,
    )
    expect(r2).toEqual({ added: 0, changed: 0, removed: 0, unchanged: 2 })
    expect(sh('ip', ['-n', n1.ns, 'route', 'show', '10.244.5.0/24']).stdout).toContain('podnet_vxlan')
  })
})
