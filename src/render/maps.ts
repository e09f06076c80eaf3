// `maps dump` output, streamed entry by entry (a map of any size is never
// held in memory as a whole): JSON written by hand, or one line per entry.
import type { MapDump, Rendered } from '../services/inspect/maps.js'

export function writeDumpJson(d: MapDump, out: (s: string) => void): void {
  out(`{"map":${JSON.stringify(d.header)},"entries":[`)
  let first = true
  for (const e of d.entries) {
    out(`${first ? '\n' : ',\n'}${JSON.stringify(e)}`)
    first = false
  }
  out(`\n],"skipped":${d.skipped()}}\n`)
}

export function writeDumpText(d: MapDump, out: (s: string) => void): void {
  const h = d.header
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
}

/** One entry as `field=value` pairs, for line-per-entry text output. */
export function renderInline(v: Rendered): string {
  if (v === null) return '-'
  if (Array.isArray(v)) return v.length ? v.map(renderInline).join(',') : '-'
  if (typeof v === 'object')
    return Object.entries(v)
      .map(([k, x]) => `${k}=${typeof x === 'object' && x !== null && !Array.isArray(x) ? `{${renderInline(x)}}` : renderInline(x)}`)
      .join(' ')
  return String(v)
}
