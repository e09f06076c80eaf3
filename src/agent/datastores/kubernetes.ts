// --datastore kubernetes: this node's pod CIDR and IP from its own Node object,
// peers from every other Node (spec.podCIDRs + InternalIP, or the podnet.io/*
// annotations their agents publish). An informer of our own on /api/v1/nodes
// (client-node's ListWatch neither asks for bookmarks nor retries): list, then
// watch from the list's resourceVersion with bookmarks; a normal end re-watches
// from the last resourceVersion seen, a 410 relists, errors back off. The cache
// is only replaced, never cleared, so an unreachable API server leaves the
// datapath exactly as it is; status() says why the node is not ready.
import { readFileSync } from 'node:fs'
import { CoreV1Api, KubeConfig, PatchStrategy, Watch, setHeaderOptions, type V1Node } from '@kubernetes/client-node'
import { UserError } from '../../errors.js'
import { cidrString, isIPv4, parseCidr } from '../../util/ipv4.js'
import type { Datastore, DatastoreContext, DatastoreStatus, OwnNode, PeerMode, PeerNode } from '../datastore.js'

export const ANNOTATION = {
  nodeIp: 'podnet.io/node-ip',
  mode: 'podnet.io/mode',
  vxlanPort: 'podnet.io/vxlan-port',
} as const
export const READY_REASON = 'PodnetIsUp'

export interface KubernetesOptions {
  /** kubeconfig file; in-cluster service-account config when absent */
  kubeconfig?: string
  /** --node-ip given explicitly: wins over the Node's annotation and InternalIP */
  nodeIpOverride?: string
  backoffMinMs?: number
  backoffMaxMs?: number
}

const MODES: readonly string[] = ['direct', 'vxlan', 'auto']

export function loadKubeConfig(file?: string): KubeConfig {
  const kc = new KubeConfig()
  if (file) {
    try {
      readFileSync(file)
      kc.loadFromFile(file)
    } catch (e) {
      throw new UserError(`cannot load kubeconfig ${file}: ${(e as Error).message.split('\n')[0]}`, 'pass a readable kubeconfig file')
    }
  } else {
    if (!process.env.KUBERNETES_SERVICE_HOST || !process.env.KUBERNETES_SERVICE_PORT) {
      throw new UserError(
        'not running in a Kubernetes pod: KUBERNETES_SERVICE_HOST/PORT are not set',
        'pass --kubeconfig FILE, or run the agent as the DaemonSet in deploy/podnet-bpf.yaml',
      )
    }
    kc.loadFromCluster()
  }
  if (!kc.getCurrentCluster()) throw new UserError(`kubeconfig ${file ?? '(in-cluster)'} has no current cluster`, 'set current-context')
  return kc
}

/** The first IPv4 pod CIDR of a Node (spec.podCIDRs, then spec.podCIDR), canonical; null when none. */
export function nodePodCidr(n: V1Node): string | null {
  for (const c of [...(n.spec?.podCIDRs ?? []), n.spec?.podCIDR ?? '']) {
    try {
      if (c && c.includes('.')) return cidrString(parseCidr(c, 'pod CIDR'))
    } catch {
      // a malformed entry is skipped like an IPv6 one
    }
  }
  return null
}

/** The IP the node's agent uses: its podnet.io/node-ip annotation, else its InternalIP. */
export function nodeAddress(n: V1Node): string | null {
  const ann = n.metadata?.annotations?.[ANNOTATION.nodeIp]
  if (ann && isIPv4(ann)) return ann
  return n.status?.addresses?.find((a) => a.type === 'InternalIP' && isIPv4(a.address))?.address ?? null
}

export function peerOf(n: V1Node): PeerNode | null {
  const podCidr = nodePodCidr(n)
  const nodeIp = nodeAddress(n)
  if (!podCidr || !nodeIp || !n.metadata?.name) return null
  const p: PeerNode = { name: n.metadata.name, nodeIp, podCidr }
  const mode = n.metadata.annotations?.[ANNOTATION.mode]
  if (mode && MODES.includes(mode)) p.mode = mode as PeerMode
  const port = Number(n.metadata.annotations?.[ANNOTATION.vxlanPort])
  if (Number.isInteger(port) && port > 0 && port < 65536) p.vxlanPort = port
  return p
}

