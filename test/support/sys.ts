// Test helpers for real kernels: commands, namespaces and the CLI as an
// operator runs it (`nsenter --net=/run/netns/NODE podnet-bpf …`).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { release } from 'node:os'
import { gunzipSync } from 'node:zlib'
import { tempDir } from './tmp.js'
import { join, resolve } from 'node:path'

export const ROOT = resolve(import.meta.dirname, '..', '..')
export const CLI = join(ROOT, 'bin', 'run.js')

export interface Result {
  status: number
  stdout: string
  stderr: string
}

export function sh(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Result {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input: opts.input, env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 60_000 })
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') }
}

/** Runs and throws with the command's stderr on failure. */
export function must(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const r = sh(cmd, args, opts)
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} → ${r.status}\n${r.stderr}${r.stdout}`)
  return r.stdout
}

export function inNs(ns: string, cmd: string, args: string[], opts: { timeoutMs?: number } = {}): Result {
  return sh('ip', ['netns', 'exec', ns, cmd, ...args], opts)
}
export function mustNs(ns: string, cmd: string, args: string[]): string {
  return must('ip', ['netns', 'exec', ns, cmd, ...args])
}

/** A unique short prefix for this run's namespaces and pins. */
export function runId(tag: string): string {
  return `${tag}${process.pid.toString(36)}${Math.floor(Math.random() * 36 ** 3).toString(36)}`
}

export function tempStateDir(): string {
  return tempDir('podnet-state-')
}

/** The CLI inside a node namespace, keeping the host mount namespace (pins). */
export function cli(ns: string | null, args: string[], env: NodeJS.ProcessEnv = {}): Result {
  const full = { ...process.env, ...env }
  if (ns === null) return sh('node', [CLI, ...args], { env: full, timeoutMs: 120_000 })
  return sh('nsenter', [`--net=/run/netns/${ns}`, 'node', CLI, ...args], { env: full, timeoutMs: 120_000 })
}

export function cliJson<T>(ns: string | null, args: string[], env: NodeJS.ProcessEnv = {}): T {
  const r = cli(ns, [...args, '--json'], env)
  if (r.status !== 0) throw new Error(`podnet-bpf ${args.join(' ')} → ${r.status}\n${r.stderr}${r.stdout}`)
  return JSON.parse(r.stdout) as T
}

/** A namespace with a node's NIC and nothing behind it: eth0 (address `cidr`)
 * paired with eth1 in the same namespace, both up (lo too). */
export function loneNodeNs(ns: string, cidr: string): void {
  must('ip', ['netns', 'add', ns])
  must('ip', ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1'])
  must('ip', ['-n', ns, 'addr', 'add', cidr, 'dev', 'eth0'])
  for (const d of ['lo', 'eth0', 'eth1']) must('ip', ['-n', ns, 'link', 'set', d, 'up'])
}

export function background(cmd: string, args: string[]): ChildProcess {
  return spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
}

export function listNetns(): string[] {
  return sh('ip', ['netns', 'list'])
    .stdout.split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter(Boolean)
}

export function deleteNetnsWithPrefix(prefix: string): void {
  for (const ns of listNetns()) if (ns.startsWith(prefix)) sh('ip', ['netns', 'del', ns])
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** CONFIG_NETKIT from the running kernel's config, or null when it is not readable. */
export function kernelHasNetkit(): boolean | null {
  let cfg: string
  try {
    cfg = existsSync('/proc/config.gz')
      ? gunzipSync(readFileSync('/proc/config.gz')).toString()
      : readFileSync(`/boot/config-${release()}`, 'utf8')
  } catch {
    return null
  }
  return /^CONFIG_NETKIT=[ym]$/m.test(cfg)
}
