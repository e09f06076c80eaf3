// BGP convergence benchmark (issue 17): nodes running `podnet-bpf agent
// --routing bgp` behind a BIRD top-of-rack router, and a test speaker (BIRD)
// on the same underlay.
//   join/leave: the speaker announces a /24 (a node joining) → time until the
//     route is in every node's BPF routes map; withdraws it → time until it is
//     gone from every map. p50/p99 over N events each.
//   bulk: the speaker announces 1,000 /24s at once → time until all are in
//     one node's map.
// Everything runs in namespaces named pnbgpb-<pid>-…, removed at the end.
//   node scripts/bench/dist/bgp.js [--events 20] [--nodes 3] [--prefixes 1000] [--json FILE]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync, openSync, closeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const ROOT = resolve(import.meta.dirname, '..', '..', '..')
const CLI = join(ROOT, 'bin', 'run.js')
const ID = `pnbgpb-${process.pid.toString(36)}`
const DIR = mkdtempSync(join(tmpdir(), `${ID}-`))
const UL = `${ID}-ul`
const TOR = '192.168.77.254'
const SPEAKER = '192.168.77.100'

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? Number(process.argv[i + 1]) : def
}
const EVENTS = arg('events', 20)
const NODES = arg('nodes', 3)
const PREFIXES = arg('prefixes', 1000)
const jsonOut = process.argv.includes('--json') ? process.argv[process.argv.indexOf('--json') + 1] : undefined

