// End-to-end helpers: a lab driven through the CLI as an operator would
// (`podnet-bpf lab …`, `nsenter --net=… podnet-bpf … --pin-dir …`), and
// long-running traffic (flood ping, TCP stream, checksummed transfer).
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { DatapathMaps } from '../../src/datapath/maps.js'
import type { LabNode, LabPod, LabState } from '../../src/services/lab/state.js'
import { CLI, deleteNetnsWithPrefix, listNetns, sleep, tempStateDir, type Result } from '../support/sys.js'

export const BPFFS = '/sys/fs/bpf'

/** A lab name unique to this run: [a-z][a-z0-9]{0,11}. */
export function labName(tag: string): string {
  return `${tag}${process.pid.toString(36).slice(-3)}${Math.floor(Math.random() * 1296).toString(36)}`.slice(0, 12)
}

export interface Spawned {
  status: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export function spawnAsync(cmd: string, args: string[], env?: NodeJS.ProcessEnv): { child: ChildProcess; done: Promise<Spawned> } {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
  const done = new Promise<Spawned>((res) => child.on('close', (status, signal) => res({ status, signal, stdout, stderr })))
  return { child, done }
}

export class TestLab {
  readonly env: NodeJS.ProcessEnv
  lab!: LabState
  upSeconds = 0

  constructor(
    readonly name: string,
    stateDir = tempStateDir(),
  ) {
    this.env = { ...process.env, PODNET_STATE_DIR: stateDir }
  }

  get prefix(): string {
    return `pnlab-${this.name}-`
  }

  /** `podnet-bpf lab VERB --name LAB ARGS` (async: a blocked event loop starves vitest's RPC) */
  async lab_(args: string[]): Promise<Result> {
    // --name right after the verb: everything after `--` belongs to `lab exec`'s command
    const r = await spawnAsync('node', [CLI, 'lab', args[0]!, '--name', this.name, ...args.slice(1)], this.env).done
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
  }

  async up(args: string[] = []): Promise<LabState> {
    const t = performance.now()
    // the suites drive routes and re-attach nodes themselves: no agents unless asked for
    const store = args.includes('--datastore') ? [] : ['--datastore', 'static']
    const r = await this.lab_(['up', ...store, ...args, '--json'])
    if (r.status !== 0) throw new Error(`lab up → ${r.status}\n${r.stderr}${r.stdout}`)
    this.upSeconds = (performance.now() - t) / 1000
    this.lab = (JSON.parse(r.stdout) as { lab: LabState }).lab
    return this.lab
  }

  down(): Promise<Result> {
    return this.lab_(['down'])
  }

  /** Last resort for afterAll: whatever `lab down` could not remove. */
  async forceCleanup(): Promise<void> {
    await this.down()
    deleteNetnsWithPrefix(this.prefix)
    for (const d of existsSync(BPFFS) ? readdirSync(BPFFS) : [])
      if (d.startsWith(this.prefix)) rmSync(join(BPFFS, d), { recursive: true, force: true })
  }

  node(name: string): LabNode {
    const n = this.lab.nodes.find((x) => x.name === name)
    if (!n) throw new Error(`no node ${name}`)
    return n
  }

  pod(name: string): Omit<LabPod, 'node'> & { node: LabNode } {
    for (const n of this.lab.nodes) for (const p of n.pods) if (p.name === name) return { ...p, node: n }
    throw new Error(`no pod ${name}`)
  }

  nodeArgs(node: LabNode, args: string[]): string[] {
    return [`--net=/run/netns/${node.ns}`, 'node', CLI, ...args, '--pin-dir', node.pinDir]
  }

  /** `nsenter --net=/run/netns/NODE podnet-bpf ARGS --pin-dir PIN` */
  async cli(node: LabNode, args: string[]): Promise<Result> {
    const r = await spawnAsync('nsenter', this.nodeArgs(node, args), this.env).done
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
  }

