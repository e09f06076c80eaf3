// A Kubernetes-shaped cluster in network namespaces for the agent's e2e
// tests: node namespaces and the API test server's namespace on one underlay
// bridge, the Kubernetes API test server (HTTPS, bearer token, RBAC from
// deploy/podnet-bpf.yaml) in its own namespace, and `podnet-bpf agent
// --datastore kubernetes` per node, as the DaemonSet would run it.
import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RemoteKubeApiTestServer } from './kube-api-remote.js'
import { AGENT_TOKEN, AGENT_USER, makeCert, manifestRules, writeKubeconfig } from './kube.js'
import { CLI, ROOT, cli, deleteNetnsWithPrefix, must, sh } from './sys.js'

const CNI_PLUGIN = join(ROOT, 'bin', 'podnet-cni.js')

export interface KNode {
  name: string
  ns: string
  ip: string
  podCidr: string
  pinDir: string
  agent: ChildProcess | null
  logFile: string
  pods: KPod[]
}
export interface KPod {
  ns: string
  ip: string
  hostIf: string
}

const API_IP = '192.168.88.250'

export class KubeCluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'pnk8-cluster-'))
  readonly stateDir = join(this.dir, 'state')
  readonly nodes = new Map<string, KNode>()
  readonly ul: string
  api!: RemoteKubeApiTestServer
  kubeconfig = ''

  constructor(readonly prefix: string) {
    this.ul = `${prefix}-ul`
    mkdirSync(this.stateDir)
  }

  get env(): NodeJS.ProcessEnv {
    return { PODNET_STATE_DIR: this.stateDir }
  }

  async up(): Promise<void> {
    this.cleanup()
    must('ip', ['netns', 'add', this.ul])
    must('ip', ['-n', this.ul, 'link', 'add', 'br0', 'type', 'bridge'])
    must('ip', ['-n', this.ul, 'link', 'set', 'br0', 'up'])
    const apiNs = `${this.prefix}-api`
    this.plug(apiNs, 'api', API_IP)
    const tls = makeCert([API_IP])
    this.api = await RemoteKubeApiTestServer.start(apiNs, {
      host: API_IP,
      port: 6443,
      tls,
      tokens: { [AGENT_TOKEN]: AGENT_USER },
      rules: manifestRules(),
      bookmarkIntervalMs: 2000,
    })
    this.kubeconfig = writeKubeconfig(`https://${API_IP}:6443`, tls.cert, AGENT_TOKEN, this.dir)
  }

  /** A namespace on the underlay bridge with `ip/24` on its eth0. */
  private plug(ns: string, port: string, ip: string): void {
    must('ip', ['netns', 'add', ns])
    must('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
    must('ip', ['-n', this.ul, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns])
    must('ip', ['-n', this.ul, 'link', 'set', port, 'master', 'br0', 'up'])
    must('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0'])
    must('ip', ['-n', ns, 'link', 'set', 'eth0', 'up'])
  }

  /** The node's namespace on the underlay (node i: 192.168.88.i, pod CIDR 10.88.i.0/24). */
  addNodeNs(i: number): KNode {
    const name = `n${i}`
    const n: KNode = {
      name,
      ns: `${this.prefix}-${name}`,
      ip: `192.168.88.${i}`,
      podCidr: `10.88.${i}.0/24`,
      pinDir: `/sys/fs/bpf/${this.prefix}-${name}`,
      agent: null,
      logFile: join(this.dir, `${name}.log`),
      pods: [],
    }
    this.plug(n.ns, name, n.ip)
    this.nodes.set(name, n)
    return n
  }

  node(name: string): KNode {
    const n = this.nodes.get(name)
    if (!n) throw new Error(`no node ${name}`)
    return n
  }

  startAgent(n: KNode): void {
    const args = [
      `--net=/run/netns/${n.ns}`,
      ...['node', CLI, 'agent', '--datastore', 'kubernetes', '--kubeconfig', this.kubeconfig, '--device', 'eth0'],
      ...['--mode', 'auto', '--pin-dir', n.pinDir, '--listen', '127.0.0.1:9963', '--cni-conf-dir', join(this.dir, n.name, 'net.d')],
      ...['--resync-interval', '30s'],
    ]
    const out = createWriteStream(n.logFile, { flags: 'a' })
    // NODE_NAME as the DaemonSet's downward API sets it
    const p = spawn('nsenter', args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...this.env, NODE_NAME: n.name } })
    p.stdout.pipe(out)
    p.stderr.pipe(out)
    n.agent = p
  }

  async stopAgent(n: KNode): Promise<void> {
    const p = n.agent
    n.agent = null
    if (!p || p.exitCode !== null) return
    const exited = new Promise((r) => p.once('exit', r))
    p.kill('SIGTERM')
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))])
    if (p.exitCode === null) p.kill('SIGKILL')
  }

  log(n: KNode): string {
    try {
      return readFileSync(n.logFile, 'utf8')
    } catch {
      return ''
    }
  }

  /** GET on the agent's listen address from inside its node namespace. */
  probe(n: KNode, path: string): { code: number; body: string } {
    const r = sh('nsenter', [`--net=/run/netns/${n.ns}`, 'curl', '-s', '-m', '2', '-w', '\n%{http_code}', `http://127.0.0.1:9963${path}`])
    const i = r.stdout.lastIndexOf('\n')
    return { code: Number(r.stdout.slice(i + 1)) || 0, body: r.stdout.slice(0, i) }
  }

  /** Kernel routes the agent installed for peer pod CIDRs (dst → gateway or device). */
  kernelRoutes(n: KNode): Record<string, string> {
    const out = JSON.parse(must('ip', ['-n', n.ns, '-j', 'route', 'show'])) as { dst: string; gateway?: string; dev: string }[]
    return Object.fromEntries(
      out.filter((r) => r.dst.startsWith('10.88.') && r.dst.endsWith('/24')).map((r) => [r.dst, r.gateway ?? r.dev]),
    )
  }

  /** A pod created as kubelet's runtime would: ADD of the conflist the node's agent wrote, through the CNI plugin. */
  addPodCni(n: KNode, idx: number): KPod {
    const conflist = JSON.parse(readFileSync(join(this.dir, n.name, 'net.d', '10-podnet.conflist'), 'utf8')) as {
      cniVersion: string
      name: string
      plugins: { ipam?: Record<string, unknown> }[]
    }
    const plugin = conflist.plugins[0]!
    // the runtime's netconf for the first plugin of the list; host-local's allocations in this test's dir
    const netconf = {
      cniVersion: conflist.cniVersion,
      name: conflist.name,
      ...plugin,
      ipam: { ...plugin.ipam, dataDir: join(this.dir, 'ipam', n.name) },
    }
    const p: KPod = { ns: `${n.ns}-p${idx}`, ip: '', hostIf: '' }
    must('ip', ['netns', 'add', p.ns])
    const env = {
      ...process.env,
      ...this.env,
      PODNET_CNI_LOG: join(this.dir, 'cni.log'),
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: `pnk8-${n.name}-${idx}`,
      CNI_NETNS: `/run/netns/${p.ns}`,
      CNI_IFNAME: 'eth0',
      CNI_PATH: '/usr/lib/cni',
    }
    const r = sh('nsenter', [`--net=/run/netns/${n.ns}`, 'node', CNI_PLUGIN], { env, input: JSON.stringify(netconf) })
    if (r.status !== 0) throw new Error(`CNI ADD on ${n.name} → ${r.status}: ${r.stdout}${r.stderr}`)
    const result = JSON.parse(r.stdout) as { ips: { address: string }[]; interfaces: { name: string; sandbox?: string }[] }
    p.ip = result.ips[0]!.address.split('/')[0]!
    p.hostIf = result.interfaces.find((i) => !i.sandbox)?.name ?? ''
    n.pods.push(p)
    return p
  }

  ping(from: KPod, to: KPod, count = 1): boolean {
    return sh('ip', ['netns', 'exec', from.ns, 'ping', '-c', String(count), '-i', '0.2', '-W', '1', '-q', to.ip]).status === 0
  }

  async down(): Promise<void> {
    for (const n of this.nodes.values()) await this.stopAgent(n)
    await this.api?.close()
    for (const n of this.nodes.values()) cli(n.ns, ['detach', '--pin-dir', n.pinDir], this.env)
    this.cleanup()
    rmSync(this.dir, { recursive: true, force: true })
  }

  private cleanup(): void {
    deleteNetnsWithPrefix(`${this.prefix}-`)
    for (const d of sh('ls', ['/sys/fs/bpf']).stdout.split('\n')) {
      if (d.startsWith(`${this.prefix}-`)) rmSync(join('/sys/fs/bpf', d), { recursive: true, force: true })
    }
  }
}
