// Helpers for the inspection suite: long-running CLI processes (monitor,
// metrics serve) whose output lines are awaited, counter tables from
// `metrics --json`, and Prometheus text parsing.
import { spawn, type ChildProcess } from 'node:child_process'
import { CLI, cliJson } from './sys.js'

export interface Streamed {
  proc: ChildProcess
  lines: { at: number; text: string }[]
  stderr: () => string
  /** Resolves with the first line (already seen or future) matching, or rejects after timeoutMs. */
  waitFor(pred: (line: string) => boolean, timeoutMs?: number): Promise<{ at: number; text: string }>
  /** Resolves with the exit code once the process ends by itself (SIGKILL after timeoutMs). */
  wait(timeoutMs?: number): Promise<number | null>
  /** SIGINT, then SIGKILL if it has not exited within 5 s; resolves with the exit code. */
  stop(): Promise<number | null>
}

/** Starts the CLI in the background (in a node namespace, or the host's when ns is null). */
export function spawnCli(ns: string | null, args: string[], env: NodeJS.ProcessEnv = {}): Streamed {
  const argv = ns === null ? [CLI, ...args] : [`--net=/run/netns/${ns}`, 'node', CLI, ...args]
  const proc = spawn(ns === null ? 'node' : 'nsenter', argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: { at: number; text: string }[] = []
  let err = ''
  let partial = ''
  const waiters: (() => void)[] = []
  proc.stdout!.on('data', (d: Buffer) => {
    const at = Date.now()
    partial += d.toString()
    const parts = partial.split('\n')
    partial = parts.pop()!
    for (const text of parts) lines.push({ at, text })
    for (const w of waiters.splice(0)) w()
  })
  proc.stderr!.on('data', (d: Buffer) => {
    err += d.toString()
    for (const w of waiters.splice(0)) w()
  })
  const exited = new Promise<number | null>((r) => proc.once('exit', (c) => (r(c), waiters.splice(0).forEach((w) => w()))))
  return {
    proc,
    lines,
    stderr: () => err,
    waitFor(pred, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const deadline = setTimeout(
          () => reject(new Error(`timed out waiting for output; stdout:\n${lines.map((l) => l.text).join('\n')}\nstderr:\n${err}`)),
          timeoutMs,
        )
        const check = () => {
          const hit = lines.find((l) => pred(l.text))
          if (hit) {
            clearTimeout(deadline)
            resolve(hit)
          } else if (proc.exitCode !== null) {
            clearTimeout(deadline)
            reject(new Error(`process exited ${proc.exitCode}; stderr:\n${err}`))
          } else waiters.push(check)
        }
        check()
      })
    },
    async wait(timeoutMs = 10_000) {
      const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs)
      const c = await exited
      clearTimeout(t)
      return c
    },
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGINT')
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000)
      const c = await exited
      clearTimeout(t)
      return c
    },
  }
}

/** Resolves once stderr contains `text` (e.g. a "monitoring …" banner). */
export async function waitForStderr(s: Streamed, text: string, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!s.stderr().includes(text)) {
    if (s.proc.exitCode !== null) throw new Error(`exited ${s.proc.exitCode}: ${s.stderr()}`)
    if (Date.now() > end) throw new Error(`no "${text}" on stderr: ${s.stderr()}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

export interface MetricJson {
  direction: string
  reason: string
  kind: string
  packets: number
  bytes: number
}

/** `direction/reason` → packets, from `podnet-bpf metrics --json` in the node namespace. */
export function countersOf(ns: string, pinDir: string, env: NodeJS.ProcessEnv): Map<string, number> {
  const rows = cliJson<MetricJson[]>(ns, ['metrics', '--pin-dir', pinDir], env)
  return new Map(rows.map((r) => [`${r.direction}/${r.reason}`, r.packets]))
}

export function deltaOf(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const d = new Map<string, number>()
  for (const [k, v] of after) if (v - (before.get(k) ?? 0) !== 0) d.set(k, v - (before.get(k) ?? 0))
  return d
}

/** The value of one sample in Prometheus text format (0 when absent). */
export function promSample(text: string, name: string, labels: Record<string, string>): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue
    const m = /^[^{]+\{([^}]*)\} (\S+)$/.exec(line)
    if (!m) continue
    const ls = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]))
    if (Object.entries(labels).every(([k, v]) => ls[k] === v)) return Number(m[2])
  }
  return 0
}
