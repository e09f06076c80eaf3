// The #define constants of bpf/include/podnet_abi.h are not in any object's
// BTF, so their TypeScript mirrors are checked by compiling a small program
// against the header that prints them (a generated header check).
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  ABI_VERSION,
  DROP_EVENTS_PER_SEC,
  EXPLAIN_F_TUNNEL,
  EXPLAIN_MAGIC0,
  EXPLAIN_MAGIC1,
  METRICS_ENTRIES,
  MONITOR_F_TRACE,
  ROUTE_F_VXLAN,
} from '../../src/datapath/abi.js'

const INCLUDE = resolve(import.meta.dirname, '..', '..', 'bpf', 'include')
const dir = mkdtempSync(join(tmpdir(), 'pncore-abi-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** C #define name → its TypeScript mirror */
const MIRRORS: Record<string, number> = {
  PODNET_ABI_VERSION: ABI_VERSION,
  ROUTE_F_VXLAN,
  MONITOR_F_TRACE,
  PODNET_METRICS_ENTRIES: METRICS_ENTRIES,
  PODNET_EXPLAIN_MAGIC0: EXPLAIN_MAGIC0,
  PODNET_EXPLAIN_MAGIC1: EXPLAIN_MAGIC1,
  PODNET_EXPLAIN_F_TUNNEL: EXPLAIN_F_TUNNEL,
  PODNET_DROP_EVENTS_PER_SEC: DROP_EVENTS_PER_SEC,
}

function headerValues(): Record<string, number> {
  const src = join(dir, 'defines.c')
  const bin = join(dir, 'defines')
  const lines = Object.keys(MIRRORS).map((n) => `  printf("%s %llu\\n", "${n}", (unsigned long long)(${n}));`)
  writeFileSync(src, ['#include <stdio.h>', '#include "podnet_abi.h"', 'int main(void) {', ...lines, '  return 0;', '}', ''].join('\n'))
  execFileSync('clang', ['-I', INCLUDE, '-o', bin, src])
  const out = execFileSync(bin, { encoding: 'utf8' })
  return Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((l) => l.split(' '))
      .map(([k, v]) => [k!, Number(v)]),
  )
}

describe('the #define constants of podnet_abi.h', () => {
  it('match their TypeScript mirrors in src/datapath/abi.ts', () => {
    expect(headerValues()).toEqual(MIRRORS)
  })

  it('fails when a mirror drifts (the check can fail)', () => {
    expect(headerValues()).not.toEqual({ ...MIRRORS, ROUTE_F_VXLAN: ROUTE_F_VXLAN << 1 })
  })
})
