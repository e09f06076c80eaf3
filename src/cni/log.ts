// The plugin's log: one JSON object per line in a file, never on stdout
// (stdout carries the result). Logging never fails the plugin.
import { appendFileSync, mkdirSync } from 'node:fs'
import { dirname } from 'node:path'

export const DEFAULT_LOG_FILE = '/var/log/podnet-bpf/cni.log'

export class Log {
  private readonly t0 = performance.now()
  constructor(
    private file: string,
    private readonly base: Record<string, unknown>,
  ) {}

  setFile(file: string): void {
    this.file = file
  }

  write(level: 'info' | 'error', msg: string, fields: Record<string, unknown> = {}): void {
    const line = { time: new Date().toISOString(), level, msg, ...this.base, ...fields, ms: Math.round(performance.now() - this.t0) }
    try {
      mkdirSync(dirname(this.file), { recursive: true })
      appendFileSync(this.file, JSON.stringify(line) + '\n')
    } catch {
      /* no log is better than a failed ADD */
    }
  }
}
