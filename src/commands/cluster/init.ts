import * as Flags from '@oclif/core/flags'
import { BaseCommand } from '../../cli/base.js'
import { etcdFlags } from '../../cli/etcd.js'
import { clusterInit, etcdConnection, type ClusterConfig } from '../../services/etcd.js'
import type { Mode } from '../../services/config.js'

export default class ClusterInit extends BaseCommand {
  static override summary = 'Write the cluster network config into etcd (agents allocate their pod CIDRs from it)'
  static override description =
    'Idempotent. Refuses to change the network or subnet length while nodes hold leases in it; the mode may change at any time (agents started without --mode use it).'
  static override examples = [
    '<%= config.bin %> cluster init --etcd-endpoints http://192.168.77.201:2379 --network 10.244.0.0/16 --subnet-len 24',
  ]
  static override enableJsonFlag = true
  static override flags = {
    ...etcdFlags,
    network: Flags.string({ description: 'pod network all nodes allocate from', required: true, helpValue: 'CIDR' }),
    'subnet-len': Flags.integer({ description: "prefix length of each node's pod CIDR", default: 24, helpValue: 'N' }),
    mode: Flags.string({ description: 'default datapath mode of the agents', options: ['direct', 'vxlan', 'auto'], default: 'auto' }),
  }

  async run(): Promise<{ action: string; config: ClusterConfig }> {
    const { flags } = await this.parse(ClusterInit)
    const r = await clusterInit({
      ...etcdConnection({
        endpoints: flags['etcd-endpoints'],
        prefix: flags['etcd-prefix'],
        ca: flags['etcd-ca'],
        cert: flags['etcd-cert'],
        key: flags['etcd-key'],
      }),
      network: flags.network,
      subnetLen: flags['subnet-len'],
      mode: flags.mode as Mode,
    })
    this.log(`cluster config ${r.action}: network ${r.config.network}, /${r.config.subnetLen} per node, mode ${r.config.mode}`)
    return r
  }
}
