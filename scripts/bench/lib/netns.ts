// Network-namespace plumbing. Everything the benchmark creates lives in
// namespaces named `pnb-<pid>-…`; nothing is configured in the root namespace.
import { existsSync, readdirSync } from 'node:fs'
import { execSync } from './exec.js'
import { onCleanup } from './cleanup.js'

export const NS_PREFIX = 'pnb-'

/** Per-process tag so concurrent runs (and tests) never collide. */
export function runTag(extra = ''): string {
  return `${NS_PREFIX}${process.pid}${extra ? `-${extra}` : ''}`
}

export function nsExists(name: string): boolean {
  return existsSync(`/run/netns/${name}`)
}

/** argv prefix that runs a command inside namespace `ns` (network only). */
export function inNs(ns: string, argv: string[]): string[] {
  return ['ip', 'netns', 'exec', ns, ...argv]
}

/** Like inNs, but via nsenter so /sys/fs/bpf stays the host's bpffs. */
export function nsenter(ns: string, argv: string[]): string[] {
  return ['nsenter', `--net=/run/netns/${ns}`, ...argv]
}

export function ip(ns: string, ...args: string[]): string {
  return execSync(['ip', '-n', ns, ...args]).stdout
}

export function sysctl(ns: string, key: string, value: string | number): void {
  execSync(inNs(ns, ['sysctl', '-qw', `${key}=${value}`]))
}

/** Create a namespace with lo up and IPv6 off; its deletion is registered. */
export function addNs(name: string): string {
  if (!name.startsWith(NS_PREFIX)) throw new Error(`refusing to create namespace ${name} without prefix ${NS_PREFIX}`)
  execSync(['ip', 'netns', 'add', name])
  onCleanup(`netns ${name}`, () => deleteNs(name))
  ip(name, 'link', 'set', 'lo', 'up')
  sysctl(name, 'net.ipv6.conf.all.disable_ipv6', 1)
  sysctl(name, 'net.ipv6.conf.default.disable_ipv6', 1)
  return name
}

export function deleteNs(name: string): void {
  if (nsExists(name)) execSync(['ip', 'netns', 'del', name], { allowFail: true })
}

export interface LinkInfo {
  ifname: string
  address: string
  mtu: number
  rxPackets: number
  txPackets: number
  rxBytes: number
  txBytes: number
}

export function link(ns: string, dev: string): LinkInfo {
  const [l] = JSON.parse(ip(ns, '-j', '-s', 'link', 'show', 'dev', dev)) as Array<{
    ifname: string
    address: string
    mtu: number
    stats64: { rx: { packets: number; bytes: number }; tx: { packets: number; bytes: number } }
  }>
  if (!l) throw new Error(`no link ${dev} in ${ns}`)
  return {
    ifname: l.ifname,
    address: l.address,
    mtu: l.mtu,
    rxPackets: l.stats64.rx.packets,
    txPackets: l.stats64.tx.packets,
    rxBytes: l.stats64.rx.bytes,
    txBytes: l.stats64.tx.bytes,
  }
}

/** Ip.ForwDatagrams of a namespace: how many packets its kernel routed. */
export function forwardedDatagrams(ns: string): number {
  const snmp = execSync(inNs(ns, ['cat', '/proc/net/snmp'])).stdout.split('\n')
  const head = snmp.find((l) => l.startsWith('Ip: Forwarding'))
  const vals = snmp.find((l) => l.startsWith('Ip: ') && !l.startsWith('Ip: Forwarding'))
  if (!head || !vals) throw new Error(`cannot read /proc/net/snmp in ${ns}`)
  const i = head.split(/\s+/).indexOf('ForwDatagrams')
  return Number(vals.split(/\s+/)[i])
}

/** Namespaces left by benchmark processes that no longer exist. */
export function staleNamespaces(): string[] {
  if (!existsSync('/run/netns')) return []
  return readdirSync('/run/netns').filter((n) => {
    const m = /^pnb-(\d+)-/.exec(n)
    if (!m) return false
    const pid = Number(m[1])
    if (pid === process.pid) return false
    try {
      process.kill(pid, 0)
      return false
    } catch {
      return true
    }
  })
}
