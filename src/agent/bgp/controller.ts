// The agent's BGP mode: BIRD as a child announcing this node's pod CIDR and
// learning the others'; what it accepts lands in a dedicated kernel table,
// which is mirrored into the BPF routes map through the agent's reconciler
// (route source 'bgp': direct routes via the BGP next hop). The config is
// re-rendered when the datastore's node set changes and applied with
// `birdc configure`.
import { Gauge, type Registry } from 'prom-client'
import { deviceSubnets } from '../../services/node.js'
import { watchKernelTable, type KernelTableWatch } from '../../services/kernel-table.js'
import type { Datastore, OwnNode } from '../datastore.js'
import type { Logger } from '../log.js'
import type { DesiredRoute, Reconciler } from '../reconcile.js'
import { showSessions, type BgpSession } from '../../services/bird.js'
import type { BgpConfig } from './config.js'
import { renderBird, type BgpNode } from './render.js'
import { BirdSupervisor } from './supervisor.js'

export interface BgpControllerOptions {
  bgp: BgpConfig
  clusterCidr: string
  own: OwnNode
  device: string
  datastore: Datastore
  reconciler: Reconciler
  log: Logger
  runDir: string
  registry: Registry
  /** how often sessions are read for status and metrics */
  pollMs?: number
}

export interface BgpStatus {
  asn: number
  routerId: string
  table: number
  daemon: { pid: number | null; restarts: number; config: string; socket: string }
  sessions: BgpSession[]
  /** routes in the kernel table now */
  routes: number
  error: string | null
}

export class BgpController {
  private readonly sup: BirdSupervisor
  private watch: KernelTableWatch | undefined
  private nodesKey = ''
  private sessions: BgpSession[] = []
  private lastError: string | null = null
  private poll: NodeJS.Timeout | undefined
  private rendering: Promise<void> = Promise.resolve()
  private readonly sessionUp: Gauge<'peer'>
  private readonly prefixes: Gauge<'peer' | 'state'>

  constructor(private readonly o: BgpControllerOptions) {
    this.sup = new BirdSupervisor({
      runDir: o.runDir,
      gracefulRestart: o.bgp.gracefulRestart,
      log: (level, msg, fields) => o.log[level](msg, fields),
    })
    this.sessionUp = new Gauge({
      name: 'podnet_bgp_session_up',
      help: '1 when the BGP session with the peer is Established',
      labelNames: ['peer'],
      registers: [o.registry],
    })
    this.prefixes = new Gauge({
      name: 'podnet_bgp_prefixes',
      help: 'Prefixes from the peer: received, accepted, rejected (import filter: outside the cluster, too specific, not from the owner)',
      labelNames: ['peer', 'state'],
      registers: [o.registry],
    })
  }

  /** Renders and starts the daemon, then mirrors its table; call before the first sync. */
  async start(): Promise<void> {
    const { text, skipped } = this.render()
    if (skipped.length) this.o.log.warn("mesh peers not on this node's subnet get no session (peer through a router)", { peers: skipped })
    this.watch = watchKernelTable(this.o.bgp.table, () => this.o.reconciler.trigger('bgp'))
    await this.sup.start(text)
    this.o.log.info('BGP daemon started', { pid: this.sup.pid, asn: this.o.bgp.asn, config: this.sup.configPath, table: this.o.bgp.table })
    this.o.reconciler.removeRouteSource('datastore')
    this.o.reconciler.addRouteSource('bgp', () => this.routes())
    this.poll = setInterval(() => void this.refreshSessions(), this.o.pollMs ?? 2000)
    this.poll.unref()
    await this.refreshSessions()
  }

  private nodes(): BgpNode[] {
    return this.o.datastore.peers().map((p) => ({ name: p.name, nodeIp: p.nodeIp, podCidr: p.podCidr }))
  }

  private render() {
    const nodes = this.nodes()
    this.nodesKey = JSON.stringify(nodes)
    return renderBird({
      bgp: this.o.bgp,
      self: this.o.own,
      clusterCidr: this.o.clusterCidr,
      nodes,
      subnets: deviceSubnets(this.o.device),
    })
  }

  /** The route source: every route of the kernel table, direct via its BGP next hop.
   * Also notices a changed node set (it runs on every datastore event) and re-renders. */
  private routes(): DesiredRoute[] {
    if (JSON.stringify(this.nodes()) !== this.nodesKey) this.rerender()
    return (this.watch?.current() ?? []).map((r) => ({ cidr: r.cidr, nodeIp: r.gateway!, encap: 'none', origin: 'bgp' }))
  }

  private rerender(): void {
    const { text } = this.render()
    this.rendering = this.rendering
      .then(() => this.sup.apply(text))
      .then(() => {
        this.lastError = null
      })
      .catch((e: unknown) => {
        this.lastError = (e as Error).message
        this.o.log.error('BGP reconfiguration failed; the daemon keeps its previous config', { error: this.lastError })
      })
  }

  private async refreshSessions(): Promise<void> {
    if (!this.sup.running) return
    try {
      this.sessions = await showSessions(this.sup.socket)
    } catch (e) {
      this.o.log.debug('birdc failed', { error: (e as Error).message })
      return
    }
    this.sessionUp.reset()
    this.prefixes.reset()
    for (const s of this.sessions) {
      this.sessionUp.set({ peer: s.peer }, s.state === 'Established' ? 1 : 0)
      for (const state of ['received', 'accepted', 'rejected'] as const) this.prefixes.set({ peer: s.peer, state }, s.prefixes[state])
    }
  }

  status(): BgpStatus {
    return {
      asn: this.o.bgp.asn,
      routerId: this.o.bgp.routerId ?? this.o.own.nodeIp,
      table: this.o.bgp.table,
      daemon: { pid: this.sup.pid ?? null, restarts: this.sup.restarts, config: this.sup.configPath, socket: this.sup.socket },
      sessions: this.sessions,
      routes: this.watch?.current().length ?? 0,
      error: this.lastError,
    }
  }

  /** Graceful restart: peers keep this node's routes, the kernel table stays. */
  async stop(): Promise<void> {
    if (this.poll) clearInterval(this.poll)
    await this.rendering
    await this.sup.stop()
    this.watch?.close()
  }
}

// the lab removes these dirs too, so the name is decided in one place
export { bgpRunDir } from '../../services/bird.js'
