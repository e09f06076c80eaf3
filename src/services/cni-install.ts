// `podnet-bpf cni install|uninstall`: puts the plugin where a container
// runtime looks for it (a launcher <bin-dir>/podnet and
// <conf-dir>/10-podnet.conflist with portmap chained), and removes exactly
// that again. IPAM and portmap come from Debian's containernetworking-plugins
// (/usr/lib/cni); when the bin dir lacks them, install links them there and
// the launcher records the links, so uninstall removes those too.
import { existsSync, mkdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync, lstatSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { UserError } from '../errors.js'
import { resolvePinDir } from './config.js'

export const PLUGIN_NAME = 'podnet'
export const CONFLIST_NAME = '10-podnet.conflist'
export const DEBIAN_CNI_DIR = '/usr/lib/cni'
const MARKER = '# podnet-bpf CNI plugin launcher'
const DELEGATES = ['host-local', 'portmap', 'loopback']

/** The compiled plugin entry (also when this module runs from sources under vitest). */
export function pluginMainPath(): string {
  const here = fileURLToPath(import.meta.url)
  if (here.endsWith('.js')) return resolve(dirname(here), '../cni/main.js')
  return resolve(dirname(here), '../../dist/cni/main.js')
}

/** What the conflist says: one source for `cni install` and the agent. */
export interface ConflistInput {
  pinDir?: string
  /** the node's pod CIDR as host-local's range [default: "usePodCidr", resolved by the plugin] */
  podCidr?: string
  mtu?: number
  /** network name in the conflist */
  network?: string
  /** host-local's dataDir (default: its own, /var/lib/cni/networks) */
  ipamDataDir?: string
  logFile?: string
}

export interface InstallInput extends ConflistInput {
  binDir: string
  confDir: string
}

export interface InstallResult {
  launcher: string
  conflist: string
  linked: string[]
}

export function conflistFor(input: ConflistInput): Record<string, unknown> {
  return {
    cniVersion: '1.0.0',
    name: input.network ?? 'podnet',
    plugins: [
      {
        type: PLUGIN_NAME,
        pinDir: resolvePinDir(input.pinDir),
        ...(input.mtu !== undefined ? { mtu: input.mtu } : {}),
        ...(input.logFile ? { logFile: input.logFile } : {}),
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet: input.podCidr ?? 'usePodCidr' }]],
          ...(input.ipamDataDir ? { dataDir: input.ipamDataDir } : {}),
        },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  }
}

function isOurLauncher(path: string): boolean {
  try {
    return readFileSync(path, 'utf8').includes(MARKER)
  } catch {
    return false
  }
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`
}

export function installCni(input: InstallInput): InstallResult {
  for (const d of [input.binDir, input.confDir]) {
    if (!d.startsWith('/')) throw new UserError(`"${d}" is not an absolute path`, 'pass absolute --bin-dir and --conf-dir')
  }
  const main = pluginMainPath()
  if (!existsSync(main)) throw new UserError(`plugin entry ${main} not found`, 'build podnet-bpf first: npm run build')
  const launcher = join(input.binDir, PLUGIN_NAME)
  if (existsSync(launcher) && !isOurLauncher(launcher))
    throw new UserError(`${launcher} exists and is not podnet-bpf's launcher`, 'remove it or pick another --bin-dir')
  mkdirSync(input.binDir, { recursive: true })
  mkdirSync(input.confDir, { recursive: true })
  const linked: string[] = []
  if (resolve(input.binDir) !== DEBIAN_CNI_DIR) {
    for (const d of DELEGATES) {
      const src = join(DEBIAN_CNI_DIR, d)
      const dst = join(input.binDir, d)
      if (existsSync(dst) || !existsSync(src)) continue
      symlinkSync(src, dst)
      linked.push(d)
    }
  }
  const script = [
    '#!/bin/sh',
    `${MARKER} (written by \`podnet-bpf cni install\`; \`podnet-bpf cni uninstall\` removes it)`,
    `# linked: ${linked.join(' ')}`,
    // Node would parse this CA bundle at start-up; the plugin opens no TLS
    'unset NODE_EXTRA_CA_CERTS',
    `exec ${shellQuote(process.execPath)} --max-semi-space-size=2 ${shellQuote(main)} "$@"`,
    '',
  ].join('\n')
  writeFileSync(launcher, script, { mode: 0o755 })
  const conflist = join(input.confDir, CONFLIST_NAME)
  writeFileSync(conflist, JSON.stringify(conflistFor(input), null, 2) + '\n')
  return { launcher, conflist, linked }
}

export interface UninstallResult {
  removed: string[]
  kept: string[]
}

export function uninstallCni(input: { binDir: string; confDir: string }): UninstallResult {
  const removed: string[] = []
  const kept: string[] = []
  const launcher = join(input.binDir, PLUGIN_NAME)
  if (existsSync(launcher)) {
    if (isOurLauncher(launcher)) {
      const links = /^# linked: (.*)$/m.exec(readFileSync(launcher, 'utf8'))?.[1]?.split(' ').filter(Boolean) ?? []
      for (const l of links) {
        const p = join(input.binDir, l)
        try {
          if (lstatSync(p).isSymbolicLink() && readlinkSync(p) === join(DEBIAN_CNI_DIR, l)) {
            rmSync(p)
            removed.push(p)
          }
        } catch {
          /* already gone */
        }
      }
      rmSync(launcher)
      removed.push(launcher)
    } else kept.push(launcher)
  }
  const conflist = join(input.confDir, CONFLIST_NAME)
  if (existsSync(conflist)) {
    let ours = false
    try {
      const c = JSON.parse(readFileSync(conflist, 'utf8')) as { plugins?: { type?: string }[] }
      ours = c.plugins?.[0]?.type === PLUGIN_NAME
    } catch {
      /* not ours to judge: keep */
    }
    if (ours) {
      rmSync(conflist)
      removed.push(conflist)
    } else kept.push(conflist)
  }
  return { removed, kept }
}
