// tcx attachment (Linux >= 6.6) and its tc fallback, end to end on two node
// namespaces: attach puts every program on a tcx link pinned in the node's
// pin dir, a re-attach swaps programs inside the same links, --attach-mode tc
// moves every hook to tc filters and back, a node attached with tc filters by
// an older build moves to tcx on re-attach, a tc filter and a tcx program
// someone else put on the NIC keep seeing the packets, and detach (even after a lost state file)
// leaves no link, pin or program. Kernel views come from tc and the libbpf layer
// (test/support/hooks.ts), not from the services under test.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MapFd } from '../../src/libbpf/index.js'
import { compileFixture } from '../libbpf/helpers.js'
import { cli, cliJson, must, ROOT, runId, sh, tempStateDir } from '../support/sys.js'
import { TwoNodes, type Pod } from '../support/topology.js'
import { ping } from '../support/traffic.js'
import { hookView, linkPins } from '../support/hooks.js'

const topo = new TwoNodes(runId('pnperf-'))
const [n1, n2] = topo.nodes as [(typeof topo.nodes)[0], (typeof topo.nodes)[0]]
const env = { PODNET_STATE_DIR: tempStateDir() }
let p11: Pod, p21: Pod

interface AttachJson {
  action: string
  attachMode: string
  podMtu: number
  programs: { program: string; device: string; hook: string; id: number }[]
}
interface StatusJson {
  attachMode: string
  programs: { program: string; device: string; hook: string; id: number | null; attach: string | null; expected: boolean }[]
}

const attach = (n: typeof n1, extra: string[] = []) =>
  cliJson<AttachJson>(
    n.ns,
    ['attach', '--node-ip', n.ip, '--pod-cidr', n.podCidr, '--device', 'eth0', '--pin-dir', n.pinDir, ...extra],
    env,
  )
const status = (n: typeof n1) => cliJson<StatusJson>(n.ns, ['status', '--pin-dir', n.pinDir], env)
const foreignPins = `${n1.pinDir}-foreign`
const scratch = mkdtempSync(join(tmpdir(), 'pnperf-tcx-'))

/** Link ids of a pin dir's link pins, as bpftool reads them from the pins. */
function linkIds(pinDir: string): number[] {
  return linkPins(pinDir).map((f) => (JSON.parse(must('bpftool', ['-j', 'link', 'show', 'pinned', join(pinDir, f)])) as { id: number }).id)
}

/** Someone else's tcx program on n1's eth0 ingress (counting what it sees, then TCX_NEXT), appended, its link and map pinned in `dir`. */
function attachForeign(dir = foreignPins): void {
  const obj = compileFixture('t_next', scratch)
  mkdirSync(dir, { recursive: true })
  const code = `const m = await import(process.argv[1]); const [obj, pins] = process.argv.slice(2);
    const o = m.BpfObject.open(obj, { pinRoot: pins }); o.load();
    const fd = m.tcxLinkCreate(m.ifNameToIndex('eth0'), 'ingress', o.program('t_next').fd());
    m.objPin(fd, pins + '/link'); m.closeFd(fd); o.close()`
  must('nsenter', [`--net=/run/netns/${n1.ns}`, 'node', '--input-type=module', '-e', code, join(ROOT, 'dist/libbpf/index.js'), obj, dir])
}

function foreignSeen(dir = foreignPins): bigint {
  const m = MapFd.fromPin(join(dir, 't_next_seen'))
  try {
    return m.lookup(Buffer.alloc(4))!.readBigUInt64LE(0)
  } finally {
    m.close()
  }
}

const statePath = (n: typeof n1) => join(env.PODNET_STATE_DIR, `${n.pinDir.replace(/\//g, '_')}.json`)

function crossNodePing(): void {
  const r = ping(p11.ns, p21.ip, { count: 2 })
  expect(r.status, r.stdout + r.stderr).toBe(0)
}

/** Every hook of node 1 (NIC and pod veth) carries `prog` via `mode`, and nothing via the other. */
function expectVia(mode: 'tcx' | 'tc'): void {
  const v = hookView(n1.ns, [
    ['eth0', 'ingress'],
    [p11.hostIf, 'ingress'],
  ])
  const [nic, pod] = [v[0]!, v[1]!]
  if (mode === 'tcx') {
    expect(nic.tcx).toEqual(['pn_from_netdev'])
    expect(pod.tcx).toEqual(['pn_from_pod'])
    expect(nic.tc + pod.tc).toBe('')
    // no clsact left behind: tcx does not need one
    expect(must('ip', ['netns', 'exec', n1.ns, 'tc', 'qdisc', 'show', 'dev', 'eth0'])).not.toContain('clsact')
    expect(linkPins(n1.pinDir).length).toBe(2)
  } else {
    expect(nic.tc).toContain('pn_from_netdev')
    expect(pod.tc).toContain('pn_from_pod')
    expect([...nic.tcx, ...pod.tcx]).toEqual([])
    expect(linkPins(n1.pinDir)).toEqual([])
  }
  const s = status(n1)
  expect(s.attachMode).toBe(mode)
  for (const p of s.programs) {
    expect(p.attach, `${p.program} on ${p.device}`).toBe(mode)
    expect(p.expected, `${p.program} on ${p.device}`).toBe(true)
  }
}

