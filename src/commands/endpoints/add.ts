import * as Flags from '@oclif/core/flags'
import { BaseCommand } from '../../cli/base.js'
import { addEndpoint, type EndpointView } from '../../services/endpoints.js'

export default class EndpointsAdd extends BaseCommand {
  static override summary = 'Register a local pod: attach from-pod to its host veth (or netkit primary) and make the node reach it'
  static override examples = [
    '<%= config.bin %> endpoints add --ip 10.244.1.10 --ifname veth-pod1',
    '<%= config.bin %> endpoints add --ip 10.244.1.11 --ifname veth-pod2 --mac 02:00:0a:f4:01:0b',
  ]
  static override enableJsonFlag = true
  static override flags = {
    ip: Flags.string({ description: "the pod's IPv4 address (inside this node's pod CIDR)", required: true, helpValue: 'IP' }),
    ifname: Flags.string({
      description: "the pod's host-side device: the node end of its veth pair, or the primary of its netkit pair",
      required: true,
      helpValue: 'HOST_DEV',
    }),
    mac: Flags.string({ description: "the pod's eth0 MAC [default: read from the peer]", helpValue: 'POD_MAC' }),
  }

  async run(): Promise<EndpointView> {
    const { flags } = await this.parse(EndpointsAdd)
    const e = addEndpoint({ ip: flags.ip, ifname: flags.ifname, mac: flags.mac, pinDir: flags['pin-dir'] })
    this.log(`endpoint ${e.ip} on ${e.ifname} (ifindex ${e.ifindex}, pod MAC ${e.podMac})`)
    return e
  }
}
