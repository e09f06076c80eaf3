// BIRD as the agent's child: started with its config and control socket in
// the agent's run dir, reconfigured in place (`birdc configure`) when the
// config changes, restarted when it dies. Stopping with graceful restart
// leaves the kernel table and the peers' routes in place for the restart.
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { UserError } from '../../errors.js'
import { birdc } from '../../services/bird.js'
import { pidAlive } from '../../util/process.js'

export interface SupervisorOptions {
  runDir: string
  gracefulRestart: boolean
  log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void
  /** the daemon binary (tests may point elsewhere) */
  bird?: string
}

const RESTART_MIN_MS = 200
const RESTART_MAX_MS = 5000

export class BirdSupervisor {
  readonly socket: string
  readonly configPath: string
  private readonly pidPath: string
  private child: ChildProcess | undefined
  private stopping = false
  private text = ''
  private backoff = RESTART_MIN_MS
  private restartTimer: NodeJS.Timeout | undefined
  /** times the daemon died and was started again */
  restarts = 0

  constructor(private readonly opts: SupervisorOptions) {
    this.socket = join(opts.runDir, 'bird.ctl')
    this.configPath = join(opts.runDir, 'bird.conf')
    this.pidPath = join(opts.runDir, 'bird.pid')
  }

  get pid(): number | undefined {
    return this.child?.pid
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
  }

  /** Writes the config (checked by `bird -p` first) and starts the daemon. */
  async start(text: string): Promise<void> {
    mkdirSync(this.opts.runDir, { recursive: true, mode: 0o700 })
    await this.writeConfig(text)
    await this.stopStale()
    this.stopping = false
    this.spawnBird()
  }

  /** Applies a new config: nothing when unchanged, else check, write, `birdc configure`. */
  async apply(text: string): Promise<boolean> {
    if (text === this.text) return false
    await this.writeConfig(text)
    if (this.running) {
      const out = await birdc(this.socket, ['configure'])
      if (!/Reconfigur/.test(out)) throw new Error(`BIRD refused the new configuration: ${out.trim()}`)
      this.opts.log('info', 'BGP daemon reconfigured', { config: this.configPath })
    }
    return true
  }

  private async writeConfig(text: string): Promise<void> {
    const tmp = `${this.configPath}.new`
    writeFileSync(tmp, text, { mode: 0o600 })
    const err = await new Promise<string | null>((resolve, reject) =>
      execFile(this.opts.bird ?? 'bird', ['-p', '-c', tmp], (e, _o, stderr) => {
        if ((e as NodeJS.ErrnoException | null)?.code === 'ENOENT') {
          reject(new UserError(`the BGP daemon (${this.opts.bird ?? 'bird'}) is not installed`, 'install BIRD 2: apt-get install bird2'))
        } else resolve(e ? (stderr || e.message).trim() : null)
      }),
    )
    if (err) {
      rmSync(tmp, { force: true })
      throw new Error(`rendered BIRD configuration does not parse: ${err}`)
    }
    renameSync(tmp, this.configPath)
    this.text = text
  }

  private spawnBird(): void {
    const args = ['-f', '-c', this.configPath, '-s', this.socket, '-P', this.pidPath]
    if (this.opts.gracefulRestart) args.push('-R')
    const child = spawn(this.opts.bird ?? 'bird', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    this.child = child
    const started = Date.now()
    for (const s of [child.stdout, child.stderr]) {
      let rest = ''
      s?.setEncoding('utf8').on('data', (d: string) => {
        const lines = (rest + d).split('\n')
        rest = lines.pop() ?? ''
        // BIRD's own time stamp is dropped: the agent's log has one
        for (const l of lines)
          if (l.trim()) this.opts.log('info', l.replace(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ /, ''), { source: 'bird' })
      })
    }
    child.on('error', (e) => this.opts.log('error', `cannot start BIRD: ${e.message}`))
    child.on('exit', (code, signal) => {
      if (this.child === child) this.child = undefined
      if (this.stopping) return
      // a daemon that ran for a while restarts at once; one that keeps dying backs off
      if (Date.now() - started > 10_000) this.backoff = RESTART_MIN_MS
      this.opts.log('warn', `BGP daemon exited (${signal ?? `code ${code}`}); restarting in ${this.backoff} ms`, { pid: child.pid })
      this.restartTimer = setTimeout(() => {
        this.restartTimer = undefined
        if (this.stopping) return
        this.restarts++
        this.spawnBird()
        this.opts.log('info', 'BGP daemon restarted', { pid: this.child?.pid, restarts: this.restarts })
      }, this.backoff)
      this.backoff = Math.min(RESTART_MAX_MS, this.backoff * 2)
    })
  }

  /** A daemon left by an agent that was killed: stop it (gracefully), then ours starts with recovery. */
  private async stopStale(): Promise<void> {
    if (!existsSync(this.pidPath)) return
    const pid = Number(readFileSync(this.pidPath, 'utf8').trim())
    if (!Number.isInteger(pid) || pid <= 0 || !pidAlive(pid)) return
    let cmdline = ''
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    } catch {
      return
    }
    if (!cmdline.includes(this.socket)) return
    this.opts.log('info', 'stopping the BGP daemon a previous agent left running', { pid })
    await birdc(
      this.socket,
      [this.opts.gracefulRestart ? 'graceful restart' : 'down'].flatMap((c) => c.split(' ')),
    ).catch(() => undefined)
    if (!(await waitGone(pid, 5000))) process.kill(pid, 'SIGKILL')
  }

  /** Stops the daemon; with graceful restart, peers and the kernel keep its routes meanwhile. */
  async stop(opts: { graceful?: boolean } = {}): Promise<void> {
    this.stopping = true
    if (this.restartTimer) clearTimeout(this.restartTimer)
    const child = this.child
    if (!child?.pid || !this.running) return
    const graceful = opts.graceful ?? this.opts.gracefulRestart
    await birdc(this.socket, graceful ? ['graceful', 'restart'] : ['down']).catch(() => child.kill('SIGTERM'))
    if (!(await waitGone(child.pid, 5000))) child.kill('SIGKILL')
  }
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end;) {
    // a zombie child counts as gone: its exit handler reaps it
    if (!pidAlive(pid) || readState(pid) === 'Z') return true
    await new Promise((r) => setTimeout(r, 50))
  }
  return false
}

function readState(pid: number): string {
  try {
    return /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? ''
  } catch {
    return ''
  }
}
