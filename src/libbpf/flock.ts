// SPDX-License-Identifier: Apache-2.0
// flock(2) on a descriptor the caller opened (node:fs). The kernel drops the
// lock when its last descriptor closes, so a crashed holder never blocks the next.

import { BpfError } from './errors.js'
import { errno, libc } from './ffi.js'

const LOCK_SH = 1
const LOCK_EX = 2
const LOCK_NB = 4
const LOCK_UN = 8
const EWOULDBLOCK = 11
const EINTR = 4

/** Non-blocking flock: true when taken, false when another open file holds it. */
export function tryFlock(fd: number, exclusive = true): boolean {
  for (;;) {
    if (libc().flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) === 0) return true
    const e = errno()
    if (e === EWOULDBLOCK) return false
    if (e !== EINTR) throw new BpfError(`flock(${fd})`, e > 0 ? e : 22)
  }
}

export function unflock(fd: number): void {
  if (libc().flock(fd, LOCK_UN) !== 0) throw new BpfError(`flock(${fd}, LOCK_UN)`, errno() || 22)
}
