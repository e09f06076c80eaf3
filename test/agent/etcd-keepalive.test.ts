// The lease keepalive over one stream, against a fake etcd client: one
// stream while etcd answers; a failed, ended or silent stream is dropped and
// a new one opened with growing backoff; the lease ID is read per request.
import { EventEmitter } from 'node:events'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Etcd3 } from 'etcd3'
import { LeaseKeepAlive } from '../../src/agent/etcd-keepalive.js'

class FakeStream extends EventEmitter {
  writes: string[] = []
  ended = false
  write(req: { ID: string }): void {
    this.writes.push(req.ID)
  }
  end(): void {
    this.ended = true
  }
}

function setup(answer: (s: FakeStream, id: string) => void) {
  const streams: FakeStream[] = []
  const client = {
    leaseClient: {
      leaseKeepAlive: async () => {
        const s = new FakeStream()
        const write = s.write.bind(s)
        s.write = (req) => (write(req), answer(s, req.ID))
        streams.push(s)
        return s
      },
    },
  } as unknown as Etcd3
  let id = '7'
  const answers: number[] = []
  const failures: string[] = []
  const ka = new LeaseKeepAlive(client, 100, 50, {
    leaseId: () => id,
    onAnswer: (ttl) => answers.push(ttl),
    onFailure: (e) => failures.push(e.message),
  })
  return { ka, streams, answers, failures, setId: (v: string) => (id = v) }
}

afterEach(() => {
  vi.useRealTimers()
})

describe('LeaseKeepAlive', () => {
  it('keeps one stream for every keepalive while etcd answers, with the current lease ID', async () => {
    vi.useFakeTimers()
    const t = setup((s) => queueMicrotask(() => s.emit('data', { TTL: '6' })))
    t.ka.start()
    await vi.advanceTimersByTimeAsync(350)
    t.setId('8')
    await vi.advanceTimersByTimeAsync(200)
    t.ka.stop()
    expect(t.streams).toHaveLength(1)
    expect(t.ka.streams).toBe(1)
    expect(t.streams[0]!.writes.length).toBeGreaterThanOrEqual(5)
    expect(t.streams[0]!.writes.at(-1)).toBe('8')
    expect(t.failures).toEqual([])
    expect(t.answers.every((x) => x === 6)).toBe(true)
    expect(t.streams[0]!.ended).toBe(true)
  })

  it('drops a failing or silent stream and opens another with growing backoff', async () => {
    vi.useFakeTimers()
    let n = 0
    // stream 1 errors, stream 2 never answers, stream 3 ends, stream 4 answers
    const t = setup((s) => {
      const k = ++n
      if (k === 1) queueMicrotask(() => s.emit('error', new Error('14 UNAVAILABLE')))
      else if (k === 3) queueMicrotask(() => s.emit('end'))
      else if (k >= 4) queueMicrotask(() => s.emit('data', { TTL: '6' }))
    })
    t.ka.start()
    await vi.advanceTimersByTimeAsync(1) // t=1: stream 1 failed
    expect(t.failures).toEqual(['14 UNAVAILABLE'])
    await vi.advanceTimersByTimeAsync(248) // t=249: backoff 250 ms, not over yet
    expect(t.streams).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(2) // t=251: stream 2 open
    expect(t.streams).toHaveLength(2)
    await vi.advanceTimersByTimeAsync(50) // t=301: unanswered for 50 ms
    expect(t.failures[1]).toBe('no keepalive answer within 50 ms')
    await vi.advanceTimersByTimeAsync(498) // t=799: backoff 500 ms, not over yet
    expect(t.streams).toHaveLength(2)
    await vi.advanceTimersByTimeAsync(3) // t=802: stream 3 opened and ended by etcd
    expect(t.streams).toHaveLength(3)
    expect(t.failures[2]).toBe('keepalive stream ended by etcd')
    await vi.advanceTimersByTimeAsync(1000) // t=1802: backoff 1 s, stream 4 answers
    expect(t.streams).toHaveLength(4)
    expect(t.answers).toEqual([6])
    expect(t.streams.slice(0, 3).every((s) => s.ended)).toBe(true)
    await vi.advanceTimersByTimeAsync(1000)
    expect(t.streams).toHaveLength(4) // healthy again: no more streams
    t.ka.stop()
  })
})