const errText = (e: unknown): string => {
  const x = e as { code?: number; statusCode?: number; body?: unknown; message?: string }
  const code = x.statusCode ?? (typeof x.code === 'number' ? x.code : undefined)
  const body = typeof x.body === 'string' ? safeJson(x.body) : x.body
  const msg = (body as { message?: string } | undefined)?.message
  if (code) return `HTTP ${code}${msg ? `: ${msg}` : ''}`
  // without the query string (its timeoutSeconds varies), so repeated failures log once
  return (x.message ?? String(e)).split('\n')[0]!.replace(/\?\S*/g, '')
}
const safeJson = (s: string): unknown => {
  try {
    return JSON.parse(s)
  } catch {
    return undefined
  }
}

export class KubernetesDatastore implements Datastore {
  readonly kind = 'kubernetes'
  private readonly kc: KubeConfig
  private readonly api: CoreV1Api
  private readonly nodes = new Map<string, V1Node>()
  private rv = ''
  private synced = false
  private connected = false
  private lastError: string | null = null
  private waiting: string | null = null
  private own: OwnNode | null = null
  private readonly stopper = new AbortController()
  private request: AbortController | null = null
  private loop: Promise<void> | null = null
  private readonly listeners = new Set<() => void>()
  private lastFingerprint = ''
  private readyMarked = false
  /** resourceVersion our last own-Node write produced, until the cache has seen it */
  private pendingRv: string | null = null
  private maintaining: Promise<void> | null = null
  private readonly stats = { lists: 0, relists410: 0, watches: 0, bookmarks: 0, events: 0, errors: 0 }

  constructor(
    private readonly ctx: DatastoreContext,
    private readonly opts: KubernetesOptions = {},
  ) {
    this.kc = loadKubeConfig(opts.kubeconfig)
    this.api = this.kc.makeApiClient(CoreV1Api)
  }

  get server(): string {
    return this.kc.getCurrentCluster()?.server ?? '?'
  }

  async start(signal: AbortSignal): Promise<OwnNode> {
    this.loop ??= this.run()
    const node = await this.waitFor(signal, () => this.ownNode())
    this.waiting = null
    this.ctx.log.info('own Node found', { node: node.name, podCidr: node.podCidr, nodeIp: node.nodeIp })
    await this.retry(signal, 'publish annotations', () => this.publish(node))
    this.own = node
    return node
  }

  watch(onChange: () => void, signal: AbortSignal): void {
    this.listeners.add(onChange)
    signal.addEventListener('abort', () => this.listeners.delete(onChange), { once: true })
  }

  peers(): PeerNode[] {
    const out: PeerNode[] = []
    for (const n of this.nodes.values()) {
      if (n.metadata?.name === this.ctx.nodeName) continue
      const p = peerOf(n)
      if (p) out.push(p)
    }
    return out.sort((a, b) => a.name.localeCompare(b.name))
  }

  status(): DatastoreStatus {
    const detail = {
      server: this.server,
      own: this.own,
      resourceVersion: this.rv,
      nodes: this.nodes.size,
      connected: this.connected,
      ...this.stats,
    }
    if (this.lastError && !this.connected) {
      return { ready: false, reason: `Kubernetes API ${this.server} unavailable: ${this.lastError}; datapath kept as it is`, detail }
    }
    if (!this.synced) return { ready: false, reason: `listing Nodes from ${this.server}`, detail }
    if (this.waiting) return { ready: false, reason: this.waiting, detail }
    return { ready: true, detail }
  }

