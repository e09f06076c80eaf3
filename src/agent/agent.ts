// `podnet-bpf agent`: the node daemon. Lifecycle:
//   datastore.start (learn/acquire the pod CIDR; nothing is changed on the
//   node before this succeeds) → attach (idempotent: same config, no change)
//   → first sync → datastore.markReady (Kubernetes: NetworkUnavailable=False)
//   → CNI conflist written (only now can pods be scheduled) → ready, then
//   every watch event and a periodic resync run the same reconcile. SIGTERM: stop watching, keep the datapath
//   forwarding and the lease, exit 0; a restart converges without a flap.
// The agent calls the same services as the CLI (attach, routes sync).
import { attach } from '../services/node.js'
import { resolvePinDir, type Mode } from '../services/config.js'
import { loadState } from '../services/state.js'
import { defaultNodeIp } from '../services/netinfo.js'
import { requirePrivileges } from '../services/preflight.js'
import { MetricsReader, prometheusRegistry } from '../services/inspect/metrics.js'
import { writeAgentStatus, type AgentStatus } from '../services/agent-status.js'
import type { Registry } from 'prom-client'
import type { AgentConfig } from './config.js'
import type { Datastore, DatastoreContext, OwnNode } from './datastore.js'
import { createDatastore } from './datastores.js'
import { serveAgentHttp, type HttpServer } from './http.js'
import type { Logger } from './log.js'
import { AgentMetrics } from './metrics.js'
import { Reconciler, peerToRoute, type ReconcileResult } from './reconcile.js'
import { writeCniConflist } from './cni-conf.js'
import { stateDir } from '../services/state.js'
import { BgpController, bgpRunDir } from './bgp/controller.js'
import { checkBgpSetup } from './bgp/render.js'

export interface AgentOptions {
  config: AgentConfig
  log: Logger
  signal: AbortSignal
  /** another datastore (tests, or stores registered elsewhere) */
  createDatastore?: (cfg: AgentConfig, ctx: DatastoreContext) => Datastore | Promise<Datastore>
  /** extra route sources (e.g. BGP), registered before the first sync */
  onReconciler?: (r: Reconciler, a: Agent) => void | Promise<void>
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true })
  })

export class Agent {
  readonly metrics = new AgentMetrics()
  readonly pinDir: string
  readonly startedAt = new Date().toISOString()
  own: OwnNode | null = null
  datastore: Datastore | null = null
  reconciler: Reconciler | null = null
  http: HttpServer | null = null
  bgp: BgpController | null = null
  private phase = 'starting'
  private synced = false
  /** readiness at the last refresh (gauge and status file) */
  private lastReady: boolean | null = null
  private lastReason: string | null = null
  private datapathRegistry: Registry | null = null
  private reader: MetricsReader | null = null
  private statusTimer: NodeJS.Timeout | null = null

  constructor(private readonly o: AgentOptions) {
    this.pinDir = resolvePinDir(o.config.pinDir)
  }

  get log(): Logger {
    return this.o.log
  }

  readiness(): { ready: boolean; reason: string | null } {
    const ds = this.datastore?.status()
    // while starting, the datastore may know more (e.g. waiting for a Kubernetes pod CIDR)
    if (!this.synced) return { ready: false, reason: ds?.reason && !ds.ready ? `${this.phase} (${ds.reason})` : this.phase }
    if (ds && !ds.ready) return { ready: false, reason: `${this.datastore!.kind}: ${ds.reason ?? 'not ready'}` }
    const err = this.reconciler?.lastError
    if (err) return { ready: false, reason: `last reconcile failed: ${err.message.split('\n')[0]}` }
    return { ready: true, reason: null }
  }

  /** Readiness as /readyz reports it. When it changed since the last refresh,
   * the gauge and the status file follow at once, so whoever saw /readyz
   * change finds `status` and /metrics saying the same (not up to 1 s later). */
  private observedReadiness(): { ready: boolean; reason: string | null } {
    const r = this.readiness()
    if (r.ready !== this.lastReady || r.reason !== this.lastReason) this.refresh()
    return r
  }

  /** Runs until the signal aborts; rejects on a start-up failure (nothing of the datapath half-applied). */
  async run(): Promise<void> {
    const cfg = this.o.config
    requirePrivileges()
    const nodeIp = cfg.nodeIp ?? defaultNodeIp(cfg.device)
    this.http = await serveAgentHttp(cfg.listen, {
      ready: () => this.observedReadiness(),
      registries: () => [this.metrics.registry, ...(this.datapathRegistry ? [this.datapathRegistry] : [])],
    })
    this.log.info('agent starting', { node: cfg.nodeName, datastore: cfg.datastore, pinDir: this.pinDir, listen: this.http.url })
    this.statusTimer = setInterval(() => this.refresh(), 1000)
    try {
      await this.start(nodeIp)
      if (!this.o.signal.aborted) await new Promise<void>((r) => this.o.signal.addEventListener('abort', () => r(), { once: true }))
    } finally {
      await this.shutdown()
    }
  }

