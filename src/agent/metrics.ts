// The agent's own Prometheus series, next to the datapath counters
// (services/inspect/metrics) on one /metrics endpoint.
import { Counter, Gauge, Histogram, Registry } from 'prom-client'

export class AgentMetrics {
  readonly registry = new Registry()
  readonly ready = new Gauge({ name: 'podnet_agent_ready', help: '1 when the agent is ready (/readyz 200)', registers: [this.registry] })
  readonly peers = new Gauge({ name: 'podnet_agent_peers', help: 'Peers the datastore currently lists', registers: [this.registry] })
  readonly routes = new Gauge({
    name: 'podnet_agent_routes',
    help: 'Routes installed by the last reconcile, by origin',
    labelNames: ['origin'] as const,
    registers: [this.registry],
  })
  readonly rejected = new Gauge({
    name: 'podnet_agent_routes_rejected',
    help: 'Desired routes left out by the last reconcile (overlap, own CIDR, impossible encapsulation)',
    registers: [this.registry],
  })
  readonly reconcileSeconds = new Histogram({
    name: 'podnet_agent_reconcile_duration_seconds',
    help: 'Duration of one reconcile (desired vs actual, diff applied)',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  })
  readonly reconciles = new Counter({
    name: 'podnet_agent_reconciles_total',
    help: 'Reconcile runs by result',
    labelNames: ['result'] as const,
    registers: [this.registry],
  })
  readonly watchRestarts = new Counter({
    name: 'podnet_agent_watch_restarts_total',
    help: 'Datastore watches re-established (reconnect, or relist after compaction)',
    registers: [this.registry],
  })
  readonly datastoreErrors = new Counter({
    name: 'podnet_agent_datastore_errors_total',
    help: 'Failed datastore operations (unreachable, no quorum, rejected data)',
    registers: [this.registry],
  })
  readonly leaseExpiry = new Gauge({
    name: 'podnet_agent_lease_expiry_timestamp_seconds',
    help: "Unix time this node's lease expires unless renewed (0: the datastore has no lease)",
    registers: [this.registry],
  })
}
