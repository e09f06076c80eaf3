import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import { LabCommand, labNameFlag } from '../../cli/lab.js'
import { DEFAULT_LAB } from '../../services/lab/plan.js'
import { labLogs } from '../../services/lab/cluster.js'

export default class LabLogs extends LabCommand {
  static override summary = "Show a lab node's agent log (or an etcd member's: etcd1, etcd2, etcd3; or the BGP router's: router)"
  static override examples = ['<%= config.bin %> lab logs node1', '<%= config.bin %> lab logs etcd2 --tail 20']
  static override args = { node: Args.string({ description: 'node name, etcdN or router', required: true }) }
  static override flags = {
    name: labNameFlag(DEFAULT_LAB),
    tail: Flags.integer({ description: 'only the last N lines', min: 1, helpValue: 'N' }),
  }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(LabLogs)
    const lines = labLogs(flags.name, args.node).split('\n')
    if (lines.at(-1) === '') lines.pop()
    process.stdout.write(`${(flags.tail ? lines.slice(-flags.tail) : lines).join('\n')}\n`)
  }
}