  /** lease → attach → first sync → CNI conflist → ready, one method per step. */
  private async start(nodeIp: string): Promise<void> {
    const cfg = this.o.config
    const ds = await this.openDatastore(nodeIp)
    const own = await this.acquire(ds)
    if (!own) return
    const mode = cfg.mode ?? own.mode ?? 'auto'
    // BGP settings that only the node can check (a peer that is the node itself, the
    // pod CIDR outside the cluster network) fail here, before the datapath changes
    const clusterCidr = cfg.routing === 'bgp' ? checkBgpSetup(cfg.bgp, own, cfg.clusterCidr ?? own.clusterCidr, ds.peers()) : ''
    ds.watch(() => this.reconciler?.trigger('datastore'), this.o.signal)
    const podMtu = this.attachDatapath(own, mode)
    const rec = this.newReconciler(ds, own, mode)
    if (cfg.routing === 'bgp') await this.startBgp(ds, rec, own, clusterCidr)
    await this.o.onReconciler?.(rec, this)
    this.phase = 'first sync'
    await this.firstSync(rec)
    if (this.o.signal.aborted) return
    await this.becomeReady(ds, rec, own, podMtu)
  }

  private async openDatastore(nodeIp: string): Promise<Datastore> {
    const cfg = this.o.config
    const ctx: DatastoreContext = {
      nodeName: cfg.nodeName,
      nodeIp,
      mode: cfg.mode,
      vxlanPort: cfg.vxlanPort,
      previousPodCidr: loadState(this.pinDir)?.config.podCidr,
      leaseTtlMs: cfg.leaseTtl,
      log: this.log,
      events: { watchRestart: () => this.metrics.watchRestarts.inc(), error: () => this.metrics.datastoreErrors.inc() },
    }
    this.datastore = await (this.o.createDatastore ?? createDatastore)(cfg, ctx)
    return this.datastore
  }

  /** This node's pod CIDR from the datastore (null: stopped meanwhile). */
  private async acquire(ds: Datastore): Promise<OwnNode | null> {
    this.phase = `${ds.kind}: acquiring this node's pod CIDR`
    const own = await ds.start(this.o.signal)
    if (this.o.signal.aborted) return null
    this.own = own
    this.log.info('pod CIDR acquired', { podCidr: own.podCidr, nodeIp: own.nodeIp, mode: this.o.config.mode ?? own.mode ?? 'auto' })
    this.refresh() // the status file shows the lease at once (the lab times convergence from it)
    return own
  }

  /** Attach (idempotent: the same config changes nothing); returns the pods' MTU. */
  private attachDatapath(own: OwnNode, mode: Mode): number {
    const cfg = this.o.config
    this.phase = 'attaching the datapath'
    const a = attach({
      flags: { nodeIp: own.nodeIp, podCidr: own.podCidr, device: cfg.device, mode, vni: cfg.vni, vxlanPort: cfg.vxlanPort, mtu: cfg.mtu },
      pinDir: this.pinDir,
    })
    this.log.info(`datapath ${a.action}`, { mode: a.config.mode, podMtu: a.podMtu, device: cfg.device })
    this.reader = new MetricsReader(this.pinDir)
    this.datapathRegistry = prometheusRegistry(this.reader)
    return a.podMtu
  }

  private newReconciler(ds: Datastore, own: OwnNode, mode: Mode): Reconciler {
    const rec = new Reconciler({
      pinDir: this.pinDir,
      own,
      mode,
      device: this.o.config.device,
      log: this.log,
      onResult: (r) => this.onResult(r),
      onError: (e, trigger) => {
        this.metrics.reconciles.inc({ result: 'error' })
        this.log.error('reconcile failed; datapath unchanged', { trigger, error: e.message })
      },
    })
    rec.addRouteSource('datastore', () => ds.peers().map((p) => peerToRoute(p, mode)))
    this.reconciler = rec
    return rec
  }

