import { Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base.js'
import { addEndpoint, type EndpointView } from '../../services/endpoints.js'

export default class EndpointsAdd extends BaseCommand {
  static override summary = 'Register a local pod: attach from-pod to its host veth and make the node reach it'
  static override examples = [
    '<%= config.bin %> endpoints add --ip 10.244.1.10 --ifname veth-pod1',
    '<%= config.bin %> endpoints add --ip 10.244.1.11 --ifname veth-pod2 --mac 02:00:0a:f4:01:0b',
  ]
  static override enableJsonFlag = true
  static override flags = {
    ip: Flags.string({ description: "the pod's IPv4 address (inside this node's pod CIDR)", required: true, helpValue: 'IP' }),
    ifname: Flags.string({ description: "the pod's host-side veth", required: true, helpValue: 'HOST_VETH' }),
    mac: Flags.string({ description: "the pod's eth0 MAC [default: read from the veth peer]", helpValue: 'POD_MAC' }),
  }

  async run(): Promise<EndpointView> {
    const { flags } = await this.parse(EndpointsAdd)
    const e = addEndpoint({ ip: flags.ip, ifname: flags.ifname, mac: flags.mac, pinDir: flags['pin-dir'] })
    this.log(`endpoint ${e.ip} on ${e.ifname} (ifindex ${e.ifindex}, pod MAC ${e.podMac})`)
    return e
  }
}
