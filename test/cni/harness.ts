// Nodes in network namespaces for the CNI tests: an underlay bridge, nodes
// attached with the CLI (own pin dir, temp state dir), pod namespaces, and the
// plugin executed as a runtime executes it (env + stdin, inside the node's
// namespace).
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT, cli, must, sh } from '../support/sys.js'

export const PLUGIN = join(ROOT, 'bin', 'podnet-cni.js')
export const CNI_PATH = '/usr/lib/cni'

export interface CniNode {
  name: string
  ns: string
  ip: string
  podCidr: string
  pinDir: string
}

export interface CniCall {
  containerId?: string
  netns?: string
  ifname?: string
  args?: string
  path?: string
}

export interface CniReply {
  status: number
  stdout: string
  stderr: string
  /** parsed stdout (result or error object), null when empty */
  json: Record<string, any> | null
}

export class CniLab {
  readonly nodes: CniNode[]
  readonly underlay: string
  readonly stateDir: string
  readonly podNamespaces: string[] = []

  constructor(
    readonly id: string,
    count: number,
  ) {
    this.underlay = `${id}-ul`
    this.nodes = Array.from({ length: count }, (_, k) => ({
      name: `node${k + 1}`,
      ns: `${id}-n${k + 1}`,
      ip: `192.168.99.${k + 1}`,
      podCidr: `10.250.${k + 1}.0/24`,
      pinDir: `/sys/fs/bpf/${id}-n${k + 1}`,
    }))
    this.stateDir = mkdtempSync(join(tmpdir(), `${id}-state-`))
  }

  get env(): NodeJS.ProcessEnv {
    return { PODNET_STATE_DIR: this.stateDir, PODNET_CNI_LOG: join(this.stateDir, 'cni.log') }
  }

  get ipamDir(): string {
    return join(this.stateDir, 'ipam')
  }

