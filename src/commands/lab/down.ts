import * as Flags from '@oclif/core/flags'
import { LabCommand, labNameFlag } from '../../cli/lab.js'
import { DEFAULT_LAB } from '../../services/lab/plan.js'
import { findLabs, labDown, type DownResult } from '../../services/lab/lab.js'

export default class LabDown extends LabCommand {
  static override summary = 'Remove a lab: detach every node, delete its namespaces, pins and state (idempotent)'
  static override description =
    "Finds what to remove from the lab's state file and by name prefix (pnlab-LAB-…), so it also cleans up a lab whose `lab up` crashed. Running it again, or for a lab that does not exist, succeeds and says so."
  static override examples = ['<%= config.bin %> lab down', '<%= config.bin %> lab down --name lab2', '<%= config.bin %> lab down --all']
  static override enableJsonFlag = true
  static override flags = {
    name: labNameFlag(DEFAULT_LAB),
    all: Flags.boolean({ description: 'remove every lab on this host', default: false }),
  }

  async run(): Promise<{ labs: DownResult[] }> {
    const { flags } = await this.parse(LabDown)
    const names = flags.all ? findLabs() : [flags.name]
    const labs: DownResult[] = []
    for (const name of names) {
      const r = await labDown({ name, onProgress: this.jsonEnabled() ? undefined : (l) => this.log(l) })
      labs.push(r)
      if (!r.existed) this.log(`no lab named "${name}": nothing to remove`)
      else
        this.log(
          `removed lab "${name}": ${r.detached.length} nodes detached, ${r.namespaces.length} namespaces, ${r.pinDirs.length} pin dirs`,
        )
      for (const w of r.warnings) this.warn(w)
    }
    if (flags.all && names.length === 0) this.log('no labs to remove')
    return { labs }
  }
}
