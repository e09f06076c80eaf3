import * as Flags from '@oclif/core/flags'
import { BaseCommand } from '../../cli/base.js'
import { deleteEndpoint, type Endpoint } from '../../services/endpoints.js'

export default class EndpointsDel extends BaseCommand {
  static override summary = 'Remove a local pod endpoint'
  static override examples = ['<%= config.bin %> endpoints del --ip 10.244.1.10']
  static override enableJsonFlag = true
  static override flags = {
    ip: Flags.string({ description: "the pod's IPv4 address", required: true, helpValue: 'IP' }),
  }

  async run(): Promise<Endpoint> {
    const { flags } = await this.parse(EndpointsDel)
    const e = deleteEndpoint(flags.ip, flags['pin-dir'])
    this.log(`endpoint ${e.ip} removed`)
    return e
  }
}
