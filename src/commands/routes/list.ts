import { BaseCommand, table } from '../../cli/base.js'
import { listRoutes, type RouteView } from '../../services/routes.js'

export default class RoutesList extends BaseCommand {
  static override summary = 'List peer pod-CIDR routes (the podnet_routes map)'
  static override examples = ['<%= config.bin %> routes list', '<%= config.bin %> routes list --json']
  static override enableJsonFlag = true

  async run(): Promise<RouteView[]> {
    const { flags } = await this.parse(RoutesList)
    const rs = listRoutes(flags['pin-dir'])
    if (!this.jsonEnabled())
      this.log(
        table(
          ['CIDR', 'NODE', 'ENCAP', 'REQUESTED', 'ORIGIN'],
          rs.map((r) => [r.cidr, r.nodeIp, r.encap, r.requested, r.origin ?? 'static']),
        ),
      )
    return rs
  }
}