  async cliJson<T>(node: LabNode, args: string[]): Promise<T> {
    const r = await this.cli(node, [...args, '--json'])
    if (r.status !== 0) throw new Error(`podnet-bpf ${args.join(' ')} on ${node.name} → ${r.status}\n${r.stderr}${r.stdout}`)
    return JSON.parse(r.stdout) as T
  }

  counter(node: LabNode, dir: number, reason: number): bigint {
    const m = DatapathMaps.open(node.pinDir)
    try {
      return m.metrics.read().find((c) => c.dir === dir && c.reason === reason)?.packets ?? 0n
    } finally {
      m.close()
    }
  }

  encap(from: LabNode, to: LabNode): 'direct' | 'vxlan' {
    const p = from.paths.find((x) => x.peer === to.name)
    if (!p) throw new Error(`no path ${from.name} → ${to.name}`)
    return p.encap
  }

  leftovers(): string[] {
    return [
      ...listNetns().filter((n) => n.startsWith(this.prefix)),
      ...(existsSync(BPFFS) ? readdirSync(BPFFS).filter((d) => d.startsWith(this.prefix)) : []),
    ]
  }
}

// ---------------------------------------------------------------- traffic

/** support/traffic.ts's ping, without blocking the event loop. */
export async function pingA(
  ns: string,
  dst: string,
  opts: { count?: number; size?: number; df?: boolean; src?: string; timeoutS?: number } = {},
): Promise<Result> {
  const args = ['-n', '-q', '-c', String(opts.count ?? 2), '-i', '0.2', '-W', String(opts.timeoutS ?? 2)]
  if (opts.size !== undefined) args.push('-s', String(opts.size))
  if (opts.df) args.push('-M', 'do')
  if (opts.src) args.push('-I', opts.src)
  const r = await spawnAsync('ip', ['netns', 'exec', ns, 'ping', ...args, dst]).done
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
}

/** Flood ping (1,000 pps by default) that counts sequence gaps: a reply
 * missing below the highest one received is a lost packet; the last
 * in-flight request when stopped is not. */
export function floodPing(ns: string, dst: string, intervalS = 0.001) {
  const { child, done } = spawnAsync('ip', ['netns', 'exec', ns, 'ping', '-n', '-i', String(intervalS), dst])
  return {
    async stop(): Promise<{ received: number; maxSeq: number; lost: number[]; summary: string }> {
      child.kill('SIGINT')
      const r = await done
      const seqs = new Set<number>()
      for (const m of r.stdout.matchAll(/icmp_seq=(\d+)/g)) seqs.add(Number(m[1]))
      const maxSeq = Math.max(0, ...seqs)
      const lost: number[] = []
      for (let s = 1; s < maxSeq; s++) if (!seqs.has(s)) lost.push(s)
      const summary = r.stdout.split('\n').find((l) => l.includes('packets transmitted')) ?? r.stderr.trim()
      return { received: seqs.size, maxSeq, lost, summary }
    },
  }
}

const STREAM_SERVER = `
const net = require('net');
const [host, port] = process.argv.slice(1);
const srv = net.createServer({ allowHalfOpen: true }, (s) => {
  let n = 0;
  s.on('data', (d) => (n += d.length));
  s.on('end', () => s.end(JSON.stringify({ received: n, peer: s.remoteAddress })));
  s.on('error', (e) => { console.log(JSON.stringify({ error: e.code || e.message })); process.exit(2) });
});
srv.listen(+port, host, () => console.log('ready'));`

const STREAM_CLIENT = `
const net = require('net');
const [host, port, chunk, everyMs] = process.argv.slice(1);
const buf = Buffer.alloc(+chunk, 120);
let sent = 0, timer = null, out = '';
const c = net.connect({ port: +port, host, allowHalfOpen: true }, () => {
  console.log('connected');
  timer = setInterval(() => { c.write(buf); sent += buf.length }, +everyMs);
});
c.on('data', (d) => (out += d));
c.on('end', () => { console.log(JSON.stringify({ sent, server: JSON.parse(out) })); process.exit(0) });
c.on('error', (e) => { console.log(JSON.stringify({ error: e.code || e.message, sent })); process.exit(2) });
process.on('SIGTERM', () => { clearInterval(timer); c.end() });`

async function waitFor(child: ChildProcess, text: string, what: string): Promise<void> {
  await new Promise<void>((res, rej) => {
    const to = setTimeout(() => rej(new Error(`${what} did not start`)), 10_000)
    child.stdout!.on('data', (d: Buffer) => d.toString().includes(text) && (clearTimeout(to), res()))
    child.on('exit', (c) => rej(new Error(`${what} exited ${c}`)))
  })
}

/** A long TCP stream (chunk bytes every everyMs) from clientNs to server. */
export async function tcpStream(serverNs: string, serverIp: string, clientNs: string, port = 7100, chunk = 16_384, everyMs = 5) {
  const srv = spawnAsync('ip', ['netns', 'exec', serverNs, 'node', '-e', STREAM_SERVER, serverIp, String(port)])
  await waitFor(srv.child, 'ready', 'stream server')
  const cl = spawnAsync('ip', [
    'netns',
    'exec',
    clientNs,
    'node',
    '-e',
    STREAM_CLIENT,
    serverIp,
    String(port),
    String(chunk),
    String(everyMs),
  ])
  await waitFor(cl.child, 'connected', 'stream client')
  return {
    async stop(): Promise<{ sent: number; received: number; peer: string; error: string | null }> {
      cl.child.kill('SIGTERM')
      const r = await Promise.race([cl.done, sleep(20_000).then(() => null)])
      srv.child.kill('SIGKILL')
      cl.child.kill('SIGKILL')
      if (!r) return { sent: -1, received: -1, peer: '', error: 'client did not finish' }
      const line = r.stdout.trim().split('\n').pop() ?? '{}'
      const j = JSON.parse(line) as { sent?: number; error?: string; server?: { received: number; peer: string } }
      return { sent: j.sent ?? -1, received: j.server?.received ?? -1, peer: j.server?.peer ?? '', error: j.error ?? null }
    },
  }
}

const XFER_SERVER = `
const net = require('net'), crypto = require('crypto');
const [host, port] = process.argv.slice(1);
const srv = net.createServer({ allowHalfOpen: true }, (s) => {
  const h = crypto.createHash('sha256'); let n = 0;
  s.on('data', (d) => { h.update(d); n += d.length });
  s.on('end', () => { s.end(JSON.stringify({ bytes: n, sha256: h.digest('hex'), peer: s.remoteAddress })); srv.close() });
});
srv.listen(+port, host, () => console.log('ready'));`

const XFER_CLIENT = `
const net = require('net'), crypto = require('crypto');
const [host, port, size] = process.argv.slice(1);
const buf = crypto.randomBytes(+size);
const sha256 = crypto.createHash('sha256').update(buf).digest('hex');
const t = setTimeout(() => { console.error('timeout'); process.exit(3) }, 60000);
const c = net.connect({ port: +port, host, allowHalfOpen: true }, () => c.end(buf));
let out = '';
c.on('data', (d) => (out += d));
c.on('end', () => { clearTimeout(t); console.log(JSON.stringify({ bytes: buf.length, sha256, server: JSON.parse(out) })) });
c.on('error', (e) => { console.error(e.message); process.exit(2) });`

/** Sends `size` random bytes over TCP and returns both ends' SHA-256. */
export async function tcpTransfer(serverNs: string, serverIp: string, clientNs: string, size: number, port = 7200) {
  const srv = spawnAsync('ip', ['netns', 'exec', serverNs, 'node', '-e', XFER_SERVER, serverIp, String(port)])
  try {
    await waitFor(srv.child, 'ready', 'transfer server')
    const r = await spawnAsync('ip', ['netns', 'exec', clientNs, 'node', '-e', XFER_CLIENT, serverIp, String(port), String(size)]).done
    if (r.status !== 0) throw new Error(`transfer client failed (${r.status}): ${r.stderr}`)
    return JSON.parse(r.stdout.trim()) as { bytes: number; sha256: string; server: { bytes: number; sha256: string; peer: string } }
  } finally {
    srv.child.kill('SIGKILL')
  }
}
