// A cluster for agent tests, built with plain iproute2: N node namespaces and
// up to 3 etcd member namespaces on one L2 underlay bridge (in its own
// namespace), pods per the pod contract, and `podnet-bpf agent` processes
// whose logs go to files. Everything is named with the test's prefix and
// removed by down(), also after a failure.
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLI, cli, deleteNetnsWithPrefix, must, sh, sleep } from './sys.js'
import { DatapathMaps } from '../../src/datapath/maps.js'
import { readAgentStatus } from '../../src/services/agent-status.js'
import { etcdArgs } from '../../src/services/lab/cluster.js'

export const UNDERLAY = '192.168.77'
export const etcdIp = (k: number) => `${UNDERLAY}.${200 + k}`

export interface CNode {
  name: string
  ns: string
  ip: string
  pinDir: string
  cniDir: string
}

export interface AgentProc {
  node: CNode
  proc: ChildProcess
  logFile: string
  exited: Promise<number | null>
  log(): string
}

export class Cluster {
  readonly dir: string
  readonly stateDir: string
  readonly ul: string
  readonly nodes: CNode[] = []
  readonly pods: { ns: string; ip: string; node: CNode }[] = []
  readonly etcd = new Map<number, ChildProcess>()
  readonly agents = new Set<AgentProc>()
  private etcdMembers = 0
  private starts = 0

  constructor(readonly id: string) {
    this.dir = mkdtempSync(join(tmpdir(), `${id}-`))
    this.stateDir = join(this.dir, 'state')
    this.ul = `${id}-ul`
  }

  get env(): NodeJS.ProcessEnv {
    return { PODNET_STATE_DIR: this.stateDir }
  }

  up(): void {
    must('ip', ['netns', 'add', this.ul])
    must('ip', ['-n', this.ul, 'link', 'add', 'br0', 'type', 'bridge'])
    must('ip', ['-n', this.ul, 'link', 'set', 'br0', 'up'])
  }

