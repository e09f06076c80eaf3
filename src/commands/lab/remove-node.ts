import * as Args from '@oclif/core/args'
import { LabCommand, labNameFlag } from '../../cli/lab.js'
import { DEFAULT_LAB } from '../../services/lab/plan.js'
import { labRemoveNode, type MembershipResult } from '../../services/lab/membership.js'

export default class LabRemoveNode extends LabCommand {
  static override summary =
    'Remove a node from a lab on etcd: stop its agent, delete its lease (with --routing bgp: drop its router session first); prints how long each peer took to drop its route'
  static override examples = ['<%= config.bin %> lab remove-node node3']
  static override enableJsonFlag = true
  static override args = { node: Args.string({ description: 'node name', required: true }) }
  static override flags = { name: labNameFlag(DEFAULT_LAB) }

  async run(): Promise<MembershipResult> {
    const { args, flags } = await this.parse(LabRemoveNode)
    const r = await labRemoveNode({ name: flags.name, node: args.node, onProgress: this.jsonEnabled() ? undefined : (l) => this.log(l) })
    this.log(`${r.node} left (${r.podCidr}); ${r.from} → route gone on each peer:`)
    for (const [peer, ms] of Object.entries(r.peers)) this.log(`  ${peer.padEnd(8)} ${ms === null ? 'NOT within 60 s' : `${ms} ms`}`)
    return r
  }
}
