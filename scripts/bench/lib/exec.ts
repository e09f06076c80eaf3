// Child processes for the benchmark: argument arrays only (no shell), a
// timeout on everything, and a synchronous variant for cleanup paths that must
// also work from signal and exit handlers.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'

export interface Result {
  code: number | null
  stdout: string
  stderr: string
  ms: number
}

export class ExecError extends Error {
  constructor(
    readonly argv: string[],
    readonly result: Result,
  ) {
    const why = result.code === null ? 'timed out or was killed' : `exited ${result.code}`
    super(`${argv.join(' ')} ${why}: ${(result.stderr || result.stdout).trim().slice(0, 800)}`)
    this.name = 'ExecError'
  }
}

export interface ExecOptions {
  timeoutMs?: number
  env?: NodeJS.ProcessEnv
  /** Resolve instead of throwing on a non-zero exit. */
  allowFail?: boolean
}

/** Children of exec() still running: killed (each by its pid) on cleanup. */
const running = new Set<ChildProcess>()

export function killRunning(): void {
  for (const c of running) {
    if (c.pid !== undefined && c.exitCode === null) {
      try {
        process.kill(c.pid, 'SIGKILL')
      } catch {
        /* gone */
      }
    }
  }
  running.clear()
}

/** Run argv to completion; throws ExecError on failure unless allowFail. */
export function exec(argv: string[], opts: ExecOptions = {}): Promise<Result> {
  const [cmd, ...args] = argv
  if (!cmd) throw new Error('exec: empty argv')
  const t0 = performance.now()
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env })
    running.add(child)
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000)
    child.on('error', (err) => {
      running.delete(child)
      clearTimeout(timer)
      reject(err)
    })
    child.on('close', (code) => {
      running.delete(child)
      clearTimeout(timer)
      const r: Result = { code, stdout, stderr, ms: performance.now() - t0 }
      if (code === 0 || opts.allowFail) resolve(r)
      else reject(new ExecError(argv, r))
    })
  })
}

/** Synchronous run for setup steps and cleanup; throws unless allowFail. */
export function execSync(argv: string[], opts: ExecOptions = {}): Result {
  const [cmd, ...args] = argv
  if (!cmd) throw new Error('execSync: empty argv')
  const t0 = performance.now()
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 30_000,
    env: opts.env ?? process.env,
    maxBuffer: 64 * 1024 * 1024,
  })
  const res: Result = {
    code: r.error ? null : r.status,
    stdout: r.stdout ?? '',
    stderr: r.stderr ?? (r.error ? r.error.message : ''),
    ms: performance.now() - t0,
  }
  if (res.code !== 0 && !opts.allowFail) throw new ExecError(argv, res)
  return res
}

/** A long-running helper (iperf3/sockperf server) that cleanup kills by pid. */
export class Daemon {
  readonly child: ChildProcess
  private output = ''

  constructor(readonly argv: string[]) {
    const [cmd, ...args] = argv
    if (!cmd) throw new Error('Daemon: empty argv')
    this.child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    const keep = (d: Buffer): void => {
      this.output = (this.output + d.toString('utf8')).slice(-4000)
    }
    this.child.stdout?.on('data', keep)
    this.child.stderr?.on('data', keep)
    this.child.on('error', (e) => (this.output += `\nspawn error: ${e.message}`))
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  get recentOutput(): string {
    return this.output
  }

  /** Kill this process (only it, by its own pid). Safe to call twice. */
  stop(): void {
    if (this.alive && this.child.pid !== undefined) {
      try {
        process.kill(this.child.pid, 'SIGKILL')
      } catch {
        /* already gone */
      }
    }
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
