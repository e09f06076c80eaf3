// The flags of `lab up`: enum options and defaults from the services' schemas.
import * as Flags from '@oclif/core/flags'
import { enumFlag } from '../cli/base.js'
import { labNameFlag } from '../cli/lab.js'
import { ModeSchema, NodeDefaults } from '../services/config.js'
import { DEFAULT_LAB, LabRoutingSchema, PodDeviceSchema } from '../services/lab/plan.js'

export const labUpFlags = {
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
