// SPDX-License-Identifier: Apache-2.0
// libbpf's own log output (warnings, verifier logs on failed loads). By default
// it is not printed: it is captured around calls that may fail and attached to
// the BpfError as `log`. PODNET_LIBBPF_LOG=warn|info|debug echoes it to stderr.

import { setLibbpfPrint } from './ffi.js'

export type LibbpfLogLevel = 'warn' | 'info' | 'debug'
const LEVEL_NAMES: readonly LibbpfLogLevel[] = ['warn', 'info', 'debug']

function levelFromEnv(v: string | undefined): number {
  const i = v === undefined ? -1 : LEVEL_NAMES.indexOf(v.toLowerCase() as LibbpfLogLevel)
  return i
}

let echoLevel = levelFromEnv(process.env['PODNET_LIBBPF_LOG'])
let listener: ((level: LibbpfLogLevel, message: string) => void) | null = null
const captures: string[][] = []

setLibbpfPrint((level, message) => {
  // Keep warn+info always (they explain failures); debug only when asked for.
  if (level <= 1 || echoLevel >= 2) for (const c of captures) c.push(message)
  if (level <= echoLevel) process.stderr.write(message.endsWith('\n') ? message : `${message}\n`)
  const name = LEVEL_NAMES[level] ?? 'debug'
  listener?.(name, message)
})

/** Echo libbpf output up to `level` to stderr (null: never). Overrides PODNET_LIBBPF_LOG. */
export function setLibbpfLogLevel(level: LibbpfLogLevel | null): void {
  echoLevel = level === null ? -1 : LEVEL_NAMES.indexOf(level)
}

/** Receive every libbpf log message (null removes the listener). */
export function onLibbpfLog(fn: ((level: LibbpfLogLevel, message: string) => void) | null): void {
  listener = fn
}

export interface LogCapture {
  /** The libbpf log text captured so far. */
  text(): string
  /** Stop capturing (idempotent). */
  stop(): void
}

/** Start capturing libbpf's log (for attaching it to a BpfError); always stop() it. */
export function startLogCapture(): LogCapture {
  const lines: string[] = []
  captures.push(lines)
  return {
    text: () => lines.join(''),
    stop: () => {
      const i = captures.indexOf(lines)
      if (i >= 0) captures.splice(i, 1)
    },
  }
}
