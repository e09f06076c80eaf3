import { setFlagsFromString } from 'node:v8'
import { BaseCommand } from '../cli/base.js'
import { onInterrupt } from '../cli/signals.js'
import { Agent as NodeAgent } from '../agent/agent.js'
import { flagsToConfig, loadAgentConfig } from '../agent/config.js'
import { agentFlags } from '../flags/agent.js'
import { createLogger } from '../agent/log.js'

export default class Agent extends BaseCommand {
  static override summary = "Run the node agent: learn this node's pod CIDR and its peers from a datastore and keep the datapath converged"
  static override description =
    'Acquires the pod CIDR (etcd lease, spec.podCIDRs of the Kubernetes Node, or --pod-cidr with the file datastore), attaches the datapath, reconciles peer routes on every change and periodically, writes the CNI config once synced, and serves /healthz, /readyz and /metrics on --listen. SIGTERM leaves the datapath forwarding and the lease in place. Flags override --config (YAML, same keys in camelCase; etcd settings under `etcd:`).'
  static override examples = [
    '<%= config.bin %> agent --datastore etcd --etcd-endpoints http://10.0.0.10:2379 --device eth0',
    '<%= config.bin %> agent --datastore file --pod-cidr 10.244.1.0/24 --peers-file /etc/podnet/peers.yaml',
    '<%= config.bin %> agent --datastore kubernetes --kubeconfig /etc/kubernetes/kubelet.conf --node-name node1',
    '<%= config.bin %> agent --config /etc/podnet/agent.yaml --log-format json',
    '<%= config.bin %> agent --datastore file --pod-cidr 10.244.1.0/24 --cluster-cidr 10.244.0.0/16 --routing bgp --bgp-peer 192.168.1.1:65000 --no-bgp-mesh',
  ]
  static override flags = agentFlags

  async run(): Promise<void> {
    // a daemon that keeps ~1,000 peers: V8's memory-saving heuristics (smaller heap growth steps) keep RSS under the 100 MB target
    setFlagsFromString('--optimize-for-size')
    const { flags } = await this.parse(Agent)
    const config = loadAgentConfig(flagsToConfig(flags), flags.config)
    const ac = new AbortController()
    const log = createLogger(config.logFormat)
    const stop = (sig: string) => (log.info(`${sig}: stopping`), ac.abort())
    await onInterrupt(stop, () => new NodeAgent({ config, log, signal: ac.signal }).run())
  }
}
