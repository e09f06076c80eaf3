import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import { BaseCommand, enumFlag } from '../../cli/base.js'
import { EncapSchema, addRoute, type RouteView } from '../../services/index.js'

export default class RoutesAdd extends BaseCommand {
  static override summary = "Route a peer node's pod CIDR (or change an existing route's node or encapsulation)"
  static override examples = [
    '<%= config.bin %> routes add 10.244.2.0/24 --node-ip 192.168.77.2',
    '<%= config.bin %> routes add 10.244.3.0/24 --node-ip 192.168.88.3 --encap vxlan',
  ]
  static override enableJsonFlag = true
  static override args = { cidr: Args.string({ description: "the peer node's pod CIDR", required: true }) }
  static override flags = {
    'node-ip': Flags.string({ description: "the peer node's underlay IP", required: true, helpValue: 'IP' }),
    encap: enumFlag(EncapSchema, {
      description: 'none (direct), vxlan, or auto (direct when the peer is on the device subnet) [default: the node mode]',
    }),
  }

  async run(): Promise<RouteView> {
    const { args, flags } = await this.parse(RoutesAdd)
    const r = addRoute({ cidr: args.cidr, nodeIp: flags['node-ip'], encap: flags.encap }, flags['pin-dir'])
    this.log(`route ${r.cidr} via node ${r.nodeIp} (${r.encap})`)
    return r
  }
}