  private async startBgp(ds: Datastore, rec: Reconciler, own: OwnNode, clusterCidr: string): Promise<void> {
    this.phase = 'starting the BGP daemon'
    this.bgp = new BgpController({
      bgp: this.o.config.bgp,
      clusterCidr,
      own,
      device: this.o.config.device,
      datastore: ds,
      reconciler: rec,
      log: this.log,
      runDir: bgpRunDir(stateDir(), this.pinDir),
      registry: this.metrics.registry,
    })
    await this.bgp.start()
  }

  /** The node's network is declared up before pods can be wired: kubelet keeps
   * the node NotReady until the CNI config exists. */
  private async becomeReady(ds: Datastore, rec: Reconciler, own: OwnNode, podMtu: number): Promise<void> {
    await ds.markReady?.()
    if (this.o.signal.aborted) return
    const conf = writeCniConflist(this.o.config.cniConfDir, { podCidr: own.podCidr, pinDir: this.pinDir, mtu: podMtu })
    if (conf.changed) this.log.info('CNI config written', { path: conf.path })
    this.synced = true
    rec.startResync(this.o.config.resyncInterval)
    this.refresh()
    this.log.info('ready', { peers: ds.peers().length, routes: rec.last?.desired ?? 0 })
  }

  /** Retries with backoff: the node is not ready until one sync succeeded. */
  private async firstSync(rec: Reconciler): Promise<void> {
    for (let delay = 500; !this.o.signal.aborted; delay = Math.min(delay * 2, 10_000)) {
      try {
        rec.runNow('start')
        return
      } catch {
        this.phase = `first sync failed (retrying): ${rec.lastError?.message.split('\n')[0] ?? ''}`
        await sleep(delay, this.o.signal)
      }
    }
  }

  private onResult(r: ReconcileResult): void {
    this.metrics.reconciles.inc({ result: 'ok' })
    this.metrics.reconcileSeconds.observe(r.seconds)
    this.metrics.routes.reset()
    for (const [origin, n] of Object.entries(r.byOrigin)) this.metrics.routes.set({ origin }, n)
    this.metrics.rejected.set(r.rejected.length)
    if (r.added || r.changed || r.removed || r.kernelRepaired) {
      this.log.info('routes reconciled', {
        trigger: r.trigger,
        added: r.added,
        changed: r.changed,
        removed: r.removed,
        ...(r.kernelRepaired ? { kernelRepaired: r.kernelRepaired } : {}),
        total: r.desired,
        ms: Math.round(r.seconds * 1000),
      })
    }
    this.refresh()
  }

  /** Gauges and the status file (for `podnet-bpf status`). */
  private refresh(stoppedAt: string | null = null): void {
    const ready = this.readiness()
    this.lastReady = ready.ready
    this.lastReason = ready.reason
    const ds = this.datastore?.status()
    this.metrics.ready.set(ready.ready ? 1 : 0)
    this.metrics.peers.set(this.datastore?.peers().length ?? 0)
    const exp = ds?.detail?.leaseExpiresAt
    this.metrics.leaseExpiry.set(typeof exp === 'string' ? Date.parse(exp) / 1000 : 0)
    const last = this.reconciler?.last
    const s: AgentStatus = {
      pid: process.pid,
      nodeName: this.o.config.nodeName,
      datastore: this.o.config.datastore,
      startedAt: this.startedAt,
      updatedAt: new Date().toISOString(),
      url: this.http?.url ?? null,
      ready: ready.ready,
      reason: ready.reason,
      podCidr: this.own?.podCidr ?? null,
      nodeIp: this.own?.nodeIp ?? null,
      peers: this.datastore?.peers().length ?? 0,
      routes: last?.byOrigin ?? {},
      routeOrigins: last?.origins ?? {},
      lastSync: last
        ? { at: last.at, trigger: last.trigger, seconds: last.seconds, added: last.added, changed: last.changed, removed: last.removed }
        : null,
      lastError: this.reconciler?.lastError ?? null,
      datastoreDetail: ds?.detail ?? {},
      stoppedAt,
      bgp: this.bgp?.status() ?? null,
    }
    try {
      writeAgentStatus(this.pinDir, s)
    } catch (e) {
      this.log.debug('cannot write the status file', { error: (e as Error).message })
    }
  }

  private async shutdown(): Promise<void> {
    if (this.statusTimer) clearInterval(this.statusTimer)
    this.reconciler?.stop()
    await this.bgp?.stop().catch((e: unknown) => this.log.warn('BGP daemon stop failed', { error: (e as Error).message }))
    await this.datastore?.stop().catch((e: unknown) => this.log.warn('datastore stop failed', { error: (e as Error).message }))
    await this.http?.close()
    this.reader?.close()
    this.refresh(new Date().toISOString())
    this.log.info('agent stopped; datapath and lease left in place')
  }
}
