import * as Flags from '@oclif/core/flags'
import { BaseCommand } from '../../cli/base.js'
import { uninstallCni, type UninstallResult } from '../../services/cni-install.js'

export default class CniUninstall extends BaseCommand {
  static override summary = 'Remove what `cni install` wrote (the launcher, the links it made, the conflist); other files stay'
  static override examples = ['<%= config.bin %> cni uninstall', '<%= config.bin %> cni uninstall --bin-dir /usr/lib/cni']
  static override enableJsonFlag = true
  static override flags = {
    'bin-dir': Flags.string({ description: "the runtime's CNI plugin directory", default: '/opt/cni/bin', helpValue: 'DIR' }),
    'conf-dir': Flags.string({ description: "the runtime's CNI config directory", default: '/etc/cni/net.d', helpValue: 'DIR' }),
  }

  async run(): Promise<UninstallResult> {
    const { flags } = await this.parse(CniUninstall)
    const r = uninstallCni({ binDir: flags['bin-dir'], confDir: flags['conf-dir'] })
    this.log(r.removed.length ? `removed ${r.removed.join(', ')}` : 'nothing to remove')
    for (const k of r.kept) this.log(`kept ${k} (not written by cni install)`)
    return r
  }
}