function run(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} → ${r.status}: ${r.stderr}`)
  return r.stdout
}
const ipn = (ns: string, ...a: string[]) => run('ip', ['-n', ns, ...a])
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const procs: ChildProcess[] = []
const nsList: string[] = []
const pins: string[] = []

function plug(ns: string, port: string, ip: string): void {
  run('ip', ['netns', 'add', ns])
  nsList.push(ns)
  ipn(ns, 'link', 'set', 'lo', 'up')
  ipn(UL, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns)
  ipn(UL, 'link', 'set', port, 'master', 'br0', 'up')
  ipn(ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0')
  ipn(ns, 'link', 'set', 'eth0', 'up')
}

function bird(ns: string, name: string, conf: string): string {
  const cfg = join(DIR, `${name}.conf`)
  const sock = join(DIR, `${name}.ctl`)
  writeFileSync(cfg, conf)
  const out = openSync(join(DIR, `${name}.log`), 'a')
  procs.push(spawn('nsenter', [`--net=/run/netns/${ns}`, 'bird', '-f', '-c', cfg, '-s', sock], { stdio: ['ignore', out, out] }))
  closeSync(out)
  return sock
}
const birdc = (sock: string, ...a: string[]) => run('birdc', ['-s', sock, ...a])

interface RouteMapLike {
  list(): { cidr: string }[]
  close(): void
}

async function openMaps(pinDir: string): Promise<RouteMapLike> {
  const m = (await import(join(ROOT, 'dist', 'datapath', 'maps.js'))) as {
    DatapathMaps: { open(p: string): { routes: { list(): { cidr: string }[] }; close(): void } }
  }
  const maps = m.DatapathMaps.open(pinDir)
  return { list: () => maps.routes.list(), close: () => maps.close() }
}

async function waitAll(what: string, fn: () => boolean, timeoutMs = 30_000): Promise<number> {
  const t0 = performance.now()
  while (!fn()) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await sleep(2)
  }
  return performance.now() - t0
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!
}

async function setup(): Promise<{ speaker: string; maps: RouteMapLike[] }> {
  run('ip', ['netns', 'add', UL])
  nsList.push(UL)
  ipn(UL, 'link', 'add', 'br0', 'type', 'bridge')
  ipn(UL, 'link', 'set', 'br0', 'up')
  plug(`${ID}-tor`, 'tor', TOR)
  plug(`${ID}-spk`, 'spk', SPEAKER)
  const nodes = Array.from({ length: NODES }, (_, i) => ({
    ns: `${ID}-n${i + 1}`,
    ip: `192.168.77.${i + 1}`,
    pin: `/sys/fs/bpf/${ID}-n${i + 1}`,
  }))
  for (const [i, n] of nodes.entries()) plug(n.ns, `n${i + 1}`, n.ip)
  const tmpl = 'direct; hold time 9; connect delay time 1; connect retry time 1; error wait time 1, 5;'
  bird(
    `${ID}-tor`,
    'tor',
    [
      `router id ${TOR};`,
      'protocol device {}',
      `template bgp n { local ${TOR} as 65000; ${tmpl} ipv4 { import all; export all; next hop self; }; }`,
      ...nodes.map((n, i) => `protocol bgp node${i + 1} from n { neighbor ${n.ip} as 64512; }`),
      `protocol bgp speaker from n { neighbor ${SPEAKER} as 64600; }`,
      '',
    ].join('\n'),
  )
  const bulk = Array.from({ length: PREFIXES }, (_, i) => `  route 10.${200 + (i >> 8)}.${i & 255}.0/24 blackhole;`).join('\n')
  const speaker = bird(
    `${ID}-spk`,
    'speaker',
    [
      `router id ${SPEAKER};`,
      'protocol device {}',
      'protocol static join { disabled; ipv4; route 10.244.100.0/24 blackhole; }',
      `protocol static bulk { disabled; ipv4;\n${bulk}\n}`,
      `protocol bgp tor { local ${SPEAKER} as 64600; neighbor ${TOR} as 65000; ${tmpl} ipv4 { import none; export all; }; }`,
      '',
    ].join('\n'),
  )
  for (const [i, n] of nodes.entries()) {
    pins.push(n.pin)
    const out = openSync(join(DIR, `agent${i + 1}.log`), 'a')
    const args = ['agent', '--datastore', 'file', '--pod-cidr', `10.244.${i + 1}.0/24`, '--cluster-cidr', '10.0.0.0/8', '--device', 'eth0']
    args.push('--pin-dir', n.pin, '--cni-conf-dir', join(DIR, `cni${i + 1}`), '--listen', '127.0.0.1:0', '--routing', 'bgp')
    args.push('--no-bgp-mesh', '--bgp-peer', `${TOR}:65000`, '--node-name', `node${i + 1}`)
    procs.push(
      spawn('nsenter', [`--net=/run/netns/${n.ns}`, process.execPath, CLI, ...args], {
        stdio: ['ignore', out, out],
        env: { ...process.env, PODNET_STATE_DIR: join(DIR, 'state') },
      }),
    )
    closeSync(out)
  }
  const maps: RouteMapLike[] = []
  for (const n of nodes) {
    await waitAll(`${n.ns} attached`, () => spawnSync('test', ['-e', `${n.pin}/podnet_routes`]).status === 0)
    maps.push(await openMaps(n.pin))
  }
  // every node has every other node's CIDR: sessions are up
  await waitAll('initial routes', () => maps.every((m) => m.list().length === NODES - 1), 60_000)
  return { speaker, maps }
}

function cleanup(): void {
  for (const p of procs) p.kill('SIGKILL')
  // the agents' BIRD children (SIGKILL leaves them): by their pid files
  const state = join(DIR, 'state')
  spawnSync('sh', ['-c', `for f in ${state}/bgp*/bird.pid; do [ -f "$f" ] && kill -9 $(cat "$f") 2>/dev/null; done; true`])
  for (const ns of [...nsList].reverse()) spawnSync('ip', ['netns', 'del', ns])
  for (const p of pins) spawnSync('rm', ['-rf', p])
  rmSync(DIR, { recursive: true, force: true })
}

async function main(): Promise<void> {
  const { speaker, maps } = await setup()
  const has = (c: string) => maps.every((m) => m.list().some((r) => r.cidr === c))
  const none = (c: string) => maps.every((m) => !m.list().some((r) => r.cidr === c))
  const join_: number[] = []
  const leave: number[] = []
  for (let i = 0; i < EVENTS; i++) {
    birdc(speaker, 'enable', 'join')
    join_.push(await waitAll('join', () => has('10.244.100.0/24')))
    await sleep(200)
    birdc(speaker, 'disable', 'join')
    leave.push(await waitAll('leave', () => none('10.244.100.0/24')))
    await sleep(200)
  }
  const t0 = performance.now()
  birdc(speaker, 'enable', 'bulk')
  await waitAll(`${PREFIXES} prefixes`, () => maps[0]!.list().length >= NODES - 1 + PREFIXES, 120_000)
  const bulkMs = performance.now() - t0
  const result = {
    nodes: NODES,
    events: EVENTS,
    joinMs: { p50: pct(join_, 50), p99: pct(join_, 99), samples: join_ },
    leaveMs: { p50: pct(leave, 50), p99: pct(leave, 99), samples: leave },
    bulk: { prefixes: PREFIXES, ms: bulkMs },
  }
  const f = (x: number) => x.toFixed(0).padStart(6)
  console.log(
    `BGP convergence, ${NODES} agents behind a BIRD ToR, ${EVENTS} events each (announce at the speaker → route in every node's map)`,
  )
  console.log(`  join   p50 ${f(result.joinMs.p50)} ms   p99 ${f(result.joinMs.p99)} ms`)
  console.log(`  leave  p50 ${f(result.leaveMs.p50)} ms   p99 ${f(result.leaveMs.p99)} ms`)
  console.log(`  ${PREFIXES} prefixes from one speaker → all in node1's map: ${f(bulkMs)} ms`)
  if (jsonOut) writeFileSync(jsonOut, JSON.stringify(result, null, 2))
  for (const m of maps) m.close()
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => (cleanup(), process.exit(130)))
main()
  .catch((e: unknown) => {
    console.error(`bench bgp: ${(e as Error).message}`)
    for (let i = 1; i <= NODES; i++) {
      try {
        console.error(
          readFileSync(join(DIR, `agent${i}.log`), 'utf8')
            .split('\n')
            .slice(-5)
            .join('\n'),
        )
      } catch {
        /* no log */
      }
    }
    process.exitCode = 1
  })
  .finally(cleanup)
