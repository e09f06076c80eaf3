// Shared behaviour of every command: --pin-dir, --json where declared, and
// operator errors printed as one line with a fix (no stack), exit 1.
// oclif's subpath entry points, not '@oclif/core': its index loads every part
// of oclif (and semver, for an engines check) before any command runs
import { Command } from '@oclif/core/command'
import * as Flags from '@oclif/core/flags'
import type { CommandError } from '@oclif/core/interfaces'
import { UserError } from '../errors.js'
import { BpfError } from '../errors.js'

export const pinDirFlag = Flags.string({
  description: "bpffs directory holding this node's pins (one per node)",
  env: 'PODNET_PIN_DIR',
  helpValue: 'DIR',
})

export abstract class BaseCommand extends Command {
  static override baseFlags = {
    'pin-dir': pinDirFlag,
  }

  /** Plain JSON (oclif colourises token by token, which costs ~15 MB of
   * heap on a 5,000-route list); bigints as numbers-in-strings. */
  override logJson(json: unknown): void {
    process.stdout.write(`${JSON.stringify(json, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`)
  }

  protected override async catch(err: CommandError): Promise<unknown> {
    const e: unknown = (err as { cause?: unknown }).cause instanceof UserError ? (err as { cause?: unknown }).cause : err
    if (e instanceof UserError) {
      if (this.jsonEnabled()) {
        this.logJson({ error: { message: e.message, hint: e.hint ?? null } })
      } else {
        process.stderr.write(`Error: ${e.message}\n${e.hint ? `Fix: ${e.hint}\n` : ''}`)
      }
      this.exit(1)
    }
    if (e instanceof BpfError && (e.code === 'EPERM' || e.code === 'EACCES')) {
      process.stderr.write(`Error: ${e.message}\nFix: run as root (or grant CAP_BPF and CAP_NET_ADMIN)\n`)
      this.exit(1)
    }
    return super.catch(err)
  }
}

/** Renders rows as an aligned text table. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))]
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)))
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n')
}
