// Facts about the node's network that front doors (the agent) need before
// attach: the device's IPv4 addresses, to default the node IP.
import { UserError } from '../errors.js'
import { getLinkByName, ipv4Addresses } from '../datapath/netdev.js'

/** The device's first IPv4 address; a UserError when it has none. */
export function defaultNodeIp(device: string): string {
  if (!getLinkByName(device)) throw new UserError(`interface "${device}" not found`, 'pass the node NIC with --device (see `ip link`)')
  const a = ipv4Addresses(device)[0]
  if (!a)
    throw new UserError(`interface ${device} has no IPv4 address to use as the node IP`, 'pass --node-ip, or give the device an address')
  return a.local
}
