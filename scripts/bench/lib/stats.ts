// Small, dependency-free statistics for the report.
export function median(xs: readonly number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return Number.NaN
  const mid = v.length >> 1
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2
}

/** Relative spread: (max − min) / median of the finite samples. */
export function spread(xs: readonly number[]): number {
  const v = xs.filter((x) => Number.isFinite(x))
  if (v.length < 2) return 0
  return (Math.max(...v) - Math.min(...v)) / median(v)
}

export function ratio(a: number, b: number): number {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : Number.NaN
}

/** Rotate `items` left by `k` (interleaving: each repetition starts elsewhere). */
export function rotate<T>(items: readonly T[], k: number): T[] {
  if (items.length === 0) return []
  const s = ((k % items.length) + items.length) % items.length
  return [...items.slice(s), ...items.slice(0, s)]
}

/** Smallest and largest finite sample ([NaN, NaN] when there is none). */
export function minMax(xs: readonly number[]): [number, number] {
  const v = xs.filter((x) => Number.isFinite(x))
  return v.length ? [Math.min(...v), Math.max(...v)] : [Number.NaN, Number.NaN]
}

/** A repetition of one figure whose reference (the limit) moved too far. */
export interface Disturbance {
  metric: string
  rep: number
  /** the limit's value in that repetition, and the run's median limit */
  value: number
  median: number
  /** signed relative move from the median, e.g. -0.31 */
  deviation: number
}

/** Limit moves more than this (relative, either way) → repetition disturbed. */
export const DISTURBED_THRESHOLD = 0.2

/**
 * Repetitions in which the reference moved by more than `threshold` from the
 * median of all its repetitions of that figure. A host that is busy for a
 * while slows every setup of a repetition alike (they run back to back), so
 * the reference's own sample tells when a repetition is not comparable with
 * the others. Samples without a finite value (errors) are never the reason.
 */
export function disturbedReps(
  reference: ReadonlyArray<{ metric: string; rep: number; value: number }>,
  threshold = DISTURBED_THRESHOLD,
): Disturbance[] {
  const out: Disturbance[] = []
  for (const metric of [...new Set(reference.map((s) => s.metric))]) {
    const of = reference.filter((s) => s.metric === metric && Number.isFinite(s.value))
    const med = median(of.map((s) => s.value))
    for (const s of of) {
      const deviation = s.value / med - 1
      if (Math.abs(deviation) > threshold) out.push({ metric, rep: s.rep, value: s.value, median: med, deviation })
    }
  }
  return out.sort((a, b) => a.rep - b.rep || a.metric.localeCompare(b.metric))
}
