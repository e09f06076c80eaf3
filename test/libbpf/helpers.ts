// SPDX-License-Identifier: Apache-2.0
// Shared fixtures for test/libbpf: the test BPF object (compiled with clang
// into a temp dir; tests are the only place clang runs), a private bpffs
// mount for pinning, and shell helpers for ip/tc.

import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isBpffs, mountBpffs } from '../../src/libbpf/index.js'

const here = dirname(fileURLToPath(import.meta.url))

export function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

export function tryRun(cmd: string, args: string[]): void {
  try {
    run(cmd, args)
  } catch {
    // cleanup helper: ignore
  }
}

function multiarchInclude(): string[] {
  try {
    const triple = run('gcc', ['-print-multiarch']).trim()
    return triple ? [`-I/usr/include/${triple}`] : []
  } catch {
    return []
  }
}

/** Compile test/libbpf/fixtures/<name>.bpf.c into `dir`; returns the .o path. */
export function compileFixture(name: string, dir: string): string {
  const out = join(dir, `${name}.o`)
  execFileSync('clang', ['-O2', '-g', '-target', 'bpf', ...multiarchInclude(), '-c', join(here, 'fixtures', `${name}.bpf.c`), '-o', out], {
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  return out
}

export interface TempEnv {
  /** Scratch dir (for .o files). */
  dir: string
  /** A private bpffs mount for pins. */
  bpffs: string
  cleanup(): void
}

/** A temp dir with the compiled test object and a private bpffs mount. */
export function tempEnv(prefix: string): TempEnv {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`))
  const bpffs = join(dir, 'bpffs')
  mountBpffs(bpffs)
  if (!isBpffs(bpffs)) throw new Error(`${bpffs} is not bpffs after mount`)
  return {
    dir,
    bpffs,
    cleanup() {
      tryRun('umount', [bpffs])
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** A 64-byte Ethernet/IPv4 frame (contents irrelevant to the test programs). */
export function packet(len = 64): Buffer {
  const p = Buffer.alloc(len)
  p.fill(0xaa, 0, 6) // dst
  p.fill(0xbb, 6, 12) // src
  p.writeUInt16BE(0x0800, 12)
  p[14] = 0x45
  p.writeUInt16BE(len - 14, 16)
  p[22] = 64
  p[23] = 17
  return p
}

/** struct __sk_buff (192 bytes) with cb[i] set; cb[] starts at offset 48. */
export function skbCtx(cb: number[] = []): Buffer {
  const c = Buffer.alloc(192)
  cb.forEach((v, i) => c.writeUInt32LE(v, 48 + 4 * i))
  return c
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n, 0)
  return b
}
