import * as Flags from '@oclif/core/flags'
import { BaseCommand } from '../cli/base.js'
import { Agent } from '../agent/agent.js'
import { flagsToConfig, loadAgentConfig, DATASTORES } from '../agent/config.js'
import { createLogger } from '../agent/log.js'

const s = (description: string, helpValue?: string) => Flags.string({ description, ...(helpValue ? { helpValue } : {}) })

export default class AgentCommand extends BaseCommand {
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
  static override flags = {
    datastore: Flags.string({ description: 'where peers come from', options: [...DATASTORES] }),
    config: s('YAML config file (flags override it)', 'FILE'),
    'node-name': s("this node's name [default: $NODE_NAME, else hostname]", 'NAME'),
    'node-ip': s('underlay IP [default: first IPv4 address of --device]', 'IP'),
    device: s('node NIC [default: eth0]', 'IFNAME'),
    mode: Flags.string({ description: 'datapath mode [default: auto]', options: ['direct', 'vxlan', 'auto'] }),
    'pod-cidr': s("this node's pod CIDR (file datastore)", 'CIDR'),
    kubeconfig: s('kubeconfig file (kubernetes datastore) [default: in-cluster service account]', 'FILE'),
    'peers-file': s('watched YAML list of peers {name, nodeIp, podCidr, mode?} (file datastore)', 'FILE'),
    'etcd-endpoints': s('comma-separated etcd URLs [default: http://127.0.0.1:2379]', 'URL,…'),
    'etcd-prefix': s('key prefix [default: /podnet.io/network]', 'PREFIX'),
    'etcd-ca': s('CA bundle for etcd TLS', 'FILE'),
    'etcd-cert': s('client certificate for etcd', 'FILE'),
    'etcd-key': s('client key for etcd', 'FILE'),
    'lease-ttl': s('lease TTL, e.g. 30s [default: 30s]', 'DURATION'),
    'resync-interval': s('periodic full reconcile [default: 30s]', 'DURATION'),
    listen: s('address of /healthz /readyz /metrics [default: 127.0.0.1:9963]', 'ADDR:PORT'),
    'cni-conf-dir': s('where the CNI conflist is written once ready [default: /etc/cni/net.d]', 'DIR'),
    'log-format': Flags.string({ description: 'log lines [default: text]', options: ['text', 'json'] }),
    routing: Flags.string({
      description: 'peer routes from the datastore or from BGP [default: datastore]',
      options: ['datastore', 'bgp'],
    }),
    'cluster-cidr': s('network of every pod CIDR (BGP import filter; required with --routing bgp --datastore file)', 'CIDR'),
    'bgp-asn': Flags.integer({ description: "this node's AS number [default: 64512]", helpValue: 'N' }),
    'bgp-peer': Flags.string({ description: 'a BGP peer (router, route reflector); repeatable', helpValue: 'ADDRESS:ASN', multiple: true }),
    'bgp-mesh': Flags.boolean({ description: 'iBGP sessions with every other node [default: on]', allowNo: true }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(AgentCommand)
    const config = loadAgentConfig(flagsToConfig(flags), flags.config)
    const ac = new AbortController()
    const log = createLogger(config.logFormat)
    const stop = (sig: string) => (log.info(`${sig}: stopping`), ac.abort())
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.once('SIGINT', () => stop('SIGINT'))
    await new Agent({ config, log, signal: ac.signal }).run()
  }
}
