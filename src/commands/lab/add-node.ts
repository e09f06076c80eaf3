import * as Flags from '@oclif/core/flags'
import { LabCommand, labNameFlag } from '../../cli/lab.js'
import { DEFAULT_LAB } from '../../services/lab/plan.js'
import { labAddNode, type MembershipResult } from '../../services/lab/membership.js'

export default class LabAddNode extends LabCommand {
  static override summary =
    'Add a node to a lab on etcd: its agent leases a pod CIDR (with --routing bgp: and peers with the router); prints how long each peer took to route to it'
  static override examples = ['<%= config.bin %> lab add-node', '<%= config.bin %> lab add-node --pods 3 --name lab2']
  static override enableJsonFlag = true
  static override flags = {
    name: labNameFlag(DEFAULT_LAB),
    pods: Flags.integer({ description: 'pods on the new node', default: 2, min: 0, max: 50, helpValue: 'M' }),
  }

  async run(): Promise<MembershipResult> {
    const { flags } = await this.parse(LabAddNode)
    const r = await labAddNode({ name: flags.name, pods: flags.pods, onProgress: this.jsonEnabled() ? undefined : (l) => this.log(l) })
    this.log(`${r.node} joined with ${r.podCidr}: agent start → lease ${r.leaseMs} ms; ${r.from} → route on each peer:`)
    for (const [peer, ms] of Object.entries(r.peers)) this.log(`  ${peer.padEnd(8)} ${ms === null ? 'NOT within 60 s' : `${ms} ms`}`)
    return r
  }
}
