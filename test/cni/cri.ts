// containerd 1.6 (Debian) driven through CRI as kubelet drives it: one
// containerd per node, run inside the node's network namespace with its own
// root, state, socket and CNI config; a locally built pause image (a static
// binary compiled here, packed as an OCI layout, imported with ctr); a CRI v1
// gRPC client over the project's own runtime.proto. Everything it starts is
// found again by path and killed by pid, also when a test fails.
import { spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import { ROOT, must, sh, sleep } from '../support/sys.js'

export const PAUSE_IMAGE = 'localhost/podnet-pause:test'

const PAUSE_C = `#include <signal.h>
#include <unistd.h>
static void done(int s) { (void)s; _exit(0); }
int main(void) { signal(SIGTERM, done); signal(SIGINT, done); for (;;) pause(); }
`

function sha(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex')
}

/** Compiles the pause binary (gcc -static) and packs it as an OCI image layout tarball. */
export function buildPauseImage(dir: string): string {
  mkdirSync(join(dir, 'layer'), { recursive: true })
  writeFileSync(join(dir, 'pause.c'), PAUSE_C)
  must('gcc', ['-static', '-O2', '-o', join(dir, 'layer', 'pause'), join(dir, 'pause.c')])
  const layout = join(dir, 'oci')
  const blobs = join(layout, 'blobs', 'sha256')
  mkdirSync(blobs, { recursive: true })
  const layerTar = join(dir, 'layer.tar')
  must('tar', ['-C', join(dir, 'layer'), '--owner=0', '--group=0', '-cf', layerTar, 'pause'])
  const blob = (data: Buffer | string) => {
    const d = sha(data)
    writeFileSync(join(blobs, d), data)
    return { digest: `sha256:${d}`, size: Buffer.byteLength(data) }
  }
  const layer = blob(readFileSync(layerTar))
  const config = blob(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Entrypoint: ['/pause'] },
      rootfs: { type: 'layers', diff_ids: [layer.digest] },
    }),
  )
  const manifest = blob(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
    }),
  )
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          annotations: { 'io.containerd.image.name': PAUSE_IMAGE, 'org.opencontainers.image.ref.name': 'test' },
        },
      ],
    }),
  )
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }))
  const out = join(dir, 'pause-oci.tar')
  must('tar', ['-C', layout, '-cf', out, '.'])
  return out
}

export interface SandboxStatus {
  id: string
  state: 'SANDBOX_READY' | 'SANDBOX_NOTREADY'
  network?: { ip: string }
  metadata: { name: string; namespace: string; uid: string }
}

type Call<Req, Res> = (req: Req) => Promise<Res>

export interface CriClient {
  version: Call<{ version: string }, { runtimeName: string; runtimeVersion: string; runtimeApiVersion: string }>
  runPodSandbox: Call<{ config: Record<string, unknown> }, { podSandboxId: string }>
  stopPodSandbox: Call<{ podSandboxId: string }, object>
  removePodSandbox: Call<{ podSandboxId: string }, object>
  podSandboxStatus: Call<{ podSandboxId: string }, { status: SandboxStatus }>
  listPodSandbox: Call<object, { items: { id: string; state: string }[] }>
  close(): void
}

function criClient(socket: string): CriClient {
  const def = protoLoader.loadSync(join(ROOT, 'test', 'cni', 'cri', 'runtime.proto'), { enums: String, defaults: true })
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    runtime: { v1: { RuntimeService: new (addr: string, creds: grpc.ChannelCredentials) => grpc.Client } }
  }
  const c = new pkg.runtime.v1.RuntimeService(`unix://${socket}`, grpc.credentials.createInsecure()) as grpc.Client &
    Record<string, (req: unknown, opts: grpc.CallOptions, cb: (e: Error | null, r: unknown) => void) => void>
  const call =
    (m: string) =>
    (req: unknown): Promise<any> =>
      new Promise((res, rej) => c[m]!.call(c, req, { deadline: Date.now() + 120_000 }, (e, r) => (e ? rej(e) : res(r))))
  return {
    version: call('Version'),
    runPodSandbox: call('RunPodSandbox'),
    stopPodSandbox: call('StopPodSandbox'),
    removePodSandbox: call('RemovePodSandbox'),
    podSandboxStatus: call('PodSandboxStatus'),
    listPodSandbox: call('ListPodSandbox'),
    close: () => c.close(),
  }
}

