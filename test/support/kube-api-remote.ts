// The parent's handle on a Kubernetes API test server running in a child
// process inside a network namespace (kube-api-server-main.ts).
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { KubeNode, LoggedRequest, NodeSpec, TestServerOptions } from './kube-api-server.js'

const MAIN = fileURLToPath(new URL('./kube-api-server-main.ts', import.meta.url))
const VITE_NODE = fileURLToPath(new URL('../../node_modules/.bin/vite-node', import.meta.url))

export class RemoteKubeApiTestServer {
  private next = 1
  private pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  port = 0

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (m: { id: number; result?: unknown; error?: string }) => {
      const p = this.pending.get(m.id)
      this.pending.delete(m.id)
      if (m.error !== undefined) p?.reject(new Error(`kube API test server: ${m.error}`))
      else p?.resolve(m.result)
    })
    child.on('exit', (code) => {
      for (const p of this.pending.values()) p.reject(new Error(`kube API test server exited (${code})`))
      this.pending.clear()
    })
  }

  /** Starts the server in network namespace `netns` (a name under /run/netns), listening on host:port. */
  static async start(netns: string, opts: TestServerOptions): Promise<RemoteKubeApiTestServer> {
    const child = spawn('nsenter', [`--net=/run/netns/${netns}`, VITE_NODE, MAIN], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, PODNET_KUBE_TEST_SERVER: JSON.stringify(opts) },
    })
    const r = new RemoteKubeApiTestServer(child)
    const ready = await new Promise<{ port: number }>((resolve, reject) => {
      r.pending.set(0, { resolve: (v) => resolve(v as { port: number }), reject })
      setTimeout(() => reject(new Error('kube API test server did not start within 30 s')), 30_000).unref()
    })
    r.port = ready.port
    return r
  }

  private call<T>(method: string, ...args: unknown[]): Promise<T> {
    const id = this.next++
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      this.child.send({ id, method, args })
    })
  }

  createNode = (n: NodeSpec): Promise<KubeNode> => this.call('createNode', n)
  setPodCidr = (name: string, cidr: string): Promise<KubeNode> => this.call('setPodCidr', name, cidr)
  setLabel = (name: string, key: string, value: string): Promise<KubeNode> => this.call('setLabel', name, key, value)
  deleteNode = (name: string): Promise<void> => this.call('deleteNode', name)
  getNode = (name: string): Promise<KubeNode | null> => this.call('getNode', name)
  compact = (): Promise<void> => this.call('compact')
  cutWatches = (): Promise<number> => this.call('cutWatches')
  watchCount = (): Promise<number> => this.call('watchCount')
  resourceVersion = (): Promise<string> => this.call('resourceVersion')
  log = (): Promise<LoggedRequest[]> => this.call('log')
  down = (): Promise<void> => this.call('down')
  up = (): Promise<void> => this.call('up')

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return
    const exited = new Promise((r) => this.child.once('exit', r))
    this.child.kill('SIGTERM')
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))])
    if (this.child.exitCode === null) this.child.kill('SIGKILL')
  }
}
