import * as Flags from '@oclif/core/flags'
import { BaseCommand, table } from '../../cli/base.js'
import { MetricsReader, metricRows, rateRows, type MetricRow, type RateRow } from '../../services/inspect/metrics.js'

function rate(n: number): string {
  return n >= 100 ? n.toFixed(0) : n.toFixed(1)
}

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

  private render(rows: (MetricRow | RateRow)[]): string {
    if (rows.length === 0) return '(no packets counted yet)'
    const rates = rows.length > 0 && 'packetsPerSec' in rows[0]!
    const headers = ['DIRECTION', 'KIND', 'REASON', 'PACKETS', 'BYTES', ...(rates ? ['PKT/S', 'BYTES/S'] : [])]
    return table(
      headers,
      rows.map((r) => [
        r.direction,
        r.kind,
        r.reason,
        String(r.packets),
        String(r.bytes),
        ...('packetsPerSec' in r ? [rate(r.packetsPerSec), rate(r.bytesPerSec)] : []),
      ]),
    )
  }

  async run(): Promise<MetricRow[] | void> {
    const { flags } = await this.parse(Metrics)
    const reader = new MetricsReader(flags['pin-dir'])
    try {
      if (!flags.watch) {
        const rows = metricRows(reader.sample())
        this.log(this.render(rows))
        return rows
      }
      let prev = reader.sample()
      let stop = false
      const onSig = () => (stop = true)
      process.once('SIGINT', onSig)
      process.once('SIGTERM', onSig)
      for (let i = 0; !stop && (flags.count === undefined || i < flags.count); i++) {
        const until = Date.now() + flags.interval * 1000
        while (!stop && Date.now() < until) await new Promise((r) => setTimeout(r, Math.min(200, until - Date.now())))
        if (stop) break
        const cur = reader.sample()
        const rows = rateRows(prev, cur)
        prev = cur
        if (this.jsonEnabled()) process.stdout.write(`${JSON.stringify({ time: new Date(cur.at).toISOString(), counters: rows })}\n`)
        else process.stdout.write(`--- ${new Date(cur.at).toISOString()} (rates over ${flags.interval}s)\n${this.render(rows)}\n`)
      }
      process.off('SIGINT', onSig)
      process.off('SIGTERM', onSig)
    } finally {
      reader.close()
    }
  }
}