  up(opts: { attach?: boolean } = {}): void {
    must('ip', ['netns', 'add', this.underlay])
    must('ip', ['-n', this.underlay, 'link', 'add', 'br0', 'type', 'bridge'])
    must('ip', ['-n', this.underlay, 'link', 'set', 'br0', 'up'])
    this.nodes.forEach((n, k) => {
      must('ip', ['netns', 'add', n.ns])
      must('ip', ['netns', 'exec', n.ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'])
      must('ip', ['-n', this.underlay, 'link', 'add', `u${k + 1}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', n.ns])
      must('ip', ['-n', this.underlay, 'link', 'set', `u${k + 1}`, 'master', 'br0', 'up'])
      must('ip', ['-n', n.ns, 'addr', 'add', `${n.ip}/24`, 'dev', 'eth0'])
      must('ip', ['-n', n.ns, 'link', 'set', 'eth0', 'up'])
      must('ip', ['-n', n.ns, 'link', 'set', 'lo', 'up'])
    })
    if (opts.attach !== false) for (const n of this.nodes) this.attach(n)
  }

  attach(n: CniNode): void {
    const r = cli(
      n.ns,
      ['attach', '--node-ip', n.ip, '--pod-cidr', n.podCidr, '--device', 'eth0', '--mode', 'direct', '--pin-dir', n.pinDir],
      this.env,
    )
    if (r.status !== 0) throw new Error(`attach ${n.name}: ${r.stderr}${r.stdout}`)
    for (const p of this.nodes) {
      if (p === n || !this.isAttached(p)) continue
      cli(n.ns, ['routes', 'add', p.podCidr, '--node-ip', p.ip, '--pin-dir', n.pinDir], this.env)
      cli(p.ns, ['routes', 'add', n.podCidr, '--node-ip', n.ip, '--pin-dir', p.pinDir], this.env)
    }
  }

  isAttached(n: CniNode): boolean {
    return existsSync(join(this.stateDir, `${n.pinDir.replace(/\//g, '_')}.json`))
  }

  /** A fresh pod network namespace (what the runtime creates before ADD). */
  podNs(name: string): string {
    const ns = `${this.id}-${name}`
    must('ip', ['netns', 'add', ns])
    must('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'])
    this.podNamespaces.push(ns)
    return `/run/netns/${ns}`
  }

  conf(n: CniNode, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      cniVersion: '1.1.0',
      name: `${this.id}-net`,
      type: 'podnet',
      pinDir: n.pinDir,
      ipam: { type: 'host-local', dataDir: this.ipamDir, ranges: [[{ subnet: 'usePodCidr' }]] },
      ...extra,
    }
  }

  private spawnArgs(n: CniNode, command: string, call: CniCall): { args: string[]; env: NodeJS.ProcessEnv } {
    const env: NodeJS.ProcessEnv = { ...process.env, ...this.env, CNI_COMMAND: command, CNI_PATH: call.path ?? CNI_PATH }
    for (const k of ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS']) delete env[k]
    if (call.containerId !== undefined) env.CNI_CONTAINERID = call.containerId
    if (call.netns !== undefined) env.CNI_NETNS = call.netns
    env.CNI_IFNAME = call.ifname ?? 'eth0'
    if (call.args !== undefined) env.CNI_ARGS = call.args
    if (call.path === '') delete env.CNI_PATH
    return { args: [`--net=/run/netns/${n.ns}`, PLUGIN], env }
  }

  /** Runs the plugin as a runtime does; `conf` as object or raw stdin text. */
  cni(n: CniNode, command: string, call: CniCall, conf: Record<string, unknown> | string): CniReply {
    const { args, env } = this.spawnArgs(n, command, call)
    const r = sh('nsenter', args, { env, input: typeof conf === 'string' ? conf : JSON.stringify(conf) })
    return { ...r, json: r.stdout.trim() ? (JSON.parse(r.stdout) as Record<string, any>) : null }
  }

  cniAsync(n: CniNode, command: string, call: CniCall, conf: Record<string, unknown>): Promise<CniReply & { ms: number }> {
    const { args, env } = this.spawnArgs(n, command, call)
    const t0 = performance.now()
    return new Promise((resolve) => {
      const p = spawn('nsenter', args, { env, stdio: ['pipe', 'pipe', 'pipe'] })
      let stdout = ''
      let stderr = ''
      p.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
      p.on('close', (status) =>
        resolve({ status: status ?? -1, stdout, stderr, json: stdout.trim() ? JSON.parse(stdout) : null, ms: performance.now() - t0 }),
      )
      p.stdin.end(JSON.stringify(conf))
    })
  }

  /** IPs host-local holds for this network. */
  allocated(): string[] {
    const dir = join(this.ipamDir, `${this.id}-net`)
    if (!existsSync(dir)) return []
    return readdirSync(dir)
      .filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f))
      .sort()
  }

  down(): void {
    for (const n of this.nodes) {
      if (this.isAttached(n)) cli(n.ns, ['detach', '--pin-dir', n.pinDir], this.env)
      sh('rm', ['-rf', n.pinDir])
    }
    for (const ns of [...this.podNamespaces, ...this.nodes.map((n) => n.ns), this.underlay]) sh('ip', ['netns', 'del', ns])
    rmSync(this.stateDir, { recursive: true, force: true })
  }
}

/** Host-side links in a node namespace. */
export function linksIn(ns: string): string[] {
  return (JSON.parse(must('ip', ['-n', ns, '-j', 'link', 'show'])) as { ifname: string }[]).map((l) => l.ifname)
}

const ECHO_SERVER = `require('net').createServer((s) => s.end(s.remoteAddress + ' ' + s.localAddress + '\\n')).listen(+process.argv[1], '0.0.0.0', () => console.log('ready'))`
const ECHO_CLIENT = `const c = require('net').connect(+process.argv[2], process.argv[1]); let o = '';
const t = setTimeout(() => { console.error('timeout'); process.exit(3) }, 5000);
c.on('data', (d) => (o += d)); c.on('end', () => { clearTimeout(t); process.stdout.write(o) });
c.on('error', (e) => { console.error(e.message); process.exit(2) })`

const nsPath = (ns: string) => (ns.includes('/') ? ns : `/run/netns/${ns}`)

/** A TCP server on 0.0.0.0:port in `ns` (a name under /run/netns or a path) answering "<peer address> <local address>". */
export async function tcpServer(ns: string, port: number): Promise<{ close: () => void }> {
  const p = spawn('nsenter', [`--net=${nsPath(ns)}`, process.execPath, '-e', ECHO_SERVER, String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  await new Promise<void>((res, rej) => {
    const to = setTimeout(() => rej(new Error(`server in ${ns} did not start`)), 10_000)
    p.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && (clearTimeout(to), res()))
    p.on('exit', (c) => rej(new Error(`server in ${ns} exited ${c}`)))
  })
  return { close: () => p.kill('SIGKILL') }
}

/** Connects from `ns` to host:port; what the server answered (peer and local address). */
export function tcpClient(ns: string, host: string, port: number): { peer: string; local: string } {
  const r = sh('nsenter', [`--net=${nsPath(ns)}`, process.execPath, '-e', ECHO_CLIENT, host, String(port)], { timeoutMs: 15_000 })
  if (r.status !== 0) throw new Error(`TCP ${ns} → ${host}:${port} failed: ${r.stderr.trim()}`)
  const [peer, local] = r.stdout.trim().split(' ')
  return { peer: peer!, local: local! }
}

/** Builds the libcni driver (Debian's golang-go, GOPATH mode, Debian's libcni sources). */
export function buildLibcniDriver(outDir: string): string {
  const out = join(outDir, 'libcni-driver')
  const r = sh('go', ['build', '-o', out, join(ROOT, 'test', 'cni', 'libcni-driver', 'main.go')], {
    env: { ...process.env, GO111MODULE: 'off', GOPATH: '/usr/share/gocode', GOCACHE: join(outDir, 'gocache'), GOFLAGS: '' },
    timeoutMs: 300_000,
  })
  if (r.status !== 0) throw new Error(`building the libcni driver failed (needs golang-go and golang-github-appc-cni-dev): ${r.stderr}`)
  return out
}
