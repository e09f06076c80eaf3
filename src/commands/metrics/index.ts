import * as Flags from '@oclif/core/flags'
import { BaseCommand } from '../../cli/base.js'
import { onInterrupt, sleepUnless } from '../../cli/signals.js'
import { MetricsReader, metricRows, rateRows, type MetricRow } from '../../services/inspect/metrics.js'
import { renderMetrics, renderSample } from '../../render/metrics.js'

export default class Metrics extends BaseCommand {
  static override summary = 'Forward and drop counters by reason and hook, summed over CPUs'
  static override description =
    'Reads the podnet_metrics per-CPU map. Only counters that moved since attach are shown. With --watch, prints the counters again every --interval seconds with packet and byte rates since the previous sample (--json: one JSON object per line).'
  static override examples = [
    '<%= config.bin %> metrics',
    '<%= config.bin %> metrics --watch --interval 1',
    '<%= config.bin %> metrics --json',
  ]
  static override enableJsonFlag = true
  static override flags = {
    watch: Flags.boolean({ char: 'w', description: 'refresh every --interval seconds and show rates' }),
    interval: Flags.integer({ description: 'seconds between samples with --watch', default: 2, min: 1 }),
    count: Flags.integer({ description: 'with --watch: stop after this many refreshes (default: until Ctrl-C)', min: 1 }),
  }

  async run(): Promise<MetricRow[] | void> {
    const { flags } = await this.parse(Metrics)
    const reader = new MetricsReader(flags['pin-dir'])
    try {
      if (!flags.watch) {
        const rows = metricRows(reader.sample())
        this.log(renderMetrics(rows))
        return rows
      }
      let prev = reader.sample()
      let stop = false
      await onInterrupt(
        () => (stop = true),
        async () => {
          for (let i = 0; !stop && (flags.count === undefined || i < flags.count); i++) {
            await sleepUnless(flags.interval * 1000, () => stop)
            if (stop) break
            const cur = reader.sample()
            const rows = rateRows(prev, cur)
            prev = cur
            process.stdout.write(`${renderSample(cur.at, rows, flags.interval, this.jsonEnabled())}\n`)
          }
        },
      )
    } finally {
      reader.close()
    }
  }
}
