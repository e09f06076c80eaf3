// Shared behaviour of every command: --pin-dir, --json where declared, and
// operator errors printed as one line with a fix (no stack), exit 1.
// oclif's subpath entry points, not '@oclif/core': its index loads every part
// of oclif (and semver, for an engines check) before any command runs
import { Command } from '@oclif/core/command'
import * as Flags from '@oclif/core/flags'
import type { CommandError, OptionFlag } from '@oclif/core/interfaces'
import { BpfError, UserError } from '../errors.js'

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
    const e = this.operatorError(err)
    if (e) {
      if (this.jsonEnabled()) {
        this.logJson({ error: { message: e.message, hint: e.hint ?? null } })
      } else {
        process.stderr.write(`Error: ${e.message}\n${e.hint ? `Fix: ${e.hint}\n` : ''}`)
      }
      this.exit(isParseError(err) ? 2 : 1)
    }
    return super.catch(err)
  }

  /** What the operator can act on, as one message and a fix: our own
   * UserErrors, oclif's flag errors (their first line, not the whole usage
   * or, with --json, ~130 KB of parser state), and kernel refusals. */
  private operatorError(err: CommandError): UserError | null {
    const cause = (err as { cause?: unknown }).cause
    const e: unknown = cause instanceof UserError ? cause : err
    if (e instanceof UserError) return e
    const cmd = `podnet-bpf ${(this.id ?? '').replace(/:/g, ' ')}`.trim()
    if (isParseError(err)) {
      // oclif's message: a problem over one or more lines, then "See more help …"
      const text = err.message
        .split('\n')
        .map((l) => l.replace(/^[\s›]*(Error: )?/, '').trim())
        .filter((l) => l && !/^See more help/.test(l))
        .join(' ')
      return new UserError(text || 'invalid arguments', `see \`${cmd} --help\``)
    }
    if (e instanceof BpfError) {
      if (e.code === 'EPERM' || e.code === 'EACCES') return new UserError(e.message, 'run as root (or grant CAP_BPF and CAP_NET_ADMIN)')
      if (e.code === 'ENOSPC' || e.code === 'E2BIG')
        return new UserError(
          `a datapath map is full: ${e.message}`,
          'remove entries you no longer need (endpoints del, routes del) and retry',
        )
      return new UserError(
        `the kernel refused an operation: ${e.message}`,
        'check the arguments and `podnet-bpf doctor`; if both are fine this is a bug, please report it',
      )
    }
    return null
  }
}

function isParseError(err: unknown): err is Error {
  return err instanceof Error && ('parse' in err || (err as { oclif?: { exit?: number } }).oclif?.exit === 2)
}

/** Renders rows as an aligned text table. */
/** A flag whose choices come from a zod enum (the schema stays the one
 * source of the values); typed as the enum's union. */
export function enumFlag<T extends string>(
  e: { options: readonly T[] },
  props: { description: string; default?: T },
): OptionFlag<T | undefined> {
  return Flags.string({ ...props, options: [...e.options] }) as unknown as OptionFlag<T | undefined>
}

export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))]
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)))
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n')
}
