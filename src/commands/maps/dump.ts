import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import { BaseCommand } from '../../cli/base.js'
import { dumpMap, renderInline } from '../../services/inspect/maps.js'

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
    const out = (s: string) => process.stdout.write(s)
    try {
      const h = d.header
      if (this.jsonEnabled()) {
        // streamed by hand: the result is never held in memory as a whole
        out(`{"map":${JSON.stringify(h)},"entries":[`)
        let first = true
        for (const e of d.entries) {
          out(`${first ? '\n' : ',\n'}${JSON.stringify(e)}`)
          first = false
        }
        out(`\n],"skipped":${d.skipped()}}\n`)
        return
      }
      out(`${h.name} (id ${h.id}, ${h.type}, key ${h.keyType}, value ${h.valueType}, max ${h.maxEntries})\n`)
      if (h.note) {
        out(`${h.note}\n`)
        return
      }
      let n = 0
      for (const e of d.entries) {
        const key = typeof e.key === 'string' ? e.key : renderInline(e.key)
        out(`${key.padEnd(18)}  ${renderInline(e.value)}\n`)
        n++
      }
      const skipped = d.skipped()
      out(`${n} ${n === 1 ? 'entry' : 'entries'}${skipped ? ` (${skipped} all-zero slots not shown: --all)` : ''}\n`)
    } finally {
      d.close()
    }
  }
}
