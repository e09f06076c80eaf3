import * as Flags from '@oclif/core/flags'
import { LabCommand } from '../../cli/lab.js'
import { renderLabStatus } from '../../render/lab.js'
import { findLabs, labStatus, type LabStatus as LabHealth } from '../../services/lab/lab.js'

export default class LabStatus extends LabCommand {
  static override summary = 'Show the labs on this host: nodes, pods, IPs, paths and health'
  static override description =
    'Without --name, shows every lab found (by state file or by leftover namespaces and pins). Health is ready, creating, crashed (its `lab up` died: run `lab down`), degraded (namespaces missing) or leftovers.'
  static override examples = ['<%= config.bin %> lab status', '<%= config.bin %> lab status --name demo --json']
  static override enableJsonFlag = true
  static override flags = {
    name: Flags.string({ description: 'lab name [default: every lab]', env: 'PODNET_LAB', helpValue: 'LAB' }),
  }

  async run(): Promise<{ labs: LabHealth[] }> {
    const { flags } = await this.parse(LabStatus)
    const names = flags.name ? [flags.name] : findLabs()
    const labs = names.map((n) => labStatus(n)).filter((s): s is LabHealth => s !== null)
    if (labs.length === 0) this.log(flags.name ? `no lab named "${flags.name}"` : 'no labs (start one with `podnet-bpf lab up`)')
    for (const s of labs) this.log(renderLabStatus(s, this.config.bin))
    return { labs }
  }
}
