// Running iproute2 and friends. Arguments are passed as arrays, never through
// a shell.
import { execFileSync, spawnSync } from 'node:child_process'

export class CommandError extends Error {
  constructor(
    readonly cmd: string,
    readonly status: number | null,
    readonly stderr: string,
  ) {
    super(`${cmd} failed (${status}): ${stderr.trim()}`)
    this.name = 'CommandError'
  }
}

export function run(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    input: opts.input,
    timeout: opts.timeoutMs ?? 30_000,
    maxBuffer: 64 * 1024 * 1024,
  })
  if (r.error) throw new CommandError(`${cmd} ${args.join(' ')}`, null, r.error.message)
  if (r.status !== 0) throw new CommandError(`${cmd} ${args.join(' ')}`, r.status, r.stderr || r.stdout)
  return r.stdout
}

/** Like run, but returns null instead of throwing on a non-zero exit. */
export function tryRun(cmd: string, args: string[]): string | null {
  try {
    return run(cmd, args)
  } catch (e) {
    if (e instanceof CommandError) return null
    throw e
  }
}

export function ipJson<T = unknown>(args: string[]): T {
  const out = execFileSync('ip', ['-j', ...args], { encoding: 'utf8' })
  return (out.trim() ? JSON.parse(out) : []) as T
}
