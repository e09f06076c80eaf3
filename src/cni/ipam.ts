// Delegated IPAM: the IPAM plugin named by ipam.type, found in CNI_PATH, run
// with our CNI_* environment and the network config (its ipam section
// resolved) on stdin, as the spec's delegation describes.
import { spawnSync } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { join } from 'node:path'
import { Code, CniError, type CniResult, type CniEnv } from './protocol.js'
import type { NetConf } from './netconf.js'

export interface Ipam {
  type: string
  path: string
  conf: Record<string, unknown>
}

export function findPlugin(type: string, dirs: readonly string[]): string | null {
  if (type.includes('/')) return null
  for (const d of dirs) {
    const p = join(d, type)
    try {
      accessSync(p, constants.X_OK)
      return p
    } catch {
      /* next */
    }
  }
  return null
}

export function ipamFor(conf: NetConf, ipamSection: Record<string, unknown>, env: CniEnv): Ipam {
  const type = String(ipamSection.type)
  const path = findPlugin(type, env.path)
  if (!path)
    throw new CniError(
      Code.INVALID_CONFIG,
      `IPAM plugin "${type}" not found in CNI_PATH (${env.path.join(':')})`,
      'install it (Debian: containernetworking-plugins puts host-local in /usr/lib/cni) or fix ipam.type',
    )
  // the delegate sees our config with the resolved ipam section (and no prevResult: that is ours)
  const { prevResult: _p, ...rest } = conf
  return { type, path, conf: { ...rest, ipam: ipamSection } }
}

interface Exec {
  status: number | null
  stdout: string
  stderr: string
}

function exec(ipam: Ipam, command: string, env: CniEnv, cniVersion: string, extra: Record<string, unknown> = {}): Exec {
  const r = spawnSync(ipam.path, [], {
    input: JSON.stringify({ ...ipam.conf, ...extra, cniVersion }),
    env: {
      ...process.env,
      CNI_COMMAND: command,
      CNI_CONTAINERID: env.containerId,
      CNI_NETNS: env.netns,
      CNI_IFNAME: env.ifname,
      CNI_ARGS: Object.entries(env.args)
        .map(([k, v]) => `${k}=${v}`)
        .join(';'),
      CNI_PATH: env.path.join(':'),
    },
    encoding: 'utf8',
    timeout: 60_000,
  })
  if (r.error) throw new CniError(Code.IPAM, `running IPAM plugin ${ipam.path} failed: ${r.error.message}`, 'check the plugin binary')
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

function failure(ipam: Ipam, command: string, r: Exec): CniError {
  try {
    const e = JSON.parse(r.stdout) as { code?: number; msg?: string; details?: string }
    if (typeof e.code === 'number')
      return new CniError(e.code, `IPAM ${ipam.type} ${command}: ${e.msg ?? 'failed'}`, e.details ?? 'see the IPAM plugin configuration')
  } catch {
    /* not an error object */
  }
  return new CniError(Code.IPAM, `IPAM ${ipam.type} ${command} failed (exit ${r.status}): ${(r.stderr || r.stdout).trim().slice(0, 300)}`)
}

// Delegates run at 1.0.0: the spec's 1.1.0 changed nothing for ADD/DEL/CHECK
// results, and Debian's host-local (1.1.1) knows versions up to 1.0.0 only.
const DELEGATE_VERSION = '1.0.0'

export function ipamAdd(ipam: Ipam, env: CniEnv): CniResult {
  const r = exec(ipam, 'ADD', env, DELEGATE_VERSION)
  if (r.status !== 0) throw failure(ipam, 'ADD', r)
  try {
    return JSON.parse(r.stdout) as CniResult
  } catch {
    throw new CniError(Code.IPAM, `IPAM ${ipam.type} ADD returned no JSON result`, r.stdout.slice(0, 200))
  }
}

export function ipamDel(ipam: Ipam, env: CniEnv): void {
  const r = exec(ipam, 'DEL', env, DELEGATE_VERSION)
  if (r.status !== 0) throw failure(ipam, 'DEL', r)
}

export function ipamCheck(ipam: Ipam, env: CniEnv, prevResult: unknown): void {
  const r = exec(ipam, 'CHECK', env, DELEGATE_VERSION, { prevResult })
  if (r.status !== 0) throw failure(ipam, 'CHECK', r)
}

/** Whether the delegate speaks 1.1.0 (STATUS and GC exist from there on). */
export function ipamSupports11(ipam: Ipam): boolean {
  const r = spawnSync(ipam.path, [], {
    input: JSON.stringify({ cniVersion: '1.1.0' }),
    env: { ...process.env, CNI_COMMAND: 'VERSION' },
    encoding: 'utf8',
    timeout: 10_000,
  })
  try {
    return (JSON.parse(r.stdout) as { supportedVersions?: string[] }).supportedVersions?.includes('1.1.0') === true
  } catch {
    return false
  }
}

export function ipamStatus(ipam: Ipam, env: CniEnv): void {
  const r = exec(ipam, 'STATUS', env, '1.1.0')
  if (r.status !== 0) throw failure(ipam, 'STATUS', r)
}

export function ipamGc(ipam: Ipam, env: CniEnv, valid: unknown[]): void {
  const r = exec(ipam, 'GC', env, '1.1.0', { 'cni.dev/valid-attachments': valid })
  if (r.status !== 0) throw failure(ipam, 'GC', r)
}
