import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import { BaseCommand } from '../../cli/base.js'
import { dumpMap } from '../../services/inspect/maps.js'
import { writeDumpJson, writeDumpText } from '../../render/maps.js'

export default class MapsDump extends BaseCommand {
  static override summary = "Print every entry of a datapath map, decoded from the map's own BTF"
  static override description =
    'Keys and values are decoded with the BTF the kernel holds for the map, with addresses, CIDRs, MACs, flags and reasons made readable. Entries are streamed (constant memory, any map size). Per-CPU maps show the sum over CPUs (--json also lists each CPU); all-zero slots of per-CPU arrays are left out unless --all.'
  static override examples = [
    '<%= config.bin %> maps dump podnet_routes',
    '<%= config.bin %> maps dump endpoints --json',
    '<%= config.bin %> maps dump podnet_metrics --all',
  ]
  static override enableJsonFlag = true
  static override args = {
    name: Args.string({
      description:
        'map name (podnet_endpoints, podnet_routes, podnet_metrics, podnet_settings, podnet_events; the podnet_ prefix is optional)',
      required: true,
    }),
  }
  static override flags = {
    all: Flags.boolean({ description: 'include all-zero slots of per-CPU arrays' }),
  }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(MapsDump)
    const d = dumpMap(args.name, { pinDir: flags['pin-dir'], all: flags.all })
    const out = (s: string) => void process.stdout.write(s)
    try {
      if (this.jsonEnabled()) writeDumpJson(d, out)
      else writeDumpText(d, out)
    } finally {
      d.close()
    }
  }
}
