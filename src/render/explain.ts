// `explain` as text: the summary line, then what was run and why.
import type { Explanation } from '../services/inspect/explain.js'

export function renderExplanation(x: Explanation): string {
  const p = x.packet
  const ports = p.sport === null ? '' : ` ${p.sport} > ${p.dport}`
  return [
    x.summary,
    `  packet   ${p.src} > ${p.dst} ${p.proto}${ports}, ${p.ipLen} bytes, TTL ${p.ttl}`,
    `  entry    ${x.entry.hook} on ${x.entry.device}: ${x.entry.why}`,
    ...(x.program ? [`  program  ${x.program.name} id ${x.program.id} (${x.program.device} ${x.program.hook})`] : []),
    `  verdict  ${x.verdict ?? '-'}, reason ${x.reason} (${x.reasonCode})`,
    ...x.notes.map((n) => `  note     ${n}`),
  ].join('\n')
}
