// SPDX-License-Identifier: Apache-2.0
// Turning C return conventions into BpfError.

import { BpfError } from './errors.js'
import { errno, isNull, type Ptr } from './ffi.js'

const EINVAL = 22

/** libbpf int APIs: ret < 0 is -errno. */
export function check(ret: number, op: string, log?: string): number {
  if (ret < 0) throw new BpfError(op, -ret, log)
  return ret
}

/** libbpf pointer APIs: NULL + errno. Call right after the C call so errno is still fresh. */
export function checkPtr(p: Ptr, op: string, log?: () => string): Ptr {
  if (isNull(p)) {
    const e = errno()
    throw new BpfError(op, e > 0 ? e : EINVAL, log?.())
  }
  return p
}

/** libc APIs: -1 + errno. */
export function checkLibc(ret: number, op: string): number {
  if (ret === -1) {
    const e = errno()
    throw new BpfError(op, e > 0 ? e : EINVAL)
  }
  return ret
}
