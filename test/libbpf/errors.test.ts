// SPDX-License-Identifier: Apache-2.0
// BpfError and errno mapping, plus the small system helpers.

import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  BPF_MAP_TYPE,
  BpfError,
  MapFd,
  ProgFd,
  closeFd,
  errnoName,
  errnoNumber,
  ifIndexToName,
  ifNameToIndex,
  isBpfError,
  isBpffs,
  libbpfVersion,
  mountBpffs,
  numPossibleCpus,
  objGet,
  unmount,
} from '../../src/libbpf/index.js'
import { run } from './helpers.js'

function catchErr(fn: () => unknown): BpfError {
  try {
    fn()
  } catch (e) {
    if (e instanceof BpfError) return e
    throw e
  }
  throw new Error('expected a BpfError')
}

describe('errno names', () => {
  it('maps numbers to symbolic codes, negative or not', () => {
    expect(errnoName(1)).toBe('EPERM')
    expect(errnoName(-2)).toBe('ENOENT')
    expect(errnoName(17)).toBe('EEXIST')
    expect(errnoName(524)).toBe('ENOTSUPP')
    expect(errnoName(4007)).toBe('LIBBPF_ERRNO__VERIFY')
    expect(errnoName(9999)).toBe('E9999')
    expect(errnoNumber('EBADF')).toBe(9)
  })

  it('formats "<op> failed: <code> (<strerror>)"', () => {
    const e = new BpfError('bpf_map_create', -1)
    expect(e).toBeInstanceOf(Error)
    expect(e.message).toBe('bpf_map_create failed: EPERM (Operation not permitted)')
    expect([e.op, e.errno, e.code, e.name]).toEqual(['bpf_map_create', 1, 'EPERM', 'BpfError'])
    expect(isBpfError(e, 'EPERM')).toBe(true)
    expect(isBpfError(e, 'ENOENT')).toBe(false)
  })
})

describe('BpfError from the kernel', () => {
  it('reports EBADF for a lookup on a bad fd', () => {
    const m = MapFd.create(BPF_MAP_TYPE.HASH, 'badfd', 4, 4, 1)
    expect(m.keySize).toBe(4) // shape is cached: the next call is the lookup itself
    closeFd(m.fd)
    const e = catchErr(() => m.lookup(Buffer.alloc(4)))
    expect(e.code).toBe('EBADF')
    expect(e.errno).toBe(9)
    expect(e.message).toMatch(/^bpf_map_lookup_elem\(map fd \d+\) failed: EBADF \(Bad file descriptor\)$/)
  })

  it('passes through the kernel errno for info on a bad fd (EBADFD on recent kernels)', () => {
    const e = catchErr(() => MapFd.fromFd(987654).info())
    expect(['EBADF', 'EBADFD']).toContain(e.code)
  })

  it('reports ENOENT for a missing pin and id', () => {
    expect(catchErr(() => MapFd.fromPin('/sys/fs/bpf/podnet-definitely-missing')).code).toBe('ENOENT')
    expect(catchErr(() => objGet('/nonexistent/pin')).code).toBe('ENOENT')
    expect(catchErr(() => ProgFd.fromId(0x7ffffff0)).code).toBe('ENOENT')
  })

  it('reports EINVAL for an impossible map', () => {
    const e = catchErr(() => MapFd.create(BPF_MAP_TYPE.HASH, 'bad', 0, 4, 1))
    expect(e.code).toBe('EINVAL')
    expect(e.message).toBe('bpf_map_create(bad) failed: EINVAL (Invalid argument)')
  })

  it('reports EBADF when closing a closed fd', () => {
    const m = MapFd.create(BPF_MAP_TYPE.ARRAY, 'closeme', 4, 4, 1)
    const fd = m.fd
    closeFd(fd)
    expect(catchErr(() => closeFd(fd)).code).toBe('EBADF')
  })
})

describe('system helpers', () => {
  it('reports the libbpf version and possible CPUs', () => {
    expect(libbpfVersion()).toBe('1.1')
    const possible = run('cat', ['/sys/devices/system/cpu/possible']).trim()
    const last = Number(possible.split(/[-,]/).pop())
    expect(numPossibleCpus()).toBe(last + 1)
  })

  it('translates interface names and indexes', () => {
    expect(ifNameToIndex('lo')).toBe(1)
    expect(ifIndexToName(1)).toBe('lo')
    expect(ifIndexToName(0x7ffffff0)).toBeNull()
    expect(() => ifNameToIndex('pn-nope0')).toThrow(/pn-nope0/)
  })

  it('mounts a bpffs and recognises it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pn-libbpf-fs-'))
    const mnt = join(dir, 'a', 'b')
    try {
      expect(isBpffs(dir)).toBe(false)
      expect(isBpffs(join(dir, 'missing'))).toBe(false)
      mountBpffs(mnt)
      expect(existsSync(mnt)).toBe(true)
      expect(isBpffs(mnt)).toBe(true)
      unmount(mnt)
      expect(isBpffs(mnt)).toBe(false)
      const e = catchErr(() => unmount(mnt))
      expect(e.code).toBe('EINVAL')
    } finally {
      try {
        unmount(mnt)
      } catch {
        // not mounted
      }
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
