import * as Flags from '@oclif/core/flags'
import { BaseCommand } from '../../cli/base.js'
import { installCni, type InstallResult } from '../../services/cni-install.js'

export default class CniInstall extends BaseCommand {
  static override summary =
    'Install the CNI plugin for a container runtime: <bin-dir>/podnet and <conf-dir>/10-podnet.conflist (portmap chained)'
  static override examples = [
    '<%= config.bin %> cni install',
    '<%= config.bin %> cni install --bin-dir /usr/lib/cni --conf-dir /etc/cni/net.d --pin-dir /sys/fs/bpf/podnet',
  ]
  static override enableJsonFlag = true
  static override flags = {
    'bin-dir': Flags.string({ description: "the runtime's CNI plugin directory", default: '/opt/cni/bin', helpValue: 'DIR' }),
    'conf-dir': Flags.string({ description: "the runtime's CNI config directory", default: '/etc/cni/net.d', helpValue: 'DIR' }),
    network: Flags.string({ description: 'network name in the conflist', default: 'podnet', helpValue: 'NAME' }),
    'ipam-data-dir': Flags.string({ description: "host-local's allocation directory [default: /var/lib/cni/networks]", helpValue: 'DIR' }),
    'log-file': Flags.string({ description: 'plugin log file [default: /var/log/podnet-bpf/cni.log]', helpValue: 'FILE' }),
  }

  async run(): Promise<InstallResult> {
    const { flags } = await this.parse(CniInstall)
    const r = installCni({
      binDir: flags['bin-dir'],
      confDir: flags['conf-dir'],
      pinDir: flags['pin-dir'],
      network: flags.network,
      ipamDataDir: flags['ipam-data-dir'],
      logFile: flags['log-file'],
    })
    this.log(`installed ${r.launcher} and ${r.conflist}${r.linked.length ? `; linked ${r.linked.join(', ')} from /usr/lib/cni` : ''}`)
    return r
  }
}
