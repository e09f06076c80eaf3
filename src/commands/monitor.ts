import * as Flags from '@oclif/core/flags'
import { BaseCommand, enumFlag } from '../cli/base.js'
import { EventFilterSchema, Monitor as EventMonitor, formatEvent } from '../services/inspect/monitor.js'

export default class Monitor extends BaseCommand {
  static override summary = 'Stream drop and forwarding events from the datapath'
  static override description =
    "Reads the podnet_events ring buffer: drops are always reported by the programs (at most 64 events per second per CPU, program and reason; `metrics` counts every one); forwarding traces (local, direct, VXLAN, stack) are emitted only while a monitor asks for them (--type trace or all), so tracing costs nothing otherwise. One line per event; --json prints one JSON object per line. Run it in the node's network namespace so device names resolve."
  static override examples = [
    '<%= config.bin %> monitor',
    '<%= config.bin %> monitor --type all --ip 10.244.1.11',
    '<%= config.bin %> monitor --type drop --json',
  ]
  static override flags = {
    type: enumFlag(EventFilterSchema, { description: 'events to show', default: 'drop' }),
    ip: Flags.string({ description: 'only packets from or to this IPv4 address', helpValue: 'ADDR' }),
    json: Flags.boolean({ description: 'one JSON object per event and line' }),
    count: Flags.integer({ description: 'exit after this many events', min: 1 }),
    duration: Flags.integer({ description: 'exit after this many seconds', min: 1 }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Monitor)
    let seen = 0
    let done: () => void = () => {}
    const finished = new Promise<void>((r) => (done = r))
    const mon = new EventMonitor({ pinDir: flags['pin-dir'], type: flags.type ?? 'drop', ip: flags.ip }, (e) => {
      if (flags.count !== undefined && seen >= flags.count) return
      seen++
      process.stdout.write(`${flags.json ? JSON.stringify(e) : formatEvent(e)}\n`)
      if (flags.count !== undefined && seen >= flags.count) done()
    })
    const timer = flags.duration ? setTimeout(done, flags.duration * 1000) : null
    process.once('SIGINT', done)
    process.once('SIGTERM', done)
    try {
      mon.start()
      process.stderr.write(
        `monitoring ${flags.type === 'all' ? 'drops and traces' : `${flags.type}s`}${flags.ip ? ` of ${flags.ip}` : ''} on ${mon.pinDir}${mon.tracing ? ' (tracing on while this runs)' : ''}; Ctrl-C to stop\n`,
      )
      await finished
    } finally {
      if (timer) clearTimeout(timer)
      mon.stop()
    }
  }
}
