import * as Flags from '@oclif/core/flags'
import { BaseCommand, enumFlag, table } from '../cli/base.js'
import { AttachModeSchema, ModeSchema, NodeDefaults, attach, type AttachResult } from '../services/index.js'

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
  static override flags = {
    'node-ip': Flags.string({ description: "this node's underlay IPv4 address (an address of --device)", helpValue: 'IP' }),
    'pod-cidr': Flags.string({ description: "this node's pod CIDR", helpValue: 'CIDR' }),
    device: Flags.string({ description: 'node NIC (underlay)', helpValue: 'IFNAME' }),
    // no oclif defaults: a --config file's values must win over them (defaults come from the schema)
    mode: enumFlag(ModeSchema, {
      description: `cross-node forwarding: direct routing, VXLAN, or per peer (direct when on the device subnet) [default: ${NodeDefaults.mode}]`,
    }),
    vni: Flags.integer({ description: `VXLAN network identifier [default: ${NodeDefaults.vni}]` }),
    'vxlan-port': Flags.integer({ description: `VXLAN UDP port [default: ${NodeDefaults.vxlanPort}]` }),
    mtu: Flags.integer({ description: 'pod-facing MTU [default: device MTU, minus 50 with VXLAN]' }),
    'attach-mode': enumFlag(AttachModeSchema, {
      description: `programs on device hooks as tcx links (Linux >= 6.6), tc filters, or tcx where the kernel has it [default: ${NodeDefaults.attachMode}]`,
    }),
    config: Flags.string({
      description: 'JSON file with nodeIp, podCidr, device, mode, vni, vxlanPort, mtu, attachMode (flags win)',
      helpValue: 'FILE',
    }),
  }

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
    this.log(
      `${r.action}: node ${r.config.nodeIp}, pod CIDR ${r.config.podCidr}, mode ${r.config.mode}, device ${r.config.device} (MTU ${r.deviceMtu})${r.vxlanDevice ? `, VXLAN ${r.vxlanDevice} VNI ${r.config.vni} port ${r.config.vxlanPort}` : ''}`,
    )
    this.log(
      `pod MTU: ${r.podMtu} (set it on each pod's eth0); programs attached as ${r.attachMode === 'tcx' ? 'tcx links' : 'tc filters'}`,
    )
    this.log(
      table(
        ['PROGRAM', 'DEVICE', 'HOOK', 'ID'],
        r.programs.map((p) => [p.program, p.device, p.hook, p.id]),
      ),
    )
    return r
  }
}
