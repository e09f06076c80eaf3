// Strict IPv4 address and CIDR parsing. Errors name the input and the fix.
import { UserError } from '../errors.js'

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/

export function isIPv4(s: string): boolean {
  const p = s.split('.')
  return p.length === 4 && p.every((o) => OCTET.test(o))
}

export function ipToInt(ip: string): number {
  const p = ip.split('.').map(Number)
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')
}

export function parseIPv4(s: string, what = 'IP address'): string {
  if (!isIPv4(s)) throw new UserError(`invalid ${what} "${s}"`, 'use dotted IPv4 notation, e.g. 192.168.77.1')
  return s
}

export interface Cidr {
  addr: string
  len: number
  /** network address as an unsigned int */
  net: number
  mask: number
}

export function maskOf(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0
}

export function parseCidr(s: string, what = 'CIDR'): Cidr {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(s)
  if (!m || !isIPv4(m[1]!) || Number(m[2]) > 32) {
    throw new UserError(`invalid ${what} "${s}"`, 'use ADDRESS/PREFIX, e.g. 10.244.1.0/24')
  }
  const len = Number(m[2])
  const mask = maskOf(len)
  const ip = ipToInt(m[1]!)
  const net = (ip & mask) >>> 0
  if (net !== ip) {
    throw new UserError(
      `invalid ${what} "${s}": host bits are set`,
      `did you mean ${intToIp(net)}/${len}?`,
    )
  }
  return { addr: m[1]!, len, net, mask }
}

export function cidrString(c: Cidr): string {
  return `${intToIp(c.net)}/${c.len}`
}

export function cidrContains(c: Cidr, ip: string): boolean {
  return ((ipToInt(ip) & c.mask) >>> 0) === c.net
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const mask = a.len < b.len ? a.mask : b.mask
  return ((a.net & mask) >>> 0) === ((b.net & mask) >>> 0)
}

export function isMac(s: string): boolean {
  return /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(s)
}