beforeAll(() => {
  topo.up()
  for (const n of topo.nodes) {
    const a = attach(n, ['--mode', 'direct'])
    expect(a.action).toBe('attached')
  }
  p11 = topo.addPod(n1, 1, 1500)
  p21 = topo.addPod(n2, 1, 1500)
  for (const p of topo.pods) cliJson(p.node.ns, ['endpoints', 'add', '--ip', p.ip, '--ifname', p.hostIf, '--pin-dir', p.node.pinDir], env)
  cliJson(n1.ns, ['routes', 'add', n2.podCidr, '--node-ip', n2.ip, '--pin-dir', n1.pinDir], env)
  cliJson(n2.ns, ['routes', 'add', n1.podCidr, '--node-ip', n1.ip, '--pin-dir', n2.pinDir], env)
}, 120_000)

afterAll(() => {
  for (const n of topo.nodes) cli(n.ns, ['detach', '--pin-dir', n.pinDir], env)
  topo.down()
  for (const n of topo.nodes) sh('rm', ['-rf', n.pinDir])
  sh('rm', ['-rf', env.PODNET_STATE_DIR, foreignPins, `${foreignPins}-after`]) // the foreign links go with their pins
  rmSync(scratch, { recursive: true, force: true })
})

describe('tcx attachment', () => {
  it('attaches every program with a tcx link pinned in the pin dir when the kernel has tcx (auto)', () => {
    expectVia('tcx')
    crossNodePing()
  })

  it('a re-attach with the same arguments is unchanged; new arguments swap the programs inside the same links', () => {
    const links = linkIds(n1.pinDir)
    expect(attach(n1, ['--mode', 'direct']).action).toBe('unchanged')
    const a = attach(n1, ['--mode', 'direct', '--mtu', '1400'])
    expect(a.action).toBe('replaced')
    expect(a.attachMode).toBe('tcx')
    expect(linkIds(n1.pinDir)).toEqual(links) // updated in place, not re-created
    expectVia('tcx')
    crossNodePing()
  })

  it('--attach-mode tc moves every hook to tc filters, removing the links and their pins, and back', () => {
    expect(attach(n1, ['--mode', 'direct', '--attach-mode', 'tc']).attachMode).toBe('tc')
    expectVia('tc')
    crossNodePing()
    expect(attach(n1, ['--mode', 'direct', '--attach-mode', 'tc']).action).toBe('unchanged')
    expect(attach(n1, ['--mode', 'direct', '--attach-mode', 'tcx']).attachMode).toBe('tcx')
    expectVia('tcx')
    crossNodePing()
  })

  it('moves a node attached with tc filters by an older build to tcx on re-attach', () => {
    expect(attach(n1, ['--mode', 'direct', '--attach-mode', 'tc']).attachMode).toBe('tc')
    // the state file as builds before tcx wrote it: no attach mode anywhere
    const st = JSON.parse(readFileSync(statePath(n1), 'utf8')) as { attachMode?: string; config: { attachMode?: string } }
    delete st.attachMode
    delete st.config.attachMode
    writeFileSync(statePath(n1), JSON.stringify(st))
    const a = attach(n1, ['--mode', 'direct'])
    expect(a.action).toBe('replaced')
    expect(a.attachMode).toBe('tcx')
    expectVia('tcx')
    crossNodePing()
  })

  it('hands node traffic on to a tc filter someone else put on the NIC, with tcx links and with tc filters', () => {
    const obj = compileFixture('t_next', scratch)
    const tcIn = (...args: string[]) => must('ip', ['netns', 'exec', n1.ns, 'tc', ...args])
    tcIn('qdisc', 'add', 'dev', 'eth0', 'clsact')
    tcIn('filter', 'add', 'dev', 'eth0', 'ingress', 'prio', '10', 'bpf', 'da', 'obj', obj, 'sec', 'tc')
    try {
      const filters = JSON.parse(tcIn('-j', 'filter', 'show', 'dev', 'eth0', 'ingress', 'prio', '10')) as {
        options?: { prog?: { id?: number } }
      }[]
      const progId = filters.find((f) => f.options?.prog?.id)!.options!.prog!.id!
      const mapId = (JSON.parse(must('bpftool', ['-j', 'prog', 'show', 'id', String(progId)])) as { map_ids: number[] }).map_ids[0]!
      const seen = () => {
        const m = MapFd.fromId(mapId)
        try {
          return m.lookup(Buffer.alloc(4))!.readBigUInt64LE(0)
        } finally {
          m.close()
        }
      }
      for (const mode of ['tc', 'tcx']) {
        expect(attach(n1, ['--mode', 'direct', '--attach-mode', mode]).attachMode).toBe(mode)
        expect(hookView(n1.ns, [['eth0', 'ingress']])[0]!.tc).toContain('t_next') // still there, after podnet's
        const before = seen()
        const r = ping(n2.ns, n1.ip, { count: 3 }) // node traffic: from_netdev hands it to the stack
        expect(r.status, r.stdout).toBe(0)
        expect(seen() - before, mode).toBeGreaterThanOrEqual(3n)
        crossNodePing() // and pod traffic still goes podnet's way
      }
    } finally {
      tcIn('qdisc', 'del', 'dev', 'eth0', 'clsact') // not podnet's: it is attached with tcx again
    }
    expectVia('tcx')
  })

  it('appends after a tcx program someone else attached first, which keeps seeing every packet', () => {
    cli(n1.ns, ['detach', '--pin-dir', n1.pinDir], env)
    attachForeign()
    expect(attach(n1, ['--mode', 'direct']).attachMode).toBe('tcx')
    cliJson(n1.ns, ['endpoints', 'add', '--ip', p11.ip, '--ifname', p11.hostIf, '--pin-dir', n1.pinDir], env)
    cliJson(n1.ns, ['routes', 'add', n2.podCidr, '--node-ip', n2.ip, '--pin-dir', n1.pinDir], env)
    expect(hookView(n1.ns, [['eth0', 'ingress']])[0]!.tcx).toEqual(['t_next', 'pn_from_netdev'])
    const before = foreignSeen()
    crossNodePing() // the replies come in on eth0: t_next first, then from_netdev delivers them
    expect(foreignSeen() - before).toBeGreaterThanOrEqual(2n)
    // one attached after podnet's sees the node traffic podnet hands to the stack (TCX_NEXT)
    attachForeign(`${foreignPins}-after`)
    expect(hookView(n1.ns, [['eth0', 'ingress']])[0]!.tcx).toEqual(['t_next', 'pn_from_netdev', 't_next'])
    const after = foreignSeen(`${foreignPins}-after`)
    expect(ping(n2.ns, n1.ip, { count: 3 }).status).toBe(0)
    expect(foreignSeen(`${foreignPins}-after`) - after).toBeGreaterThanOrEqual(3n)
    rmSync(`${foreignPins}-after`, { recursive: true, force: true })
    // a re-attach swaps podnet's program in its own link and leaves the order alone
    attach(n1, ['--mode', 'direct', '--mtu', '1480'])
    expect(hookView(n1.ns, [['eth0', 'ingress']])[0]!.tcx).toEqual(['t_next', 'pn_from_netdev'])
    crossNodePing()
    // detach takes only podnet's
    expect(cli(n1.ns, ['detach', '--pin-dir', n1.pinDir], env).status).toBe(0)
    expect(hookView(n1.ns, [['eth0', 'ingress']])[0]!.tcx).toEqual(['t_next'])
    rmSync(foreignPins, { recursive: true, force: true })
    expect(hookView(n1.ns, [['eth0', 'ingress']])[0]!.tcx).toEqual([])
  })

  it('detach removes links, pins and programs, also when the state file was lost (an attach that died before saving it)', () => {
    expect(attach(n1, ['--mode', 'direct']).action).toBe('attached')
    cliJson(n1.ns, ['endpoints', 'add', '--ip', p11.ip, '--ifname', p11.hostIf, '--pin-dir', n1.pinDir], env)
    expect(linkPins(n1.pinDir)).toHaveLength(2)
    rmSync(statePath(n1))
    const r = cli(n1.ns, ['detach', '--pin-dir', n1.pinDir], env)
    expect(r.status, r.stderr).toBe(0)
    const v = hookView(n1.ns, [
      ['eth0', 'ingress'],
      [p11.hostIf, 'ingress'],
    ])
    expect(v.map((x) => x.tcx)).toEqual([[], []])
    expect(existsSync(n1.pinDir)).toBe(false)
    // and with its state, on node 2: links, pins, filters all gone
    expect(cli(n2.ns, ['detach', '--pin-dir', n2.pinDir], env).status).toBe(0)
    const w = hookView(n2.ns, [
      ['eth0', 'ingress'],
      [p21.hostIf, 'ingress'],
    ])
    expect(w).toEqual([
      { tc: '', tcx: [] },
      { tc: '', tcx: [] },
    ])
    expect(existsSync(n2.pinDir)).toBe(false)
  })

  it('refuses --attach-mode with an unknown value, naming the choices, and changes nothing', () => {
    const r = cli(
      n1.ns,
      ['attach', '--node-ip', n1.ip, '--pod-cidr', n1.podCidr, '--device', 'eth0', '--attach-mode', 'xdp', '--pin-dir', n1.pinDir],
      env,
    )
    expect(r.status).not.toBe(0)
    expect(r.stderr).toMatch(/auto, tcx, tc|auto\|tcx\|tc/)
    expect(existsSync(n1.pinDir)).toBe(false)
  })
})
