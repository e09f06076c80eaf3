import * as Flags from '@oclif/core/flags'
import { BaseCommand } from '../../cli/base.js'
import { serveMetrics } from '../../services/inspect/metrics.js'

export default class MetricsServe extends BaseCommand {
  static override summary = 'Expose the datapath counters for Prometheus on /metrics'
  static override description =
    'Serves podnet_forward_packets_total, podnet_forward_bytes_total, podnet_drop_packets_total and podnet_drop_bytes_total (labels reason, direction), plus podnet_endpoints and podnet_routes, read from the maps on every scrape. Runs until interrupted. --port 0 picks a free port (printed).'
  static override examples = ['<%= config.bin %> metrics serve', '<%= config.bin %> metrics serve --address 0.0.0.0 --port 9962']
  static override flags = {
    port: Flags.integer({ description: 'TCP port', default: 9962, min: 0, max: 65535, env: 'PODNET_METRICS_PORT' }),
    address: Flags.string({ description: 'address to listen on', default: '127.0.0.1', env: 'PODNET_METRICS_ADDRESS' }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(MetricsServe)
    const srv = await serveMetrics({ pinDir: flags['pin-dir'], address: flags.address, port: flags.port })
    this.log(`serving Prometheus metrics on ${srv.url} (Ctrl-C to stop)`)
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve)
      process.once('SIGTERM', resolve)
    })
    await srv.close()
  }
}
