// Turning samples into the tables printed at the end and pasted into
// BENCHMARKS.md.
import { median, ratio, spread } from './stats.js'
import type { MetricId, Sample } from './measure.js'
import { SETUP_LABEL, type SetupId } from './setups.js'

export interface Summary {
  setup: SetupId
  n: number
  tcp1: number
  tcp4: number
  rttP50: number
  rttP99: number
  udp: number
  /** what the sender pushed through the path (the receiver may drop some) */
  udpSent: number
  spreadTcp1: number
  errors: string[]
}

export function summarize(setups: SetupId[], samples: Sample[]): Summary[] {
  return setups.map((id) => {
    const of = (m: MetricId): Sample[] => samples.filter((s) => s.setup === id && s.metric === m)
    const vals = (m: MetricId): number[] => of(m).map((s) => s.value)
    return {
      setup: id,
      n: Math.max(...(['tcp1', 'tcp4', 'rtt', 'udp'] as const).map((m) => of(m).filter((s) => !s.error).length)),
      tcp1: median(vals('tcp1')),
      tcp4: median(vals('tcp4')),
      rttP50: median(vals('rtt')),
      rttP99: median(of('rtt').map((s) => s.p99 ?? Number.NaN)),
      udp: median(vals('udp')),
      udpSent: median(of('udp').map((s) => s.extra?.['sentKpps'] ?? Number.NaN)),
      spreadTcp1: spread(vals('tcp1')),
      errors: samples.filter((s) => s.setup === id && s.error).map((s) => `${s.metric} rep ${s.rep}: ${s.error}`),
    }
  })
}

const f = (x: number, digits = 2): string => (Number.isFinite(x) ? x.toFixed(digits) : '—')

export function datapathTable(rows: Summary[]): string {
  const lines = [
    '| setup | TCP 1 stream Gbit/s | TCP 4 streams Gbit/s | RTT p50 µs | RTT p99 µs | UDP 64 B received kpps | UDP sent kpps | n |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for (const r of rows)
    lines.push(
      `| ${SETUP_LABEL[r.setup]} | ${f(r.tcp1)} | ${f(r.tcp4)} | ${f(r.rttP50, 1)} | ${f(r.rttP99, 1)} | ${f(r.udp, 0)} | ${f(r.udpSent, 0)} | ${r.n} |`,
    )
  return lines.join('\n')
}

export interface RatioRow {
  name: string
  tcp1: number
  tcp4: number
  /** RTT ratio: < 1 means faster */
  rttP50: number
  udp: number
  target: string
}

export function ratios(rows: Summary[]): RatioRow[] {
  const by = (id: SetupId): Summary | undefined => rows.find((r) => r.setup === id)
  const pairs: Array<[SetupId, SetupId, string]> = [
    ['podnet-direct', 'limit', 'throughput ≥ 0.98, RTT p50 ≤ 1.10'],
    ['podnet-direct', 'kernel-routing', 'throughput > 1.00'],
    ['podnet-vxlan', 'kernel-vxlan', 'throughput ≥ 1.15, RTT p50 ≤ 0.80'],
  ]
  const out: RatioRow[] = []
  for (const [a, b, target] of pairs) {
    const x = by(a)
    const y = by(b)
    if (!x || !y) continue
    out.push({
      name: `${a} / ${b}`,
      tcp1: ratio(x.tcp1, y.tcp1),
      tcp4: ratio(x.tcp4, y.tcp4),
      rttP50: ratio(x.rttP50, y.rttP50),
      udp: ratio(x.udp, y.udp),
      target,
    })
  }
  return out
}

export function ratioTable(rows: RatioRow[]): string {
  const lines = ['| ratio | TCP 1 | TCP 4 | RTT p50 | UDP kpps | target |', '|---|---:|---:|---:|---:|---|']
  for (const r of rows) lines.push(`| ${r.name} | ${f(r.tcp1)} | ${f(r.tcp4)} | ${f(r.rttP50)} | ${f(r.udp)} | ${r.target} |`)
  return lines.join('\n')
}
