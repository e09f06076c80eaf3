// One prefix for the C side: every static helper in bpf/ is pn_<something>,
// so a reader (and grep) tells podnet's helpers from kernel and libbpf ones.
import { readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'

const BPF = resolve(import.meta.dirname, '..', '..', 'bpf')
const sources = [
  ...readdirSync(BPF)
    .filter((f) => f.endsWith('.bpf.c'))
    .map((f) => join(BPF, f)),
  ...readdirSync(join(BPF, 'lib'))
    .filter((f) => f.endsWith('.h'))
    .map((f) => join(BPF, 'lib', f)),
]

/** Names of the static functions a C source defines (the signature may span lines). */
function staticFunctions(src: string): string[] {
  return [...src.matchAll(/^static\s+(?:__always_inline\s+|inline\s+)*[\w\s*]*?\b(\w+)\s*\([^;]*?\)\s*\{/gm)].map((m) => m[1]!)
}

describe('C helper names in bpf/', () => {
  it('finds the helpers (the scan itself works)', () => {
    expect(staticFunctions('static __always_inline int\nfoo(struct x *a,\n\t\tint b)\n{\n')).toEqual(['foo'])
    expect(staticFunctions('static __always_inline struct podnet_route *pn_route_lookup(__u32 addr)\n{')).toEqual(['pn_route_lookup'])
    const all = sources.flatMap((f) => staticFunctions(readFileSync(f, 'utf8')))
    expect(all.length).toBeGreaterThan(30)
  })

  it.each(sources.map((f) => [f.slice(BPF.length + 1), f]))('%s: every static helper starts with pn_', (_name, file) => {
    const bad = staticFunctions(readFileSync(file, 'utf8')).filter((n) => !n.startsWith('pn_'))
    expect(bad).toEqual([])
  })
})
