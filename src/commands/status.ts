import { BaseCommand } from '../cli/base.js'
import { renderNodeStatus } from '../render/status.js'
import { nodeStatus, type NodeStatus } from '../services/inspect/status.js'

export default class Status extends BaseCommand {
  static override summary = 'Show what the datapath has attached on this node: config, programs, maps'
  static override description =
    'Node configuration from attach, every program live on its hook as the kernel reports it (how it is attached: tcx link, tc filter or netkit; id, tag, load time; "!" marks a program that is not the one attach installed), every pinned map with its entries, and the libbpf and kernel versions.'
  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status --pin-dir /sys/fs/bpf/node1 --json']
  static override enableJsonFlag = true

  async run(): Promise<NodeStatus> {
    const { flags } = await this.parse(Status)
    const s = nodeStatus(flags['pin-dir'])
    this.log(renderNodeStatus(s))
    return s
  }
}
