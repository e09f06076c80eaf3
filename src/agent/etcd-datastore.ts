// --datastore etcd: Flannel-style subnet leases (layout in services/etcd.ts).
// start(): read the cluster config, grant an etcd lease, take this node's
// subnet back if it still holds one (same name → same subnet), else the
// subnet it had before (attach state), else a random free one, each by a
// transaction that only succeeds if nobody took the key meanwhile; then
// list the subnets and remember the revision. watch(): a prefix watch from
// that revision; a cancelled watch (compaction) relists and watches again.
// The lease is kept alive every TTL/3 (at most every 2 s) over one
// long-lived LeaseKeepAlive stream (etcd-keepalive.ts); while etcd is
// unreachable or without quorum nothing changes on the node, status() says
// why, and the stream is reopened with backoff (250 ms doubling to 2 s). The
// watch reconnects by itself, from the revision this store has applied. A
// lease that expired meanwhile is granted again and the same subnet
// re-registered.
import type { Etcd3, IKeyValue, IWatchResponse, Watcher } from 'etcd3'
import { UserError } from '../errors.js'
import { cidrContains, cidrString } from '../util/ipv4.js'
import {
  deadline,
  etcdClient,
  etcdUserError,
  listSubnets,
  nthSubnet,
  parseSubnet,
  readClusterConfig,
  subnetCount,
  subnetKey,
  subnetsPrefix,
  validateClusterConfig,
  type ClusterConfig,
  type LeaseValue,
  type SubnetLease,
} from '../services/etcd.js'
import type { EtcdConfig } from './config.js'
import type { Datastore, DatastoreContext, DatastoreStatus, OwnNode, PeerMode, PeerNode } from './datastore.js'
import { LeaseKeepAlive } from './etcd-keepalive.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const msg = (e: unknown) => ((e as Error)?.message ?? String(e)).split('\n')[0]!

export class EtcdDatastore implements Datastore {
  readonly kind = 'etcd'
  private readonly client: Etcd3
  private readonly cache = new Map<string, SubnetLease>()
  private own: { key: string; cidr: string; value: LeaseValue } | null = null
  private leaseId = '0'
  private leaseExpiresAt: number | null = null
  private revision = '0'
  private cluster: ClusterConfig | null = null
  private watcher: Watcher | null = null
  private onChange: () => void = () => {}
  private keepaliveProblem: string | null = null
  private watchProblem: string | null = null
  private ownProblem: string | null = null
  private keeper: LeaseKeepAlive | null = null
  private stopped = false
  private relisting = false
  private renewing = false
  /** when this run wrote its subnet key */
  private leasedAt: string | null = null

  constructor(
    private readonly ctx: DatastoreContext,
    private readonly cfg: EtcdConfig,
  ) {
    this.client = etcdClient(cfg)
  }

  private get ttlSeconds(): number {
    return Math.max(2, Math.ceil(this.ctx.leaseTtlMs / 1000))
  }

  /** Keepalive period: a third of the TTL, at most 2 s, so an unreachable etcd shows in /readyz quickly. */
  private get period(): number {
    return Math.min(this.ttlSeconds * 333, 2000)
  }

  /** Reads the cluster config, retrying briefly: an etcd that stays unreachable is an operator error at start. */
  private async readConfig(signal: AbortSignal): Promise<ClusterConfig> {
    const giveUp = Date.now() + 15_000
    for (;;) {
      try {
        const c = await readClusterConfig(this.client, this.cfg.prefix, 4000)
        if (!c) {
          throw new UserError(
            `no cluster config at ${this.cfg.prefix}/config in etcd`,
            'run `podnet-bpf cluster init --etcd-endpoints … --network 10.244.0.0/16` first (or fix --etcd-prefix)',
          )
        }
        return c
      } catch (e) {
        if (e instanceof UserError) throw e
        this.ctx.events.error()
        if (Date.now() > giveUp || signal.aborted) throw etcdUserError(e, this.cfg)
        this.ctx.log.warn('etcd not reachable yet; retrying', { error: msg(e) })
        await sleep(1000)
      }
    }
  }