/** A pod sandbox config as kubelet sends it (metadata, hostname, log dir, labels). */
export function sandboxConfig(name: string, opts: { namespace?: string; logDir: string }): Record<string, unknown> {
  const uid = sha(name).slice(0, 32)
  const namespace = opts.namespace ?? 'default'
  return {
    metadata: { name, uid, namespace, attempt: 0 },
    hostname: name,
    logDirectory: join(opts.logDir, `${namespace}_${name}_${uid}`),
    labels: { 'io.kubernetes.pod.name': name, 'io.kubernetes.pod.namespace': namespace, 'io.kubernetes.pod.uid': uid },
    annotations: { 'kubernetes.io/config.source': 'api' },
  }
}

export class Containerd {
  readonly socket: string
  private proc: ChildProcess | null = null
  client: CriClient | null = null

  constructor(
    readonly nodeNs: string,
    readonly dir: string,
    readonly cni: { binDir: string; confDir: string },
    readonly env: NodeJS.ProcessEnv,
  ) {
    this.socket = join(dir, 'containerd.sock')
    mkdirSync(dir, { recursive: true })
    writeFileSync(
      join(dir, 'config.toml'),
      [
        'version = 2',
        `root = "${dir}/root"`,
        `state = "${dir}/state"`,
        '[grpc]',
        `  address = "${this.socket}"`,
        '[ttrpc]',
        `  address = "${this.socket}.ttrpc"`,
        '[plugins."io.containerd.internal.v1.opt"]',
        `  path = "${dir}/opt"`,
        '[plugins."io.containerd.grpc.v1.cri"]',
        `  sandbox_image = "${PAUSE_IMAGE}"`,
        '  stream_server_address = "127.0.0.1"',
        '  stream_server_port = "0"',
        // this machine's root may not lower oom_score_adj (runc would fail to start the sandbox)
        '  restrict_oom_score_adj = true',
        // pod namespaces under the state dir, so cleanup finds them with everything else
        '  netns_mounts_under_state_dir = true',
        '  [plugins."io.containerd.grpc.v1.cri".containerd]',
        '    snapshotter = "overlayfs"',
        '  [plugins."io.containerd.grpc.v1.cri".cni]',
        `    bin_dir = "${this.cni.binDir}"`,
        `    conf_dir = "${this.cni.confDir}"`,
        '',
      ].join('\n'),
    )
  }

  /** Starts containerd inside the node's namespace and waits for CRI to answer. */
  async start(): Promise<void> {
    const log = openSync(join(this.dir, 'containerd.log'), 'a')
    this.proc = spawn('nsenter', [`--net=/run/netns/${this.nodeNs}`, 'containerd', '--config', join(this.dir, 'config.toml')], {
      stdio: ['ignore', log, log],
      env: { ...process.env, ...this.env },
    })
    closeSync(log)
    for (let i = 0; i < 150; i++) {
      if (existsSync(this.socket)) {
        this.client ??= criClient(this.socket)
        try {
          await this.client.version({ version: 'v1' })
          return
        } catch {
          /* CRI not up yet */
        }
      }
      if (this.proc.exitCode !== null) break
      await sleep(100)
    }
    throw new Error(`containerd in ${this.nodeNs} did not start: ${this.logTail()}`)
  }

  importImage(tar: string): void {
    must('ctr', ['--address', this.socket, '-n', 'k8s.io', 'images', 'import', tar])
  }

  logTail(): string {
    try {
      return readFileSync(join(this.dir, 'containerd.log'), 'utf8').split('\n').slice(-15).join('\n')
    } catch {
      return ''
    }
  }

  /** Kills containerd itself (SIGKILL: as a crash), leaving its shims and pods. */
  async crash(): Promise<void> {
    this.client?.close()
    this.client = null
    if (this.proc && this.proc.exitCode === null) {
      const exited = new Promise((r) => this.proc!.once('exit', r))
      this.proc.kill('SIGKILL')
      await exited
    }
    this.proc = null
  }

  /** Stops containerd and kills every process started under its directory
   * (shims, pause processes), unmounts what it mounted there. */
  async destroy(): Promise<void> {
    await this.crash()
    for (const pid of processesUnder(this.dir)) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        /* gone */
      }
    }
    for (let i = 0; i < 50 && processesUnder(this.dir).length; i++) await sleep(100)
    for (const m of mountsUnder(this.dir).reverse()) sh('umount', ['-l', m])
  }
}

/** Processes whose command line or root directory lies under `dir`. */
export function processesUnder(dir: string): number[] {
  const pids: number[] = []
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8')
      let root = ''
      try {
        root = readlinkSync(`/proc/${d}/root`)
      } catch {
        /* kernel thread or gone */
      }
      if (cmd.includes(dir) || root.startsWith(dir)) pids.push(Number(d))
    } catch {
      /* exited meanwhile */
    }
  }
  return pids
}

export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.startsWith(dir))
}
