// Node sysctls podnet changes, each recorded with its old value so detach
// (and a re-attach to another device) can put it back.
import { UserError } from '../errors.js'
import { readSysctl, writeSysctl } from './netdev.js'

export interface SysctlChange {
  path: string
  old: string
}

/** A sysctl attach depends on: unreadable is an error, not "unset". */
export function requireSysctl(path: string): string {
  const v = readSysctl(path)
  if (v === null)
    throw new UserError(`cannot read /proc/sys/${path}`, 'run as root with /proc/sys mounted (and writable) in this namespace')
  return v
}

/** Sets `path` to `value`, adding its old value to `changes` the first time. */
export function setRecorded(changes: SysctlChange[], path: string, value: string): void {
  const old = requireSysctl(path)
  if (old === value) return
  if (!changes.some((s) => s.path === path)) changes.push({ path, old })
  writeSysctl(path, value)
}

/** What a node needs: forwarding, and loose reverse-path filtering on its NIC
 * (replies to VXLAN-encapsulated traffic come back unencapsulated). */
export function applyNodeSysctls(changes: SysctlChange[], device: string): void {
  setRecorded(changes, 'net/ipv4/ip_forward', '1')
  const rpAll = Number(requireSysctl('net/ipv4/conf/all/rp_filter'))
  const rpDev = Number(requireSysctl(`net/ipv4/conf/${device}/rp_filter`))
  if (Math.max(rpAll, rpDev) === 1) setRecorded(changes, `net/ipv4/conf/${device}/rp_filter`, '2')
}

/** Puts back the changes made under `prefix` (e.g. an old NIC's conf dir); returns the rest. */
export function restoreUnder(changes: SysctlChange[], prefix: string): SysctlChange[] {
  for (const c of changes.filter((x) => x.path.startsWith(prefix))) writeSysctl(c.path, c.old)
  return changes.filter((x) => !x.path.startsWith(prefix))
}