  async start(signal: AbortSignal): Promise<OwnNode> {
    const cluster = await this.readConfig(signal)
    const { network, subnetLen } = validateClusterConfig(cluster, `cluster config ${this.cfg.prefix}/config`)
    if (cidrContains(network, this.ctx.nodeIp)) {
      throw new UserError(
        `cluster network ${cidrString(network)} contains this node's IP ${this.ctx.nodeIp}`,
        'pod and node networks must not overlap: re-run cluster init with another --network',
      )
    }
    this.cluster = cluster
    const mode: PeerMode = this.ctx.mode ?? cluster.mode
    const value = (podCidr: string): LeaseValue => ({
      node: this.ctx.nodeName,
      nodeIp: this.ctx.nodeIp,
      podCidr,
      mode,
      vxlanPort: this.ctx.vxlanPort,
    })
    try {
      const g = await this.client.leaseClient.leaseGrant({ TTL: this.ttlSeconds, ID: 0 }, deadline(5000))
      this.leaseId = g.ID
      this.leaseExpiresAt = Date.now() + Number(g.TTL) * 1000
      for (let attempt = 0; !this.own; attempt++) {
        if (signal.aborted) throw new UserError('stopped while acquiring a subnet')
        if (attempt >= 100) throw new Error('could not acquire a subnet after 100 attempts (heavy contention)')
        const { leases } = await listSubnets(this.client, this.cfg.prefix)
        const cidr = this.pick(leases, network, subnetLen)
        const mine = leases.find((l) => l.value.node === this.ctx.nodeName && l.cidr === cidr)
        const rev = await this.claim(cidr, value(cidr), mine)
        if (rev) {
          this.own = { key: subnetKey(this.cfg.prefix, cidr), cidr, value: value(cidr) }
          this.leasedAt = new Date().toISOString()
          this.ctx.log.info('subnet lease taken', { podCidr: cidr, lease: this.leaseId, revision: rev, previousLease: mine?.lease ?? null })
          if (mine && mine.lease !== '0' && mine.lease !== this.leaseId) {
            // the previous run's lease now holds no key; let it go at once
            await this.client.leaseClient.leaseRevoke({ ID: mine.lease }, deadline(3000)).catch(() => {})
          }
        } else await sleep(Math.random() * 50)
      }
      await this.relist(false)
    } catch (e) {
      if (e instanceof UserError) throw e
      throw etcdUserError(e, this.cfg)
    }
    this.keeper = new LeaseKeepAlive(this.client, this.period, Math.max(2000, this.ttlSeconds * 333), {
      leaseId: () => this.leaseId,
      onAnswer: (ttl) => this.onKeepalive(ttl),
      onFailure: (e) => this.onKeepaliveFailure(e),
    })
    this.keeper.start()
    return { name: this.ctx.nodeName, nodeIp: this.ctx.nodeIp, podCidr: this.own!.cidr, mode, clusterCidr: cidrString(network) }
  }

  /** This node's current subnet, else its previous one if free, else a random free one. */
  private pick(leases: SubnetLease[], network: ReturnType<typeof validateClusterConfig>['network'], subnetLen: number): string {
    const inNet = (c: string) => c.endsWith(`/${subnetLen}`) && cidrContains(network, c.split('/')[0]!)
    const mine = leases.find((l) => l.value.node === this.ctx.nodeName && inNet(l.cidr))
    if (mine) return mine.cidr
    const taken = new Set(leases.map((l) => l.cidr))
    const prev = this.ctx.previousPodCidr
    if (prev && inNet(prev) && !taken.has(prev)) return prev
    const n = subnetCount(network, subnetLen)
    if (taken.size >= n) {
      throw new UserError(
        `no free /${subnetLen} subnet left in the cluster network ${cidrString(network)} (${n} leased)`,
        "remove dead nodes' leases or re-init a larger network",
      )
    }
    // random probing keeps 20 nodes starting at once from all racing for the first subnet
    for (;;) {
      const c = nthSubnet(network, subnetLen, Math.floor(Math.random() * n))
      if (!taken.has(c)) return c
    }
  }

  /** One transaction: take the key if absent, or re-bind our own (unchanged since we read it) to the new lease. */
  private async claim(cidr: string, value: LeaseValue, mine?: SubnetLease): Promise<string | null> {
    const key = Buffer.from(subnetKey(this.cfg.prefix, cidr))
    const compare = mine
      ? [{ key, target: 'Mod' as const, result: 'Equal' as const, mod_revision: mine.modRevision }]
      : [{ key, target: 'Create' as const, result: 'Equal' as const, create_revision: 0 }]
    const r = await this.client.kv.txn(
      { compare, success: [{ request_put: { key, value: Buffer.from(JSON.stringify(value)), lease: this.leaseId } }], failure: [] },
      deadline(5000),
    )
    return r.succeeded ? r.header.revision : null
  }

