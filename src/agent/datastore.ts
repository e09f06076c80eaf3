import type { Logger } from './log.js'

// The contract between the agent and where it learns the cluster from (etcd
// leases, a peers file, Kubernetes Node objects, …). A datastore knows two
// things: this node's own pod CIDR / node IP, and the current set of peers.
// It is level-triggered: it only says "something may have changed"; the
// reconciler re-reads peers() and converges, so a missed or duplicated
// notification can never leave the datapath wrong, only late until the next
// periodic resync.

export type { Logger }

export type PeerMode = 'direct' | 'vxlan' | 'auto'

export interface PeerNode {
  name: string
  nodeIp: string
  podCidr: string
  /** the peer's own datapath mode; 'vxlan' makes this node encapsulate to it */
  mode?: PeerMode
  vxlanPort?: number
  /** ISO time its registration expires (etcd lease), when the store has one */
  expiresAt?: string
}

export interface OwnNode {
  name: string
  nodeIp: string
  podCidr: string
  /** the datapath mode the store says this node runs (e.g. the cluster
   * config's default); --mode overrides it */
  mode?: PeerMode
  /** the network every pod CIDR is allocated from, when the store knows it (BGP import filter) */
  clusterCidr?: string
}

export interface DatastoreStatus {
  ready: boolean
  /** why not ready (or a note while ready), one line for /readyz and logs */
  reason?: string
  /** store-specific facts for `status` (lease id, revision, …); a
   * `leaseExpiresAt` ISO time feeds podnet_agent_lease_expiry_timestamp_seconds */
  detail?: Record<string, unknown>
}

export interface Datastore {
  readonly kind: string
  /** Learns or acquires this node's pod CIDR and node IP. May wait (e.g. a
   * Kubernetes podCIDR not assigned yet), reporting why through status();
   * rejects with a UserError when it can never succeed. */
  start(signal: AbortSignal): Promise<OwnNode>
  /** Calls onChange whenever the peer set may have changed (coalesced by the
   * caller); stops when `signal` aborts. */
  watch(onChange: () => void, signal: AbortSignal): void
  /** Current desired peers, excluding this node. */
  peers(): PeerNode[]
  status(): DatastoreStatus
  /** Called once after attach and the first sync (Kubernetes: NetworkUnavailable=False). */
  markReady?(): Promise<void>
  /** Stops watching. Keeps the lease / registration and the datapath. */
  stop(): Promise<void>
}

/** What the agent hands a datastore when it creates it. */
export interface DatastoreContext {
  nodeName: string
  /** from --node-ip, or the device's first IPv4 address */
  nodeIp: string
  /** --mode, when given (otherwise the store may say, else auto) */
  mode?: PeerMode
  vxlanPort: number
  /** the pod CIDR this node had before (attach state), preferred on restart */
  previousPodCidr?: string
  /** lease TTL (ms), for stores with leases */
  leaseTtlMs: number
  log: Logger
  /** counted in the agent's metrics */
  events: { watchRestart(): void; error(): void }
}
