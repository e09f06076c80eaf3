import { BaseCommand, table } from '../../cli/base.js'
import { etcdFlags } from '../../cli/etcd.js'
import { clusterNodes, etcdConnection, type ClusterConfig, type NodeLease } from '../../services/etcd.js'

export default class ClusterNodes extends BaseCommand {
  static override summary = 'List the nodes holding subnet leases in etcd (node, node IP, pod CIDR, mode, expiry)'
  static override examples = [
    '<%= config.bin %> cluster nodes --etcd-endpoints http://192.168.77.201:2379',
    '<%= config.bin %> cluster nodes --json',
  ]
  static override enableJsonFlag = true
  static override flags = { ...etcdFlags }

  async run(): Promise<{ config: ClusterConfig | null; nodes: NodeLease[] }> {
    const { flags } = await this.parse(ClusterNodes)
    const r = await clusterNodes(
      etcdConnection({
        endpoints: flags['etcd-endpoints'],
        prefix: flags['etcd-prefix'],
        ca: flags['etcd-ca'],
        cert: flags['etcd-cert'],
        key: flags['etcd-key'],
      }),
    )
    this.log(
      r.config
        ? `network ${r.config.network}, /${r.config.subnetLen} per node, mode ${r.config.mode}`
        : 'no cluster config (run cluster init)',
    )
    this.log(
      table(
        ['NODE', 'NODE IP', 'POD CIDR', 'MODE', 'EXPIRES'],
        r.nodes.map((n) => [n.node, n.nodeIp, n.podCidr, n.mode, n.ttl === null ? 'expired' : `in ${n.ttl}s (${n.expiresAt})`]),
      ),
    )
    return r
  }
}
