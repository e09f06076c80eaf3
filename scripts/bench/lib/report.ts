// Turning samples into the tables printed at the end and pasted into
// BENCHMARKS.md. Repetitions in which the limit moved too far (a busy host)
// are flagged on every sample of that repetition and left out of medians and
// ratios; each median is shown with the spread (min–max) it came from.
import { DISTURBED_THRESHOLD, disturbedReps, median, minMax, ratio, type Disturbance } from './stats.js'
import { METRICS, type MetricId, type Sample } from './measure.js'
import { SETUP_LABEL, type SetupId } from './setups.js'

/** The setup whose samples decide whether a repetition was disturbed. */
export const REFERENCE_SETUP = 'limit'

/** Flag every sample of a (figure, repetition) in which the limit moved by more than `threshold`. */
export function markDisturbed(samples: Sample[], threshold = DISTURBED_THRESHOLD): { samples: Sample[]; disturbances: Disturbance[] } {
  const disturbances = disturbedReps(
    samples.filter((s) => s.setup === REFERENCE_SETUP && !s.error),
    threshold,
  )
  const hit = new Set(disturbances.map((d) => `${d.metric}/${d.rep}`))
  return { samples: samples.map((s) => ({ ...s, disturbed: hit.has(`${s.metric}/${s.rep}`) })), disturbances }
}

/** One reported figure: median of the undisturbed samples and their min–max. */
export interface Figure {
  median: number
  min: number
  max: number
  /** samples the median is taken over, and samples there were */
  n: number
  of: number
  /** every repetition was disturbed: the median is over all of them */
  allDisturbed: boolean
}

export function figure(samples: ReadonlyArray<{ value: number; disturbed?: boolean }>): Figure {
  const finite = samples.filter((s) => Number.isFinite(s.value))
  const quiet = finite.filter((s) => !s.disturbed)
  const allDisturbed = quiet.length === 0 && finite.length > 0
  const used = (allDisturbed ? finite : quiet).map((s) => s.value)
  const [min, max] = minMax(used)
  return { median: median(used), min, max, n: quiet.length, of: samples.length, allDisturbed }
}

export interface Summary {
  setup: SetupId
  tcp1: Figure
  tcp4: Figure
  rttP50: Figure
  rttP99: Figure
  udp: Figure
  /** what the sender pushed through the path (the receiver may drop some) */
  udpSent: Figure
  /** TCP retransmits per sample (iperf3 sender side) */
  retr1: Figure
  retr4: Figure
  /** CPU cost: TCP CPU-seconds per GB (both ends), UDP sender CPU ns per packet */
  cpu1: Figure
  cpu4: Figure
  udpNs: Figure
  errors: string[]
}

export function summarize(setups: SetupId[], samples: Sample[]): Summary[] {
  return setups.map((id) => {
    const of = (m: MetricId): Sample[] => samples.filter((s) => s.setup === id && s.metric === m)
    const by = (m: MetricId, pick: (s: Sample) => number | undefined): Figure =>
      figure(of(m).map((s) => ({ value: s.error ? Number.NaN : (pick(s) ?? Number.NaN), disturbed: s.disturbed })))
    return {
      setup: id,
      tcp1: by('tcp1', (s) => s.value),
      tcp4: by('tcp4', (s) => s.value),
      rttP50: by('rtt', (s) => s.value),
      rttP99: by('rtt', (s) => s.p99),
      udp: by('udp', (s) => s.value),
      udpSent: by('udp', (s) => s.extra?.['sentKpps']),
      retr1: by('tcp1', (s) => s.extra?.['retransmits']),
      retr4: by('tcp4', (s) => s.extra?.['retransmits']),
      cpu1: by('tcp1', (s) => s.extra?.['cpuSecPerGB']),
      cpu4: by('tcp4', (s) => s.extra?.['cpuSecPerGB']),
      udpNs: by('udp', (s) => s.extra?.['senderNsPerPkt']),
      errors: samples.filter((s) => s.setup === id && s.error).map((s) => `${s.metric} rep ${s.rep}: ${s.error}`),
    }
  })
}

