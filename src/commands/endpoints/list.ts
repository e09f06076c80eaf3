import { BaseCommand, table } from '../../cli/base.js'
import { listEndpoints, type EndpointView } from '../../services/endpoints.js'

export default class EndpointsList extends BaseCommand {
  static override summary = 'List local pod endpoints (the podnet_endpoints map)'
  static override examples = ['<%= config.bin %> endpoints list', '<%= config.bin %> endpoints list --json']
  static override enableJsonFlag = true

  async run(): Promise<EndpointView[]> {
    const { flags } = await this.parse(EndpointsList)
    const eps = listEndpoints(flags['pin-dir'])
    if (!this.jsonEnabled())
      this.log(
        table(
          ['IP', 'IFNAME', 'IFINDEX', 'POD MAC', 'HOST MAC'],
          eps.map((e) => [e.ip, e.ifname ?? '?', e.ifindex, e.podMac, e.hostMac]),
        ),
      )
    return eps
  }
}