  watch(onChange: () => void, signal: AbortSignal): void {
    this.onChange = onChange
    this.startWatcher()
    signal.addEventListener('abort', () => void this.stop(), { once: true })
  }

  private startWatcher(): void {
    if (this.stopped) return
    const from = (BigInt(this.revision) + 1n).toString()
    this.client
      .watch()
      .prefix(subnetsPrefix(this.cfg.prefix))
      .startRevision(from)
      .create()
      .then((w) => {
        if (this.stopped) return void w.cancel().catch(() => {})
        this.watcher = w
        this.watchProblem = null
        this.resumeFromApplied(w)
        w.on('put', (kv: IKeyValue) => this.onPut(kv))
        w.on('delete', (kv: IKeyValue) => this.onDelete(kv))
        // after etcd3's own listeners (they ran first): see resumeFromApplied
        w.on('data', (res: IWatchResponse) => {
          // a progress notification (no events) is only sent once everything up to its revision was
          if (!res.events.length && BigInt(res.header.revision) > BigInt(this.revision)) this.revision = res.header.revision
          this.resumeFromApplied(w)
        })
        w.on('disconnected', (e: Error) => {
          this.watchProblem = `watch disconnected (reconnecting): ${msg(e)}`
          this.ctx.events.error()
        })
        w.on('connected', () => {
          this.watchProblem = null
          this.resumeFromApplied(w)
        })
        w.on('error', (e: Error) => {
          // etcd cancelled the watch (e.g. its start revision was compacted): start over from a
          // fresh list. The client has already dropped this watcher; cancelling it again would
          // make etcd answer for a watch id the client no longer knows, which etcd3 throws on.
          this.ctx.log.warn('watch cancelled; relisting', { error: msg(e), fromRevision: from })
          if (this.watcher === w) this.watcher = null
          void this.relistLoop()
        })
      })
      .catch((e: unknown) => {
        this.watchProblem = `cannot watch: ${msg(e)}`
        this.ctx.events.error()
        void this.relistLoop()
      })
  }

  /**
   * etcd3 resumes a watch after a reconnect from the revision it last saw in
   * any response header, and the answer to a watch creation carries etcd's
   * newest revision although the history asked for (from our start revision
   * on) is still to come: a connection lost in between would skip that
   * history for good. So the watcher resumes from what this store has
   * applied (events, and progress notifications), as etcd's Go client does.
   */
  private resumeFromApplied(w: Watcher): void {
    w.request.start_revision = (BigInt(this.revision) + 1n).toString()
  }

  private onPut(kv: IKeyValue): void {
    if (this.stopped) return
    const s = parseSubnet(this.cfg.prefix, kv)
    if (!s) {
      this.ctx.events.error()
      this.ctx.log.warn('ignoring a malformed subnet lease', { key: kv.key.toString() })
      return
    }
    this.revision = kv.mod_revision
    if (s.key === this.own?.key && s.value.node !== this.ctx.nodeName)
      this.ownProblem = `our subnet ${s.cidr} is now leased by ${s.value.node}`
    this.cache.set(s.key, s)
    this.onChange()
  }

  private onDelete(kv: IKeyValue): void {
    if (this.stopped) return
    const key = kv.key.toString()
    this.revision = kv.mod_revision
    this.cache.delete(key)
    if (key === this.own?.key) {
      this.ctx.log.warn('our subnet key was deleted', { revision: kv.mod_revision, lease: this.leaseId })
      // our lease expired (etcd was out of reach longer than the TTL): register again
      this.ctx.log.warn('our subnet lease was deleted; re-registering', { podCidr: this.own.cidr })
      void this.renewLease()
    }
    this.onChange()
  }