const f = (x: number, digits = 2): string => (Number.isFinite(x) ? x.toFixed(digits) : '—')

/** "17.71 (16.40–17.90)"; a median over disturbed repetitions only is marked "!". */
export function cell(x: Figure, digits = 2): string {
  if (!Number.isFinite(x.median)) return '—'
  const range = x.n > 1 || x.allDisturbed ? ` (${f(x.min, digits)}–${f(x.max, digits)})` : ''
  return `${f(x.median, digits)}${range}${x.allDisturbed ? ' !' : ''}`
}

/** Samples used per figure, "5" when all agree, else "tcp1·tcp4·rtt·udp" like "4·5·—·3" (— not measured). */
export function usedCount(r: Summary): string {
  const figs = [r.tcp1, r.tcp4, r.rttP50, r.udp]
  const ns = figs.filter((x) => x.of > 0).map((x) => x.n)
  const total = Math.max(0, ...figs.map((x) => x.of))
  const used = ns.every((n) => n === ns[0]) ? String(ns[0] ?? 0) : figs.map((x) => (x.of > 0 ? String(x.n) : '—')).join('·')
  return `${used} of ${total}`
}

export function datapathTable(rows: Summary[]): string {
  const lines = [
    '| setup | TCP 1 stream Gbit/s | TCP 4 streams Gbit/s | RTT p50 µs | RTT p99 µs | UDP 64 B received kpps | UDP sent kpps | reps used (tcp1·tcp4·rtt·udp) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for (const r of rows)
    lines.push(
      `| ${SETUP_LABEL[r.setup]} | ${cell(r.tcp1)} | ${cell(r.tcp4)} | ${cell(r.rttP50, 1)} | ${cell(r.rttP99, 1)} | ${cell(r.udp, 0)} | ${cell(r.udpSent, 0)} | ${usedCount(r)} |`,
    )
  return lines.join('\n')
}

export function retransmitTable(rows: Summary[], durationS: number): string {
  const lines = [
    `| setup | TCP 1 stream retransmits per ${durationS} s | TCP 4 streams retransmits per ${durationS} s |`,
    '|---|---:|---:|',
  ]
  for (const r of rows) lines.push(`| ${SETUP_LABEL[r.setup]} | ${cell(r.retr1, 0)} | ${cell(r.retr4, 0)} |`)
  return lines.join('\n')
}

/** CPU time per unit of work: what a busy host moves least (lower is better). */
export function cpuTable(rows: Summary[]): string {
  const lines = [
    '| setup | TCP 1 stream CPU-s per GB | TCP 4 streams CPU-s per GB | UDP 64 B sender CPU ns per packet |',
    '|---|---:|---:|---:|',
  ]
  for (const r of rows) lines.push(`| ${SETUP_LABEL[r.setup]} | ${cell(r.cpu1, 3)} | ${cell(r.cpu4, 3)} | ${cell(r.udpNs, 0)} |`)
  return lines.join('\n')
}

export interface RatioRow {
  name: string
  tcp1: number
  tcp4: number
  /** RTT ratio: < 1 means faster */
  rttP50: number
  udp: number
  /** undisturbed repetitions behind each ratio (tcp1, tcp4, rtt, udp) */
  n: [number, number, number, number]
  target: string
}

/** Ratio pairs and the targets they are held to (issues 6 and 18). */
export const RATIO_PAIRS: ReadonlyArray<[SetupId, SetupId, string]> = [
  ['podnet-direct', 'kernel-routing', 'TCP 1/4 and UDP ≥ 1.10, RTT p50 ≤ 0.90'],
  ['podnet-direct', 'limit', 'UDP ≥ 0.85; TCP ≥ 0.98, RTT p50 ≤ 1.10 (issue 6)'],
  ['podnet-vxlan', 'podnet-direct', 'TCP 4 ≥ 0.85'],
  ['podnet-vxlan', 'kernel-vxlan', 'throughput ≥ 1.15, RTT p50 ≤ 0.80'],
  ['podnet-direct', 'podnet-direct-base', 'A/B: this build / baseline'],
  ['podnet-vxlan', 'podnet-vxlan-base', 'A/B: this build / baseline'],
]

export function ratios(rows: Summary[]): RatioRow[] {
  const by = (id: SetupId): Summary | undefined => rows.find((r) => r.setup === id)
  const out: RatioRow[] = []
  for (const [a, b, target] of RATIO_PAIRS) {
    const x = by(a)
    const y = by(b)
    if (!x || !y) continue
    const q = (k: 'tcp1' | 'tcp4' | 'rttP50' | 'udp'): number => ratio(x[k].median, y[k].median)
    const n = (k: 'tcp1' | 'tcp4' | 'rttP50' | 'udp'): number => Math.min(x[k].n, y[k].n)
    out.push({
      name: `${a} / ${b}`,
      tcp1: q('tcp1'),
      tcp4: q('tcp4'),
      rttP50: q('rttP50'),
      udp: q('udp'),
      n: [n('tcp1'), n('tcp4'), n('rttP50'), n('udp')],
      target,
    })
  }
  return out
}

export function ratioTable(rows: RatioRow[]): string {
  const lines = ['| ratio | TCP 1 | TCP 4 | RTT p50 | UDP kpps | reps (tcp1·tcp4·rtt·udp) | target |', '|---|---:|---:|---:|---:|---:|---|']
  for (const r of rows)
    lines.push(`| ${r.name} | ${f(r.tcp1)} | ${f(r.tcp4)} | ${f(r.rttP50)} | ${f(r.udp)} | ${r.n.join('·')} | ${r.target} |`)
  return lines.join('\n')
}

/** One line per disturbed repetition, or a line saying there was none. */
export function disturbanceReport(ds: Disturbance[], haveReference: boolean): string {
  if (!haveReference) return `_No ${REFERENCE_SETUP} setup in this run: repetitions cannot be checked for a disturbed host._`
  if (ds.length === 0)
    return `_No disturbed repetition (the ${REFERENCE_SETUP} stayed within ±${DISTURBED_THRESHOLD * 100} % of its median)._`
  const pct = (x: number): string => `${x > 0 ? '+' : '−'}${Math.abs(x * 100).toFixed(0)} %`
  const lines = ds.map(
    (d) =>
      `- ${d.metric} rep ${d.rep}: ${REFERENCE_SETUP} ${f(d.value)} vs median ${f(d.median)} (${pct(d.deviation)}), left out of medians and ratios`,
  )
  return (
    `Disturbed repetitions (${REFERENCE_SETUP} moved more than ±${DISTURBED_THRESHOLD * 100} % from its median; ` +
    `a figure marked "!" had no undisturbed repetition and is the median of all):\n\n${lines.join('\n')}`
  )
}

/** Every sample in run order, per setup and figure; disturbed ones in [brackets]. */
export function samplesTable(setups: SetupId[], samples: Sample[]): string {
  const metrics = METRICS.filter((m) => samples.some((s) => s.metric === m))
  const lines = [`| setup | ${metrics.join(' | ')} |`, `|---|${metrics.map(() => '---').join('|')}|`]
  for (const id of setups) {
    const col = (m: MetricId): string =>
      samples
        .filter((s) => s.setup === id && s.metric === m)
        .sort((a, b) => a.rep - b.rep)
        .map((s) => {
          const v = s.error ? 'err' : f(s.value, m === 'udp' ? 0 : m === 'rtt' ? 1 : 2)
          return s.disturbed ? `[${v}]` : v
        })
        .join(' ')
    lines.push(`| ${SETUP_LABEL[id]} | ${metrics.map(col).join(' | ')} |`)
  }
  return lines.join('\n')
}
