// `metrics` as text: one row per counter, with rates when watching.
import { table } from '../cli/base.js'
import type { MetricRow, RateRow } from '../services/inspect/metrics.js'

function rate(n: number): string {
  return n >= 100 ? n.toFixed(0) : n.toFixed(1)
}

export function renderMetrics(rows: (MetricRow | RateRow)[]): string {
  if (rows.length === 0) return '(no packets counted yet)'
  const rates = 'packetsPerSec' in rows[0]!
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

/** One `--watch` sample: a JSON line, or the table under a time header. */
export function renderSample(at: number, rows: RateRow[], intervalSec: number, json: boolean): string {
  const time = new Date(at).toISOString()
  return json ? JSON.stringify({ time, counters: rows }) : `--- ${time} (rates over ${intervalSec}s)\n${renderMetrics(rows)}`
}
