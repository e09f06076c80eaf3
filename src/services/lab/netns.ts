// Network namespaces for the lab, through iproute2 (`ip -n NS -batch`, one
// process per namespace) and nsenter (which keeps the host mount namespace,
// so bpffs pins stay visible; `ip netns exec` would remount /sys).
import { spawn } from 'node:child_process'
import { closeSync, existsSync, openSync, readdirSync } from 'node:fs'
import { UserError } from '../../errors.js'
import { isBpfError } from '../../errors.js'
import { createNetkit } from '../../datapath/kernel.js'
import { run } from '../../util/exec.js'

export const NETNS_DIR = '/run/netns'

export function netnsPath(ns: string): string {
  return `${NETNS_DIR}/${ns}`
}

export function listNetns(): string[] {
  try {
    return readdirSync(NETNS_DIR).sort()
  } catch {
    return []
  }
}

export function netnsExists(ns: string): boolean {
  return existsSync(netnsPath(ns))
}

/** Runs `ip` commands (argument lists without the leading `ip`) in one
 * process, inside `ns` (or the caller's namespace when null). */
export function ipBatch(ns: string | null, lines: string[][], opts: { force?: boolean } = {}): void {
  if (lines.length === 0) return
  const input = lines.map((l) => l.join(' ')).join('\n') + '\n'
  run('ip', [...(ns ? ['-n', ns] : []), ...(opts.force ? ['-force'] : []), '-batch', '-'], { input })
}

export function addNetns(names: string[]): void {
  ipBatch(
    null,
    names.map((n) => ['netns', 'add', n]),
  )
}

/** Deletes namespaces, ignoring the ones already gone. */
export function deleteNetns(names: string[]): void {
  const present = names.filter(netnsExists)
  if (present.length === 0) return
  try {
    ipBatch(
      null,
      present.map((n) => ['netns', 'del', n]),
      { force: true },
    )
  } catch {
    /* -force reports the failures of single lines; what is left is checked by the caller */
  }
}

export interface Spawned {
  status: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export function spawnAsync(
  cmd: string,
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<Spawned> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const timer = opts.timeoutMs ? setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs) : null
    p.on('error', (e) => {
      if (timer) clearTimeout(timer)
      resolve({ status: null, signal: null, stdout, stderr: stderr + e.message })
    })
    p.on('close', (status, signal) => {
      if (timer) clearTimeout(timer)
      resolve({ status, signal, stdout, stderr })
    })
    p.stdin.on('error', () => {})
    p.stdin.end(opts.input ?? '')
  })
}

/** `nsenter --net=/run/netns/NS CMD …` */
export function nsenterArgs(ns: string, cmd: string[]): string[] {
  return [`--net=${netnsPath(ns)}`, ...cmd]
}

/** Writes sysctls (key=value, dotted names) inside a namespace. */
export async function nsSysctl(ns: string, settings: string[]): Promise<void> {
  const r = await spawnAsync('nsenter', nsenterArgs(ns, ['sysctl', '-q', '-w', ...settings]))
  if (r.status !== 0) throw new Error(`sysctl in ${ns} failed: ${r.stderr.trim()}`)
}

/** A pod's netkit pair: `hostIf` in the caller's namespace, its peer born as
 * eth0 in `podNs` (L3 mode: no MACs, no ARP). iproute2 before 6.7 cannot
 * create netkit pairs, so this is rtnetlink directly; the lab, the VM suite
 * and the bench (scripts/netkit-pair.mjs) all make netkit pods here. */
export function createNetkitPod(hostIf: string, podNs: string, mtu?: number): void {
  const fd = openSync(netnsPath(podNs), 'r')
  try {
    createNetkit({ name: hostIf, peerName: 'eth0', peerNetnsFd: fd, mtu })
  } catch (e) {
    if (isBpfError(e) && e.code === 'EOPNOTSUPP') {
      throw new UserError('this kernel has no netkit devices (Linux >= 6.7 built with CONFIG_NETKIT)', 'use --pod-device veth')
    }
    throw e
  } finally {
    closeSync(fd)
  }
}
