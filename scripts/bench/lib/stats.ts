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
