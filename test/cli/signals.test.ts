// The SIGINT/SIGTERM scope of long-running commands (lab up, metrics --watch,
// agent): the handler runs on a signal, and none is left behind afterwards.
import { describe, expect, it } from 'vitest'
import { onInterrupt, sleepUnless } from '../../src/cli/signals.js'

describe('onInterrupt', () => {
  it('calls the handler on SIGINT and SIGTERM while the step runs, and removes it when the step ends', async () => {
    const before = [process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')]
    const seen: string[] = []
    const r = await onInterrupt(
      (sig) => seen.push(sig),
      async () => {
        process.emit('SIGINT', 'SIGINT')
        process.emit('SIGTERM', 'SIGTERM')
        return 7
      },
    )
    expect(r).toBe(7)
    expect(seen).toEqual(['SIGINT', 'SIGTERM'])
    expect([process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')]).toEqual(before)
  })

  it('removes the handler when the step throws', async () => {
    const before = process.listenerCount('SIGINT')
    await expect(
      onInterrupt(
        () => {},
        async () => Promise.reject(new Error('boom')),
      ),
    ).rejects.toThrow('boom')
    expect(process.listenerCount('SIGINT')).toBe(before)
  })
})

describe('sleepUnless', () => {
  it('returns early once stopped', async () => {
    const t0 = Date.now()
    let stop = false
    setTimeout(() => (stop = true), 50)
    await sleepUnless(5000, () => stop)
    expect(Date.now() - t0).toBeLessThan(1000)
  })
})