  private plug(ns: string, port: string, ip: string): void {
    must('ip', ['netns', 'add', ns])
    sh('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1'])
    must('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
    must('ip', ['-n', this.ul, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns])
    must('ip', ['-n', this.ul, 'link', 'set', port, 'master', 'br0', 'up'])
    must('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0'])
    must('ip', ['-n', ns, 'link', 'set', 'eth0', 'up'])
  }

  addNode(i: number): CNode {
    const n: CNode = {
      name: `node${i}`,
      ns: `${this.id}-n${i}`,
      ip: `${UNDERLAY}.${i}`,
      pinDir: `/sys/fs/bpf/${this.id}-n${i}`,
      cniDir: join(this.dir, `cni-n${i}`),
    }
    this.plug(n.ns, `n${i}`, n.ip)
    this.nodes.push(n)
    return n
  }

  /** A 3-member etcd cluster (members 1..3 on .201-.203), started in parallel. */
  async startEtcd(members = 3): Promise<string> {
    this.etcdMembers = members
    for (let k = 1; k <= members; k++) this.plug(`${this.id}-e${k}`, `e${k}`, etcdIp(k))
    for (let k = 1; k <= members; k++) this.startMember(k, 'new')
    await this.waitEtcdHealthy()
    return this.endpoints
  }

  get endpoints(): string {
    return Array.from({ length: this.etcdMembers }, (_, i) => `http://${etcdIp(i + 1)}:2379`).join(',')
  }

  startMember(k: number, state: 'new' | 'existing'): void {
    const ip = etcdIp(k)
    const cluster = Array.from({ length: this.etcdMembers }, (_, i) => `e${i + 1}=http://${etcdIp(i + 1)}:2380`).join(',')
    const dataDir = join(this.dir, `etcd${k}`)
    mkdirSync(dataDir, { recursive: true, mode: 0o700 })
    const out = openSync(join(this.dir, `etcd${k}.log`), 'a')
    const args = etcdArgs({ name: `e${k}`, ip, dataDir, initialCluster: cluster, state, token: this.id })
    const p = spawn('nsenter', [`--net=/run/netns/${this.id}-e${k}`, ...args], { stdio: ['ignore', out, out] })
    closeSync(out)
    this.etcd.set(k, p)
  }

  async stopMember(k: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.etcd.get(k)
    if (!p || p.exitCode !== null || p.signalCode !== null) return
    const done = new Promise((r) => p.once('exit', r))
    p.kill(signal)
    await done
    this.etcd.delete(k)
  }

  /** etcdctl against every member (a put right after a member dies waits out the election; retried) */
  etcdctl(args: string[], member?: number): string {
    const k = member ?? [...this.etcd.keys()][0] ?? 1
    const argv = [
      `--net=/run/netns/${this.id}-e${k}`,
      'etcdctl',
      '--endpoints',
      member ? `http://${etcdIp(k)}:2379` : this.endpoints,
      '--command-timeout',
      '10s',
      ...args,
    ]
    for (let attempt = 1; ; attempt++) {
      const r = sh('nsenter', argv, { env: { ...process.env, ETCDCTL_API: '3' }, timeoutMs: 30_000 })
      if (r.status === 0) return r.stdout
      if (attempt === 3) throw new Error(`etcdctl ${args.join(' ')} → ${r.status}\n${r.stderr}`)
    }
  }

  async waitEtcdHealthy(timeoutMs = 20_000): Promise<void> {
    const t0 = Date.now()
    for (;;) {
      const r = sh('nsenter', [`--net=/run/netns/${this.id}-e1`, 'etcdctl', '--endpoints', this.endpoints, 'endpoint', 'health'], {
        env: { ...process.env, ETCDCTL_API: '3' },
        timeoutMs: 10_000,
      })
      if (r.status === 0) return
      if (Date.now() - t0 > timeoutMs) throw new Error(`etcd not healthy: ${r.stderr}${r.stdout}`)
      await sleep(200)
    }
  }

  /** A pod per the contract in `node`, IP `podCidr` + 10 + idx. */
  addPod(node: CNode, podCidr: string, idx: number, mtu = 1450): { ns: string; ip: string; node: CNode } {
    const base = podCidr.split('/')[0]!.split('.').map(Number)
    const ip = `${base[0]}.${base[1]}.${base[2]}.${base[3]! + 10 + idx}`
    const ns = `${node.ns}p${idx}`
    const hostIf = `vp${idx}`
    must('ip', ['netns', 'add', ns])
    sh('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1'])
    must('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
    must('ip', ['-n', node.ns, 'link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns])
    must('ip', ['-n', node.ns, 'link', 'set', hostIf, 'up'])
    must('ip', ['-n', ns, 'link', 'set', 'eth0', 'mtu', String(mtu), 'up'])
    must('ip', ['-n', ns, 'addr', 'add', `${ip}/32`, 'dev', 'eth0'])
    must('ip', ['-n', ns, 'route', 'add', '169.254.1.1', 'dev', 'eth0', 'scope', 'link'])
    must('ip', ['-n', ns, 'route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0'])
    const r = cli(node.ns, ['endpoints', 'add', '--ip', ip, '--ifname', hostIf, '--pin-dir', node.pinDir], this.env)
    if (r.status !== 0) throw new Error(`endpoints add ${ip} in ${node.ns}: ${r.stderr}`)
    const pod = { ns, ip, node }
    this.pods.push(pod)
    return pod
  }

  startAgent(node: CNode, args: string[]): AgentProc {
    const logFile = join(this.dir, `agent-${node.name}-${++this.starts}.log`)
    const out = openSync(logFile, 'a')
    const proc = spawn(
      'nsenter',
      [
        `--net=/run/netns/${node.ns}`,
        'node',
        CLI,
        'agent',
        '--node-name',
        node.name,
        '--device',
        'eth0',
        '--pin-dir',
        node.pinDir,
        '--listen',
        '127.0.0.1:9963',
        '--cni-conf-dir',
        node.cniDir,
        '--log-format',
        'json',
        ...args,
      ],
      { stdio: ['ignore', out, out], env: { ...process.env, ...this.env } },
    )
    closeSync(out)
    const a: AgentProc = {
      node,
      proc,
      logFile,
      exited: new Promise((r) => proc.once('exit', (c, s) => r(c ?? (s ? -1 : null)))),
      log: () => readFileSync(logFile, 'utf8'),
    }
    this.agents.add(a)
    void a.exited.then(() => this.agents.delete(a))
    return a
  }

  async stopAgent(a: AgentProc, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (a.proc.exitCode === null && a.proc.signalCode === null) a.proc.kill(signal)
    return a.exited
  }

  /** Every log of the agents this cluster started on `node`, oldest first. */
  logsOf(node: CNode): string {
    return readdirSync(this.dir)
      .filter((f) => f.startsWith(`agent-${node.name}-`))
      .sort((a, b) => Number(a.split('-').pop()!.split('.')[0]) - Number(b.split('-').pop()!.split('.')[0]))
      .map((f) => readFileSync(join(this.dir, f), 'utf8'))
      .join('')
  }

  /** Readiness as the agent last wrote it into its status file: read from the
   * host, no process per poll (20 agents polled over HTTP would each cost a
   * Node.js start, which starves the agents on a 2-core machine). */
  statusOf(node: CNode): { running: boolean; ready: boolean; reason: string | null; podCidr: string | null } | null {
    // the agents run with this cluster's state dir, not the test process's
    const prev = process.env.PODNET_STATE_DIR
    process.env.PODNET_STATE_DIR = this.stateDir
    try {
      return readAgentStatus(node.pinDir)
    } finally {
      if (prev === undefined) delete process.env.PODNET_STATE_DIR
      else process.env.PODNET_STATE_DIR = prev
    }
  }

  /** The node's route CIDRs, read through its pins (no CLI process). */
  routeCidrs(node: CNode): string[] {
    try {
      const m = DatapathMaps.open(node.pinDir)
      try {
        return m.routes.list().map((r) => r.cidr)
      } finally {
        m.close()
      }
    } catch {
      return []
    }
  }

  /** GET on the agent's HTTP port (inside its namespace). */
  http(node: CNode, path: string): { status: number; body: string } {
    const js = `fetch('http://127.0.0.1:9963${path}').then(async (r) => console.log(JSON.stringify({ status: r.status, body: await r.text() }))).catch((e) => console.log(JSON.stringify({ status: 0, body: String(e) })))`
    const r = sh('nsenter', [`--net=/run/netns/${node.ns}`, 'node', '-e', js], { timeoutMs: 10_000 })
    return JSON.parse(r.stdout.trim() || '{"status":0,"body":""}') as { status: number; body: string }
  }

  async waitFor<T>(what: string, fn: () => T | undefined | false | null, timeoutMs = 30_000, everyMs = 100): Promise<T> {
    const t0 = Date.now()
    for (;;) {
      const v = fn()
      if (v) return v
      if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
      await sleep(everyMs)
    }
  }

  /** `ip route …` inside a node namespace (test namespaces only, never the host's). */
  nodeRoute(node: CNode, args: string[]): void {
    must('ip', ['-n', node.ns, 'route', ...args])
  }

  routes(node: CNode): { cidr: string; nodeIp: string; encap: string }[] {
    const r = cli(node.ns, ['routes', 'list', '--pin-dir', node.pinDir, '--json'], this.env)
    if (r.status !== 0) return []
    return JSON.parse(r.stdout) as { cidr: string; nodeIp: string; encap: string }[]
  }

  async down(): Promise<void> {
    for (const a of [...this.agents]) await this.stopAgent(a, 'SIGKILL')
    for (const k of [...this.etcd.keys()]) await this.stopMember(k)
    for (const n of this.nodes) cli(n.ns, ['detach', '--pin-dir', n.pinDir], this.env)
    deleteNetnsWithPrefix(`${this.id}-`)
    for (const n of this.nodes) sh('rm', ['-rf', n.pinDir])
    rmSync(this.dir, { recursive: true, force: true })
  }
}

export interface Pod {
  ns: string
  ip: string
  node: CNode
}

const MESH_SERVER = `
const net = require('net');
net.createServer((s) => { s.on('error', () => {}); s.end(s.remoteAddress + '\\n') }).listen(7100, process.argv[1], () => console.log('ready'));`

const MESH_CLIENT = `
const net = require('net');
const dsts = process.argv.slice(1);
Promise.all(dsts.map((d) => new Promise((res) => {
  const c = net.connect(7100, d); let out = '';
  const t = setTimeout(() => { c.destroy(); res([d, 'timeout']) }, 5000);
  c.on('data', (x) => out += x); c.on('end', () => { clearTimeout(t); res([d, out.trim()]) });
  c.on('error', (e) => { clearTimeout(t); res([d, e.code || e.message]) });
}))).then((r) => console.log(JSON.stringify(Object.fromEntries(r))));`

/** TCP from every pod to every other pod: the source address each server saw
 * (pod IP = no NAT), or the failure. Returns the pairs that were wrong. */
export async function tcpMesh(pods: Pod[]): Promise<string[]> {
  const servers = pods.map((p) =>
    spawn('ip', ['netns', 'exec', p.ns, 'node', '-e', MESH_SERVER, p.ip], { stdio: ['ignore', 'pipe', 'pipe'] }),
  )
  try {
    await Promise.all(
      servers.map(
        (s, i) =>
          new Promise<void>((res, rej) => {
            const t = setTimeout(() => rej(new Error(`server in ${pods[i]!.ns} did not start`)), 30_000)
            s.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && (clearTimeout(t), res()))
            s.on('exit', (c) => rej(new Error(`server in ${pods[i]!.ns} exited ${c}`)))
          }),
      ),
    )
    const bad: string[] = []
    await Promise.all(
      pods.map(async (src) => {
        const dsts = pods.filter((p) => p !== src).map((p) => p.ip)
        const out = await new Promise<string>((res) => {
          const c = spawn('ip', ['netns', 'exec', src.ns, 'node', '-e', MESH_CLIENT, ...dsts], { stdio: ['ignore', 'pipe', 'pipe'] })
          let o = ''
          c.stdout!.on('data', (d: Buffer) => (o += d.toString()))
          c.on('exit', () => res(o))
        })
        const seen = JSON.parse(out.trim() || '{}') as Record<string, string>
        for (const d of dsts) if (seen[d] !== src.ip) bad.push(`${src.ip} → ${d}: ${seen[d] ?? 'no answer'}`)
      }),
    )
    return bad
  } finally {
    for (const s of servers) s.kill('SIGKILL')
  }
}

