// SPDX-License-Identifier: Apache-2.0
// BPF ring buffer consumer (libbpf ring_buffer__*), records delivered to a JS callback.

import { check, checkPtr } from './check.js'
import { libbpf, ringBufferCallback, type Ptr } from './ffi.js'

const EINTR = 4

export class RingBuffer {
  private rb: Ptr | null
  /** The native callback: must stay referenced while libbpf may call it. */
  private cb: Buffer | null
  private pending: unknown = undefined
  private failed = false

  /** `onRecord` gets a copy of each record; if it throws, consume()/poll() stop and rethrow. */
  constructor(mapFd: number, onRecord: (data: Buffer) => void) {
    this.cb = ringBufferCallback((data) => {
      if (this.failed) return -1
      try {
        onRecord(data)
        return 0
      } catch (e) {
        this.failed = true
        this.pending = e
        return -1
      }
    })
    const p = libbpf().ring_buffer__new(mapFd, this.cb, null, null)
    this.rb = checkPtr(p, `ring_buffer__new(map fd ${mapFd})`)
  }

  private h(): Ptr {
    if (this.rb === null) throw new Error('RingBuffer is closed')
    return this.rb
  }

  private result(ret: number, op: string): number {
    if (this.failed) {
      const e = this.pending
      this.failed = false
      this.pending = undefined
      throw e
    }
    if (ret === -EINTR) return 0
    return check(ret, op)
  }

  /** Deliver every available record without waiting; returns how many. */
  consume(): number {
    return this.result(libbpf().ring_buffer__consume(this.h()), 'ring_buffer__consume')
  }

  /** epoll-wait up to `timeoutMs` (blocks the event loop!) then deliver; returns how many. */
  poll(timeoutMs: number): number {
    return this.result(libbpf().ring_buffer__poll(this.h(), timeoutMs), 'ring_buffer__poll')
  }

  /** The epoll fd that becomes readable when records are available. */
  epollFd(): number {
    return libbpf().ring_buffer__epoll_fd(this.h())
  }

  /** Idempotent. */
  close(): void {
    if (this.rb === null) return
    const p = this.rb
    this.rb = null
    libbpf().ring_buffer__free(p)
    this.cb = null
  }
}
