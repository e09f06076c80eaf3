// Small helpers shared by the inspection services: addresses as the
// programs store them, device names, counters that fit JSON.
import { readFileSync } from 'node:fs'
import { ifIndexToName } from '../../datapath/kernel.js'
import { dirLabels, reasonLabel } from '../../datapath/abi.js'

/** A network-byte-order IPv4 address read as a little-endian u32 (how BTF ints decode) → dotted. */
export function nboU32ToIp(n: number): string {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n >>> 0, 0)
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`
}

/** Interface name in the calling network namespace, or `if<N>` when there is none. */
export function ifLabel(ifindex: number): string {
  if (ifindex === 0) return '-'
  return ifIndexToName(ifindex) ?? `if${ifindex}`
}

export function dirLabel(dir: number): string {
  return dirLabels[dir] ?? `dir-${dir}`
}

export { reasonLabel }

/** u64 counters as JSON numbers while they are exact, strings beyond 2^53. */
export function jsonNumber(v: bigint): number | string {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString()
}

/** Wall-clock time of a CLOCK_BOOTTIME timestamp (ns since boot, e.g. a program's load time). */
export function bootTimeToDate(ns: bigint): Date {
  const uptimeS = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0])
  return new Date(Date.now() - uptimeS * 1000 + Number(ns / 1_000_000n))
}

/** Wall-clock time of a CLOCK_MONOTONIC timestamp (bpf_ktime_get_ns). */
export function monotonicToDate(ns: bigint): Date {
  const nowMono = process.hrtime.bigint()
  return new Date(Date.now() - Number((nowMono - ns) / 1_000_000n))
}

export const IPPROTO: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp' }
export function protoLabel(p: number): string {
  return IPPROTO[p] ?? (p === 0 ? '-' : `proto-${p}`)
}
