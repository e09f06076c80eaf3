// Loaded into CLI processes with NODE_OPTIONS=--import=<this file>: on exit,
// appends "<pid> <peak RSS in KiB>" to $PNB_RSS_FILE. Lets the benchmark read
// the CLI's peak RSS without GNU time.
import { appendFileSync } from 'node:fs'

const file = process.env['PNB_RSS_FILE']
if (file) {
  process.on('exit', () => {
    try {
      appendFileSync(file, `${process.pid} ${process.resourceUsage().maxRSS}\n`)
    } catch {
      /* never break the CLI being measured */
    }
  })
}
