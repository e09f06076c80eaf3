import { BaseCommand } from '../cli/base.js'
import { detach, type DetachResult } from '../services/node.js'

export default class Detach extends BaseCommand {
  static override summary = 'Remove everything podnet-bpf created on this node'
  static override description =
    'Detaches the programs, deletes the VXLAN device and kernel routes it added, restores the sysctls it changed and removes its pins. With nothing attached it says so and exits 0.'
  static override examples = ['<%= config.bin %> detach', '<%= config.bin %> detach --pin-dir /sys/fs/bpf/node1']
  static override enableJsonFlag = true

  async run(): Promise<DetachResult> {
    const { flags } = await this.parse(Detach)
    const r = detach(flags['pin-dir'])
    if (!r.wasAttached) this.log(`nothing attached for pin dir ${r.pinDir}`)
    else this.log(`detached (${r.pinDir}): removed ${r.removed.length} items`)
    return r
  }
}
