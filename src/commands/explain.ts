import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import { BaseCommand, enumFlag } from '../cli/base.js'
import { explain, type Explanation } from '../services/inspect/explain.js'
import { ProtoSchema } from '../services/inspect/packet.js'
import { renderExplanation } from '../render/explain.js'

export default class Explain extends BaseCommand {
  static override summary = 'Show which way the datapath would send a packet from SRC to DST'
  static override description =
    "Builds the packet, picks the hook it enters on (a local pod source: from_pod on its veth or netkit peer hook; a remote pod or other source: the node device or the overlay) and runs it through the program live on that hook with BPF_PROG_TEST_RUN in explain mode, against the live maps: no counters move, no events are emitted. Run it in the node's network namespace."
  static override examples = [
    '<%= config.bin %> explain 10.244.1.11 10.244.2.11',
    '<%= config.bin %> explain 10.244.1.11 10.244.2.11 --proto tcp --dport 80',
    '<%= config.bin %> explain 10.244.1.99 10.244.2.11 --ingress vp11   # a spoofed source',
  ]
  static override enableJsonFlag = true
  static override args = {
    src: Args.string({ description: 'source IPv4 address', required: true }),
    dst: Args.string({ description: 'destination IPv4 address', required: true }),
  }
  static override flags = {
    proto: enumFlag(ProtoSchema, { description: 'protocol of the test packet', default: 'icmp' }),
    dport: Flags.integer({ description: 'destination port (tcp/udp) [default: 80]' }),
    size: Flags.integer({ description: 'total IPv4 length of the test packet [default: headers + 56]' }),
    ttl: Flags.integer({ description: 'IPv4 TTL of the test packet', default: 64 }),
    ingress: Flags.string({
      description:
        'device the packet arrives on (a pod veth or netkit primary, the node device or podnet_vxlan) [default: from the source]',
      helpValue: 'IFNAME',
    }),
  }

  async run(): Promise<Explanation> {
    const { args, flags } = await this.parse(Explain)
    const x = explain({
      src: args.src,
      dst: args.dst,
      proto: flags.proto,
      dport: flags.dport,
      size: flags.size,
      ttl: flags.ttl,
      ingress: flags.ingress,
      pinDir: flags['pin-dir'],
    })
    this.log(renderExplanation(x))
    return x
  }
}
