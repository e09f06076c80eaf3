import * as Args from '@oclif/core/args'
import { BaseCommand } from '../../cli/base.js'
import { deleteRoute, type RouteView } from '../../services/routes.js'

export default class RoutesDel extends BaseCommand {
  static override summary = "Remove a peer node's pod-CIDR route"
  static override examples = ['<%= config.bin %> routes del 10.244.2.0/24']
  static override enableJsonFlag = true
  static override args = { cidr: Args.string({ description: 'the pod CIDR', required: true }) }

  async run(): Promise<RouteView> {
    const { args, flags } = await this.parse(RoutesDel)
    const r = deleteRoute(args.cidr, flags['pin-dir'])
    this.log(`route ${r.cidr} removed`)
    return r
  }
}