/** ping at `pps` for `seconds` in the background; `done` resolves with
 * sent/received, the sequence numbers that got no reply although a later
 * one did (`missing`: lost), and how many were sent after the last reply
 * (`trailing`: in flight when stop() interrupted it, or lost at the end). */
export function pingFlood(src: Pod, dst: string, pps: number, seconds: number) {
  const count = Math.round(pps * seconds)
  // ip netns exec execs ping, so this pid is ping's own
  const p = spawn('ip', ['netns', 'exec', src.ns, 'ping', '-n', '-i', String(1 / pps), '-c', String(count), '-W', '1', dst], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  p.stderr!.on('data', (d: Buffer) => (out += d.toString()))
  const done = new Promise<{ sent: number; received: number; missing: number[]; trailing: number; out: string }>((res) =>
    p.on('exit', () => {
      const m = /(\d+) packets transmitted, (\d+) received/.exec(out)
      const seqs = new Set([...out.matchAll(/icmp_seq=(\d+) /g)].map((x) => Number(x[1])))
      const max = Math.max(0, ...seqs)
      const missing: number[] = []
      for (let i = 1; i < max; i++) if (!seqs.has(i)) missing.push(i)
      const sent = Number(m?.[1] ?? 0)
      const summary = out
        .split('\n')
        .filter((l) => !l.includes('icmp_seq'))
        .join('\n')
      res({ sent, received: Number(m?.[2] ?? 0), missing, trailing: sent - max, out: summary })
    }),
  )
  return { done, stop: () => p.kill('SIGINT') }
}

const STREAM_SERVER = `
const net = require('net'); let bytes = 0, err = null;
const srv = net.createServer((s) => { s.on('data', (d) => bytes += d.length); s.on('error', (e) => err = e.code || e.message);
  s.on('end', () => { console.log(JSON.stringify({ bytes, err })); process.exit(0) }) });
srv.listen(7200, process.argv[1], () => console.log('ready'));`

// a paced stream (64 KiB every 10 ms, ~6.5 MB/s): a live connection, not a
// saturated one, whose queueing on a loaded 2-core host would drop pings on its own
const STREAM_CLIENT = `
const net = require('net'); const buf = Buffer.alloc(65536, 7); let sent = 0, err = null;
const c = net.connect(7200, process.argv[1], () => {
  const t = setInterval(() => { if (stop) { clearInterval(t); c.end(); return } c.write(buf); sent += buf.length }, 10);
});
let stop = false;
c.on('error', (e) => { err = e.code || e.message });
c.on('close', () => { console.log(JSON.stringify({ sent, err })); process.exit(0) });
process.on('SIGTERM', () => { stop = true; c.end() });`

/** A TCP stream from src to dst (pod IPs) until stop(); reports bytes and any socket error (reset). */
export async function tcpStream(
  src: Pod,
  dst: Pod,
): Promise<{ stop(): Promise<{ client: { sent: number; err: string | null }; server: { bytes: number; err: string | null } }> }> {
  const srv = spawn('ip', ['netns', 'exec', dst.ns, 'node', '-e', STREAM_SERVER, dst.ip], { stdio: ['ignore', 'pipe', 'pipe'] })
  let so = ''
  await new Promise<void>((res, rej) => {
    const t = setTimeout(() => rej(new Error('stream server did not start')), 30_000)
    srv.stdout!.on('data', (d: Buffer) => ((so += d.toString()), so.includes('ready') && (clearTimeout(t), res())))
  })
  const cl = spawn('ip', ['netns', 'exec', src.ns, 'node', '-e', STREAM_CLIENT, dst.ip], { stdio: ['ignore', 'pipe', 'pipe'] })
  let co = ''
  cl.stdout!.on('data', (d: Buffer) => (co += d.toString()))
  return {
    async stop() {
      const clientDone = new Promise((r) => cl.on('exit', r))
      const serverDone = new Promise((r) => srv.on('exit', r))
      // ip netns exec execs the command, so the signal reaches node itself
      cl.kill('SIGTERM')
      await Promise.race([Promise.all([clientDone, serverDone]), sleep(10_000)])
      srv.kill('SIGKILL')
      cl.kill('SIGKILL')
      const last = (s: string) => JSON.parse(s.trim().split('\n').pop() || 'null') as never
      return { client: last(co) ?? { sent: 0, err: 'no report' }, server: last(so.replace('ready', '')) ?? { bytes: 0, err: 'no report' } }
    },
  }
}
