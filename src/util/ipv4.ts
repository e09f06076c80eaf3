// Strict IPv4 address and CIDR parsing. Errors name the input and the fix.
import { UserError } from '../errors.js'

// One pattern for the whole address rather than split + a test per octet: a
// route sync parses several addresses per route, 5,000 routes at a time.
const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)'
const IPV4 = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`)
const CIDR = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}/(\\d{1,2})$`)

export function isIPv4(s: string): boolean {
  return IPV4.test(s)
}

/** For a valid dotted quad (callers validate first); no intermediate arrays. */
export function ipToInt(ip: string): number {
  let n = 0
  let octet = 0
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i)
    if (c === 46 /* '.' */) {
      n = n * 256 + octet
      octet = 0
    } else octet = octet * 10 + c - 48
  }
  return n * 256 + octet
}

export function intToIp(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`
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
  const m = CIDR.exec(s)
  if (!m || Number(m[5]) > 32) {
    throw new UserError(`invalid ${what} "${s}"`, 'use ADDRESS/PREFIX, e.g. 10.244.1.0/24')
  }
  const len = Number(m[5])
  const mask = maskOf(len)
  const ip = ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0
  const net = (ip & mask) >>> 0
  if (net !== ip) {
    throw new UserError(`invalid ${what} "${s}": host bits are set`, `did you mean ${intToIp(net)}/${len}?`)
  }
  return { addr: s.slice(0, s.indexOf('/')), len, net, mask }
}

export function cidrString(c: Cidr): string {
  return `${intToIp(c.net)}/${c.len}`
}

export function cidrContains(c: Cidr, ip: string): boolean {
  return (ipToInt(ip) & c.mask) >>> 0 === c.net
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const mask = a.len < b.len ? a.mask : b.mask
  return (a.net & mask) >>> 0 === (b.net & mask) >>> 0
}

export function isMac(s: string): boolean {
  return /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(s)
}