  /** Full list: the cache becomes exactly etcd's subnets at one revision. */
  private async relist(watchAfter: boolean): Promise<void> {
    const { revision, leases, bad } = await listSubnets(this.client, this.cfg.prefix)
    if (bad) this.ctx.log.warn('ignoring malformed subnet leases', { count: bad })
    this.cache.clear()
    for (const l of leases) this.cache.set(l.key, l)
    this.revision = revision
    if (watchAfter) {
      this.ctx.events.watchRestart()
      // one watcher at a time: the old one (if etcd did not cancel it) would deliver everything twice
      const old = this.watcher
      this.watcher = null
      await old?.cancel().catch(() => {})
      this.startWatcher()
      this.onChange()
    }
  }

  private async relistLoop(): Promise<void> {
    if (this.relisting || this.stopped) return
    this.relisting = true
    try {
      for (let delay = 250; !this.stopped; delay = Math.min(delay * 2, 5000)) {
        try {
          await this.relist(true)
          return
        } catch (e) {
          this.watchProblem = `relist failed (retrying): ${msg(e)}`
          this.ctx.events.error()
          await sleep(delay)
        }
      }
    } finally {
      this.relisting = false
    }
  }

  private onKeepalive(ttl: number): void {
    if (ttl <= 0) {
      // the lease expired meanwhile (etcd was out of reach longer than the TTL)
      void this.renewLease()
    } else this.leaseExpiresAt = Date.now() + ttl * 1000
    if (this.keepaliveProblem !== null) this.ctx.log.info('etcd reachable again')
    this.keepaliveProblem = null
  }

  private onKeepaliveFailure(e: Error): void {
    if (this.stopped) return
    if (!this.keepaliveProblem) this.ctx.log.warn('etcd unreachable or without quorum; datapath left as it is', { error: msg(e) })
    this.keepaliveProblem = `etcd unreachable or without quorum: ${msg(e)}`
    this.ctx.events.error()
  }

  /** A new lease, and our subnet bound to it again (if nobody took it meanwhile). */
  private async renewLease(): Promise<void> {
    if (!this.own || this.stopped || this.renewing) return
    this.renewing = true
    try {
      await this.renewLeaseOnce()
    } catch (e) {
      this.ctx.events.error()
      this.ctx.log.warn('re-registering our subnet failed; retrying on the next keepalive', { error: msg(e) })
    } finally {
      this.renewing = false
    }
  }

  private async renewLeaseOnce(): Promise<void> {
    if (!this.own) return
    const g = await this.client.leaseClient.leaseGrant({ TTL: this.ttlSeconds, ID: 0 }, deadline(5000))
    this.leaseId = g.ID
    this.leaseExpiresAt = Date.now() + Number(g.TTL) * 1000
    const { leases } = await listSubnets(this.client, this.cfg.prefix)
    const cur = leases.find((l) => l.key === this.own!.key)
    if (cur && cur.value.node !== this.ctx.nodeName) {
      this.ownProblem = `our subnet ${this.own.cidr} is now leased by ${cur.value.node}; restart the agent to get another one`
      this.ctx.log.error(this.ownProblem)
      return
    }
    if (await this.claim(this.own.cidr, this.own.value, cur)) {
      this.ownProblem = null
      this.ctx.log.info('subnet lease registered again', { podCidr: this.own.cidr, lease: this.leaseId })
    }
  }

  peers(): PeerNode[] {
    const out: PeerNode[] = []
    for (const l of this.cache.values()) {
      if (l.value.node === this.ctx.nodeName) continue
      out.push({ name: l.value.node, nodeIp: l.value.nodeIp, podCidr: l.cidr, ...(l.value.mode ? { mode: l.value.mode } : {}) })
    }
    return out
  }

  status(): DatastoreStatus {
    const reason = this.ownProblem ?? this.keepaliveProblem ?? this.watchProblem
    return {
      ready: this.own !== null && reason === null,
      ...(reason ? { reason } : {}),
      detail: {
        endpoints: this.cfg.endpoints,
        prefix: this.cfg.prefix,
        network: this.cluster?.network ?? null,
        subnetKey: this.own?.key ?? null,
        leasedAt: this.leasedAt,
        lease: this.leaseId === '0' ? null : BigInt(this.leaseId).toString(16),
        leaseExpiresAt: this.leaseExpiresAt ? new Date(this.leaseExpiresAt).toISOString() : null,
        keepaliveStreams: this.keeper?.streams ?? 0,
        revision: this.revision,
      },
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.keeper?.stop()
    await this.watcher?.cancel().catch(() => {})
    this.client.close()
  }
}
