import { LabCommand } from '../../cli/lab.js'
import { onInterrupt } from '../../cli/signals.js'
import { labUpFlags } from '../../flags/lab.js'
import { renderLabUp } from '../../render/lab.js'
import { labDown, labStatus, labUp, type UpResult } from '../../services/lab/lab.js'
import type { LabDatastore } from '../../services/lab/plan.js'

export default class LabUp extends LabCommand {
  static override summary =
    'Bring up a multi-node lab: nodes and pods in network namespaces, a 3-member etcd and a podnet-bpf agent on each node'
  static override description =
    'Nodes are network namespaces on an underlay bridge (eth0 on each node). With --mode auto (the default) and 2+ nodes, one node in three sits in a second subnet behind a router namespace, so auto picks VXLAN for it and direct routing for the rest. Each node gets its own pin dir (/sys/fs/bpf/pnlab-LAB-NODE) and pod CIDR (10.244.N.0/24); pods follow the pod contract and are registered as endpoints; every node routes to every peer. Everything is named pnlab-LAB-…; `lab down` removes it.'
  static override examples = [
    '<%= config.bin %> lab up',
    '<%= config.bin %> lab up --nodes 4 --pods-per-node 3 --mode vxlan --name lab2',
    '<%= config.bin %> lab up --mode direct --nodes 2',
    '<%= config.bin %> lab up --mode auto --routed-nodes 2 --nodes 5',
    '<%= config.bin %> lab up --mode direct --pod-device netkit',
    '<%= config.bin %> lab up --datastore static   # no etcd, no agents: routes typed in by the lab',
    '<%= config.bin %> lab up --routing bgp        # the router runs BIRD as top-of-rack router; node3 reached directly through it',
  ]
  static override enableJsonFlag = true
  static override flags = labUpFlags

  async run(): Promise<UpResult> {
    const { flags } = await this.parse(LabUp)
    const json = this.jsonEnabled()
    // Ctrl-C while building: take the half-built lab down again
    const onSignal = (sig: NodeJS.Signals) => {
      process.stderr.write(`\n${sig}: removing the partial lab ${flags.name}\n`)
      void labDown({ name: flags.name }).finally(() => process.exit(130))
    }
    const r = await onInterrupt(onSignal, () =>
      labUp({
        name: flags.name,
        nodes: flags.nodes,
        podsPerNode: flags['pods-per-node'],
        mode: flags.mode,
        routedNodes: flags['routed-nodes'],
        podDevice: flags['pod-device'],
        datastore: flags.datastore as LabDatastore,
        routing: flags.routing,
        onProgress: json ? undefined : (l) => this.log(l),
      }),
    )
    if (!json) this.log(renderLabUp(r, labStatus(r.lab.name), this.config.bin))
    return r
  }
}
