// Which encapsulation a peer route gets: pure decisions from the node mode,
// the route's request and the node device's subnets.
import { UserError } from '../errors.js'
import { ipv4Addresses, type AddrInfo } from '../datapath/netdev.js'
import { type Cidr, cidrContains, cidrString, intToIp, ipToInt, maskOf } from '../util/ipv4.js'
import type { Encap, Mode } from './config.js'

/** true = VXLAN. Throws when the requested encapsulation cannot work here. */
export function resolveEncap(req: Encap | 'default', mode: Mode, nodeIp: string, deviceSubnets: readonly Cidr[], cidr: string): boolean {
  const want: Encap = req === 'default' ? (mode === 'direct' ? 'none' : mode) : req
  const onLink = deviceSubnets.some((s) => cidrContains(s, nodeIp))
  if (want === 'auto') return !onLink
  if (want === 'vxlan') {
    if (mode === 'direct') {
      throw new UserError(
        `route ${cidr} wants VXLAN but this node is attached in direct mode (no VXLAN device)`,
        're-attach with --mode vxlan or --mode auto, or use --encap none',
      )
    }
    return true
  }
  if (!onLink) {
    throw new UserError(
      `node IP ${nodeIp} for route ${cidr} is not in a subnet of the node device (${deviceSubnets.map(cidrString).join(', ') || 'no IPv4 address'}), so it cannot be reached directly`,
      'use --encap vxlan (or auto), or attach with --mode vxlan/auto',
    )
  }
  return false
}

export function deviceSubnets(device: string): Cidr[] {
  return subnetsOf(ipv4Addresses(device))
}

/** The networks of a device's addresses (10.0.0.5/24 → 10.0.0.0/24). */
export function subnetsOf(addrs: readonly Pick<AddrInfo, 'local' | 'prefixlen'>[]): Cidr[] {
  return addrs.map((a) => {
    const mask = maskOf(a.prefixlen)
    const net = (ipToInt(a.local) & mask) >>> 0
    return { addr: intToIp(net), len: a.prefixlen, net, mask }
  })
}
