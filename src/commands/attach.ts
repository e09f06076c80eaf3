import { BaseCommand } from '../cli/base.js'
import { attachFlags } from '../flags/attach.js'
import { renderAttach } from '../render/attach.js'
import { attach, type AttachResult } from '../services/index.js'

export default class Attach extends BaseCommand {
  static override summary = 'Attach the podnet-bpf datapath on this node'
  static override description =
    "Mounts bpffs if needed, checks the kernel, creates the VXLAN device when the mode needs it, loads the prebuilt programs with this node's configuration and attaches them. Running it again with the same arguments changes nothing; new arguments or a new build replace the programs atomically and keep the maps."
  static override examples = [
    '<%= config.bin %> attach --node-ip 192.168.77.1 --pod-cidr 10.244.1.0/24 --device eth0',
    '<%= config.bin %> attach --node-ip 192.168.77.1 --pod-cidr 10.244.1.0/24 --device eth0 --mode vxlan --vni 1',
    '<%= config.bin %> attach --config /etc/podnet/node.json --pin-dir /sys/fs/bpf/node1',
  ]
  static override enableJsonFlag = true
  static override flags = attachFlags

  async run(): Promise<AttachResult> {
    const { flags } = await this.parse(Attach)
    const r = attach({
      flags: {
        nodeIp: flags['node-ip'],
        podCidr: flags['pod-cidr'],
        device: flags.device,
        mode: flags.mode,
        vni: flags.vni,
        vxlanPort: flags['vxlan-port'],
        mtu: flags.mtu,
        attachMode: flags['attach-mode'],
      },
      configFile: flags.config,
      pinDir: flags['pin-dir'],
    })
    this.log(renderAttach(r))
    return r
  }
}
