// The file datastore while its peers file is being written in place (an
// editor or `cat >` truncates, then writes): peers are never dropped for a
// half-written file, which is read again shortly (counted); a file that
// stays broken is rejected keeping the previous peers; an emptied file is
// taken as "no peers" once it stays empty.
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { FileDatastore } from '../../src/agent/file-datastore.js'
import { createLogger } from '../../src/agent/log.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const peer = (i: number) => `  - {name: node${i}, nodeIp: 192.168.77.${i}, podCidr: 10.244.${i}.0/24}\n`
const text = (n: number) => `peers:\n${Array.from({ length: n }, (_, i) => peer(i + 2)).join('')}`

let dir: string, file: string, ds: FileDatastore, ac: AbortController, errors: number
/** the fewest peers the store reported at any time (polled every 2 ms and at every change) */
let fewest: number
let poll: NodeJS.Timeout

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pnagt-file-'))
  file = join(dir, 'peers.yaml')
  writeFileSync(file, text(3))
  errors = 0
  const ctx = {
    nodeName: 'node1',
    nodeIp: '192.168.77.1',
    vxlanPort: 8472,
    leaseTtlMs: 30_000,
    log: createLogger('text', { write: () => {} }),
    events: { watchRestart() {}, error: () => errors++ },
  }
  ds = new FileDatastore(ctx, '10.244.1.0/24', file)
  await ds.start()
  ac = new AbortController()
  fewest = ds.peers().length
  const look = () => (fewest = Math.min(fewest, ds.peers().length))
  ds.watch(look, ac.signal)
  poll = setInterval(look, 2)
})
afterEach(() => {
  clearInterval(poll)
  ac.abort()
  rmSync(dir, { recursive: true, force: true })
})

/** Writes `content` in place: truncate, the first `cut` bytes, a pause, the rest. */
async function writeInPlace(content: string, cut: number, pauseMs: number): Promise<void> {
  const fd = openSync(file, 'w')
  writeSync(fd, content.slice(0, cut))
  await sleep(pauseMs)
  writeSync(fd, content.slice(cut))
  closeSync(fd)
}

describe('file datastore, peers file written in place', () => {
  it('never drops a peer while the file is half-written, and reads the whole file', async () => {
    expect(ds.peers()).toHaveLength(3)
    const next = text(4)
    await writeInPlace(next, next.length - 20, 300) // cut inside the last line
    await sleep(800)
    expect(ds.peers()).toHaveLength(4)
    expect(fewest).toBe(3)
    expect(ds.status().ready).toBe(true)
    expect(ds.status().detail?.['halfWrittenReads']).toBeGreaterThan(0)
    expect(errors).toBeGreaterThan(0)
  })

  it('keeps the peers through a truncation followed by a slow write', async () => {
    await writeInPlace(text(3), 0, 300)
    await sleep(800)
    expect(fewest).toBe(3)
    expect(ds.peers()).toHaveLength(3)
  })

  it('rejects a file that stays broken, keeping the previous peers, and takes a file that stays empty', async () => {
    writeFileSync(file, 'peers:\n  - {name: node2, nodeIp: 192.168.77.300, podCidr: 10.244.2.0/24}\n')
    await sleep(1500)
    expect(ds.status()).toMatchObject({ ready: false })
    expect(ds.status().reason).toMatch(/nodeIp: must be an IPv4 address/)
    expect(ds.peers()).toHaveLength(3)
    writeFileSync(file, '')
    await sleep(1500)
    expect(ds.peers()).toEqual([])
    expect(ds.status().ready).toBe(true)
  })
})