  /** NetworkUnavailable=False through the status subresource, as a strategic merge patch keyed by condition type. */
  async markReady(): Promise<void> {
    if (this.conditionSet()) return void (this.readyMarked = true)
    const name = this.ctx.nodeName
    const now = new Date().toISOString()
    const body = {
      status: {
        conditions: [
          {
            type: 'NetworkUnavailable',
            status: 'False',
            reason: READY_REASON,
            message: 'podnet-bpf datapath is attached and routes are synced',
            lastTransitionTime: now,
            lastHeartbeatTime: now,
          },
        ],
      },
    }
    await this.retry(this.stopper.signal, 'set NetworkUnavailable=False', async () => {
      const n = await this.api.patchNodeStatus({ name, body }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch))
      this.wrote(n)
    })
    this.readyMarked = true
    this.ctx.log.info('Node condition NetworkUnavailable=False', { node: name, reason: READY_REASON })
  }

  async stop(): Promise<void> {
    this.stopper.abort()
    this.request?.abort()
    this.listeners.clear()
    // a list in flight cannot be aborted; don't let a black-holed API server hold up shutdown
    await Promise.race([this.loop, new Promise((r) => setTimeout(r, 2000).unref())])
  }

  private conditionSet(): boolean {
    const cur = this.nodes.get(this.ctx.nodeName)?.status?.conditions?.find((c) => c.type === 'NetworkUnavailable')
    return cur?.status === 'False' && cur.reason === READY_REASON
  }

  /** A Node deleted and registered again (kubelet) comes back bare: annotations and condition are written again. */
  private maintainOwnNode(): void {
    const own = this.own
    // the cache may still lag behind our own write: judge only once it has caught up
    if (!own || this.maintaining || this.pendingRv || !this.nodes.has(own.name) || this.stopper.signal.aborted) return
    const annotationsOk = this.annotationsMatch(own)
    if (annotationsOk && (!this.readyMarked || this.conditionSet())) return
    this.maintaining = (async () => {
      if (!annotationsOk) await this.retry(this.stopper.signal, 'publish annotations', () => this.publish(own))
      if (this.readyMarked && !this.conditionSet()) await this.markReady()
    })()
      .catch(() => undefined)
      .finally(() => {
        this.maintaining = null
      })
  }

  private wantedAnnotations(own: OwnNode): Record<string, string> {
    return {
      [ANNOTATION.nodeIp]: own.nodeIp,
      // without --mode the agent runs auto (Kubernetes has no cluster-wide default)
      [ANNOTATION.mode]: this.ctx.mode ?? 'auto',
      [ANNOTATION.vxlanPort]: String(this.ctx.vxlanPort),
    }
  }

  private annotationsMatch(own: OwnNode): boolean {
    const have = this.nodes.get(own.name)?.metadata?.annotations ?? {}
    return Object.entries(this.wantedAnnotations(own)).every(([k, v]) => have[k] === v)
  }

  private ownNode(): OwnNode | null {
    const name = this.ctx.nodeName
    const n = this.nodes.get(name)
    if (!this.synced) return null
    if (!n) {
      this.waiting = `Node "${name}" does not exist in the Kubernetes API (--node-name / NODE_NAME must be the kubelet's node name)`
      return null
    }
    const podCidr = nodePodCidr(n)
    if (!podCidr) {
      this.waiting = `Node "${name}" has no IPv4 pod CIDR yet (assigned by kube-controller-manager --allocate-node-cidrs); waiting`
      return null
    }
    return { name, podCidr, nodeIp: this.opts.nodeIpOverride ?? nodeAddress(n) ?? this.ctx.nodeIp }
  }

  private async publish(own: OwnNode): Promise<void> {
    if (this.annotationsMatch(own)) return
    const want = this.wantedAnnotations(own)
    const body = { metadata: { annotations: want } }
    this.wrote(await this.api.patchNode({ name: own.name, body }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)))
    this.ctx.log.info('published Node annotations', want)
  }

  private wrote(n: V1Node): void {
    const rv = n.metadata?.resourceVersion
    if (rv && rv !== this.nodes.get(this.ctx.nodeName)?.metadata?.resourceVersion) this.pendingRv = rv
  }

  /** Resolves with the first non-null value of `get`, re-checked on every cache change. */
  private waitFor<T>(signal: AbortSignal, get: () => T | null): Promise<T> {
    return new Promise((resolve, reject) => {
      let said = ''
      const check = (): void => {
        const v = get()
        if (v !== null) {
          this.listeners.delete(check)
          return resolve(v)
        }
        if (this.waiting && this.waiting !== said) this.ctx.log.warn((said = this.waiting))
      }
      signal.addEventListener('abort', () => {
        this.listeners.delete(check)
        reject(signal.reason ?? new Error('aborted'))
      })
      this.listeners.add(check)
      check()
    })
  }

  private async retry(signal: AbortSignal, what: string, fn: () => Promise<void>): Promise<void> {
    for (let delay = this.opts.backoffMinMs ?? 200; ; delay = Math.min(delay * 2, this.opts.backoffMaxMs ?? 5000)) {
      try {
        await fn()
        this.waiting = null
        return
      } catch (e) {
        if (signal.aborted) throw signal.reason ?? e
        this.waiting = `cannot ${what} on Node "${this.ctx.nodeName}": ${errText(e)}; retrying`
        this.ctx.log.warn(this.waiting)
        await sleep(delay, signal)
      }
    }
  }

  // ---- informer -------------------------------------------------------------

  private async run(): Promise<void> {
    const min = this.opts.backoffMinMs ?? 200
    const max = this.opts.backoffMaxMs ?? 5000
    let delay = min
    while (!this.stopper.signal.aborted) {
      try {
        if (!this.rv) await this.relist()
        const quick = await this.watchOnce()
        delay = min
        if (quick) await sleep(min, this.stopper.signal) // an API server that ends watches at once: don't spin
      } catch (e) {
        if (this.stopper.signal.aborted) break
        this.fail(e)
        await sleep(delay * (0.8 + Math.random() * 0.4), this.stopper.signal).catch(() => undefined)
        delay = Math.min(delay * 2, max)
      }
    }
  }

  private fail(e: unknown): void {
    const msg = errText(e)
    this.stats.errors++
    this.ctx.events.error()
    if (msg !== this.lastError || this.connected) this.ctx.log.warn('Kubernetes API error; datapath kept as it is', { error: msg })
    this.connected = false
    this.lastError = msg
    this.notify()
  }

  private async relist(): Promise<void> {
    const list = await this.api.listNode({})
    this.nodes.clear()
    for (const n of list.items) if (n.metadata?.name) this.nodes.set(n.metadata.name, n)
    this.rv = list.metadata?.resourceVersion ?? ''
    this.pendingRv = null // a fresh snapshot includes every write we made
    if (this.stats.lists++) this.ctx.events.watchRestart()
    this.synced = true
    this.connected = true
    this.lastError = null
    this.ctx.log.info('listed Nodes', { nodes: list.items.length, resourceVersion: this.rv })
    this.notify()
  }

  /** One watch from this.rv; resolves when it ends normally (true when it ended within a second having seen nothing). */
  private watchOnce(): Promise<boolean> {
    const timeoutSeconds = 300 + Math.floor(Math.random() * 300) // spread re-watches, as client-go does
    const began = Date.now()
    let seen = 0
    return new Promise((resolve, reject) => {
      let ended = false
      // a watch that sends nothing past its own timeout is hung (half-open connection)
      const guard = setTimeout(() => this.request?.abort(), (timeoutSeconds + 30) * 1000)
      const done = (err: unknown): void => {
        if (ended) return
        ended = true
        clearTimeout(guard)
        if (err && (err as { name?: string }).name !== 'AbortError') reject(err)
        else resolve(seen === 0 && Date.now() - began < 1000)
      }
      const onEvent = (type: string, obj: V1Node & { code?: number; message?: string }): void => {
        seen++
        this.event(type, obj, reject)
      }
      const query = { resourceVersion: this.rv, allowWatchBookmarks: true, timeoutSeconds }
      new Watch(this.kc).watch('/api/v1/nodes', query, onEvent, done).then((req: AbortController) => {
        this.request = req
        if (ended) return
        if (this.stats.watches++) this.ctx.events.watchRestart()
        if (!this.connected || this.lastError) this.ctx.log.info('watching Nodes', { resourceVersion: this.rv, server: this.server })
        this.connected = true
        this.lastError = null
        this.notify()
        if (this.stopper.signal.aborted) req.abort()
      }, done)
    })
  }

  private event(type: string, obj: V1Node & { code?: number; message?: string }, fail: (e: unknown) => void): void {
    if (type === 'ERROR') {
      // 410: our resourceVersion is compacted away; relist (the cache is replaced, not emptied)
      if (obj.code === 410) {
        this.stats.relists410++
        this.ctx.log.info('watch expired (410 Gone); relisting', { resourceVersion: this.rv })
        this.rv = ''
        return this.request?.abort()
      }
      return fail(Object.assign(new Error(obj.message ?? 'watch error'), { statusCode: obj.code }))
    }
    const name = obj.metadata?.name
    if (name === this.ctx.nodeName && obj.metadata?.resourceVersion === this.pendingRv) this.pendingRv = null
    if (type === 'BOOKMARK') this.stats.bookmarks++
    else if (name && (type === 'ADDED' || type === 'MODIFIED')) this.nodes.set(name, obj)
    else if (name && type === 'DELETED') this.nodes.delete(name)
    else return
    if (type !== 'BOOKMARK') this.stats.events++
    this.rv = obj.metadata?.resourceVersion ?? this.rv
    this.notify()
  }

  /** Level-triggered: listeners run when what they read (peers, own Node) may have changed. */
  private notify(): void {
    this.maintainOwnNode()
    const own = this.nodes.get(this.ctx.nodeName)
    const fp = JSON.stringify([this.peers(), own && nodePodCidr(own), own && nodeAddress(own)])
    if (fp === this.lastFingerprint) return
    this.lastFingerprint = fp
    for (const l of [...this.listeners]) l()
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason)
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = (): void => {
      clearTimeout(t)
      reject(signal.reason)
    }
    signal.addEventListener('abort', onAbort, { once: true })
  })
}
