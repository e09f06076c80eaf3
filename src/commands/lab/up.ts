import * as Flags from '@oclif/core/flags'
import { LabCommand, labNameFlag } from '../../cli/lab.js'
import { enumFlag } from '../../cli/base.js'
import { labDown, labStatus, labUp, type UpResult } from '../../services/lab/lab.js'
import { DEFAULT_LAB, LabRoutingSchema, PodDeviceSchema, type LabDatastore } from '../../services/lab/plan.js'
import { ModeSchema, NodeDefaults } from '../../services/config.js'
import { renderLab } from './status.js'

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
  static override flags = {
    name: labNameFlag(DEFAULT_LAB),
    nodes: Flags.integer({ description: 'number of nodes', default: 3, helpValue: 'N' }),
    'pods-per-node': Flags.integer({ description: 'pods on each node', default: 2, helpValue: 'M' }),
    mode: enumFlag(ModeSchema, { description: 'podnet-bpf mode on every node', default: NodeDefaults.mode }),
    'pod-device': enumFlag(PodDeviceSchema, {
      description: "pod device pairs: veth, or netkit (Linux >= 6.7 with CONFIG_NETKIT; from-pod runs in the pod's own transmit)",
      default: 'veth',
    }),
    datastore: Flags.string({
      description:
        'etcd: a 3-member etcd cluster and an agent per node that leases its pod CIDR and learns its peers; static: the lab assigns CIDRs and types in every route',
      options: ['etcd', 'static'],
      default: 'etcd',
    }),
    routing: enumFlag(LabRoutingSchema, {
      description:
        "peer routes from etcd (datastore), or from BGP: the router namespace runs BIRD as top-of-rack router, eBGP with every node's agent, and forwards pod traffic between the subnets without encapsulation",
      default: 'datastore',
    }),
    'routed-nodes': Flags.integer({
      description: 'nodes in the second subnet, behind the router [default: auto mode or BGP: max(1, nodes/3); otherwise 0]',
      helpValue: 'K',
    }),
  }

  async run(): Promise<UpResult> {
    const { flags } = await this.parse(LabUp)
    const json = this.jsonEnabled()
    // Ctrl-C while building: take the half-built lab down again
    const onSignal = (sig: NodeJS.Signals) => {
      process.stderr.write(`\n${sig}: removing the partial lab ${flags.name}\n`)
      void labDown({ name: flags.name }).finally(() => process.exit(130))
    }
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
    try {
      const r = await labUp({
        name: flags.name,
        nodes: flags.nodes,
        podsPerNode: flags['pods-per-node'],
        mode: flags.mode,
        routedNodes: flags['routed-nodes'],
        podDevice: flags['pod-device'],
        datastore: flags.datastore as LabDatastore,
        routing: flags.routing,
        onProgress: json ? undefined : (l) => this.log(l),
      })
      if (!json) {
        this.log('')
        const st = labStatus(r.lab.name)
        this.log(renderLab({ ...r.lab, agents: st?.agents, router: st?.router }))
        this.log('')
        this.log(
          `up in ${r.seconds.toFixed(1)}s. Try: ${this.config.bin} lab ping node1-pod1 ${r.lab.nodes.at(-1)!.pods[0]?.name ?? r.lab.nodes.at(-1)!.name}${r.lab.name === DEFAULT_LAB ? '' : ` --name ${r.lab.name}`}`,
        )
      }
      return r
    } finally {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    }
  }
}
