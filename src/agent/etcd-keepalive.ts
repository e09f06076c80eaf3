// One LeaseKeepAlive stream for as long as the agent holds a lease (etcd's
// own clients do the same): a request every period on that stream, each
// answer renewing the lease. A stream that fails, ends or leaves a request
// unanswered for `timeoutMs` is dropped and a new one opened, with backoff.
// The lease ID is read at every request, so a re-granted lease keeps the stream.
import type { Etcd3 } from 'etcd3'

export interface KeepAliveHooks {
  /** the lease to keep alive now */
  leaseId(): string
  /** etcd's answer: the TTL left (≤ 0: the lease is gone) */
  onAnswer(ttlSeconds: number): void
  /** a stream failed (etcd unreachable, no quorum, no answer in time) */
  onFailure(e: Error): void
}

interface Stream {
  on(ev: 'data', fn: (r: { TTL: string }) => void): unknown
  on(ev: 'error' | 'end', fn: (e?: Error) => void): unknown
  write(req: { ID: string }): unknown
  end(): unknown
}

const BACKOFF_MS = [250, 500, 1000, 2000]

export class LeaseKeepAlive {
  /** streams opened so far (one while etcd answers) */
  streams = 0
  private stream: Stream | null = null
  private next: NodeJS.Timeout | null = null
  private waiting: NodeJS.Timeout | null = null
  private failures = 0
  private stopped = false

  constructor(
    private readonly client: Etcd3,
    private readonly periodMs: number,
    private readonly timeoutMs: number,
    private readonly hooks: KeepAliveHooks,
  ) {}

  start(): void {
    void this.open()
  }

  stop(): void {
    this.stopped = true
    this.clearTimers()
    this.close(this.stream)
  }

  private async open(): Promise<void> {
    if (this.stopped) return
    let s: Stream
    try {
      s = (await this.client.leaseClient.leaseKeepAlive()) as unknown as Stream
    } catch (e) {
      return this.fail(null, e as Error)
    }
    if (this.stopped) return void this.close(s)
    this.streams++
    this.stream = s
    s.on('data', (r) => this.answer(s, Number(r.TTL)))
    s.on('error', (e) => this.fail(s, e ?? new Error('keepalive stream failed')))
    s.on('end', () => this.fail(s, new Error('keepalive stream ended by etcd')))
    this.send(s)
  }

  private send(s: Stream): void {
    if (this.stopped || s !== this.stream) return
    this.waiting = setTimeout(() => this.fail(s, new Error(`no keepalive answer within ${this.timeoutMs} ms`)), this.timeoutMs)
    s.write({ ID: this.hooks.leaseId() })
  }

  private answer(s: Stream, ttl: number): void {
    if (this.stopped || s !== this.stream) return
    this.clearTimers()
    this.failures = 0
    this.hooks.onAnswer(ttl)
    this.next = setTimeout(() => this.send(s), this.periodMs)
  }

  private fail(s: Stream | null, e: Error): void {
    if (this.stopped || s !== this.stream) return
    this.clearTimers()
    this.stream = null
    this.close(s)
    this.hooks.onFailure(e)
    const delay = BACKOFF_MS[Math.min(this.failures++, BACKOFF_MS.length - 1)]!
    this.next = setTimeout(() => void this.open(), delay)
  }

  private close(s: Stream | null): void {
    if (!s) return
    s.on('error', () => {}) // a late error of a dropped stream is not news
    try {
      s.end()
    } catch {
      /* already closed */
    }
  }

  private clearTimers(): void {
    if (this.next) clearTimeout(this.next)
    if (this.waiting) clearTimeout(this.waiting)
    this.next = this.waiting = null
  }
}
