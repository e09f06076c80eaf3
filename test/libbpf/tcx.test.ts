// SPDX-License-Identifier: Apache-2.0
// tcx links through the libbpf layer (bpf_link_create with BPF_TCX_*): create,
// pin, query, update in place, detach, release, order, and the link left
// defunct by its device's removal. On a veth pair whose peer lives in a
// temporary netns (host side here, down, so no traffic); all deleted in afterAll.
// On a kernel without tcx (< 6.6) the probe must say so and link creation fail
// with EINVAL: that is what attach's fallback to tc filters relies on.

import { existsSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { release } from 'node:os'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  BpfObject,
  bpfLinkInfo,
  closeFd,
  ifNameToIndex,
  isBpfError,
  linkDetach,
  linkUpdate,
  objGet,
  objPin,
  tcxLinkCreate,
  tcxQuery,
  tcxSupported,
} from '../../src/libbpf/index.js'
import { compileFixture, run, tempEnv, tryRun, type TempEnv } from './helpers.js'

const ns = `pnperf-tcx-${process.pid}`
const hostIf = `pnperf${process.pid % 100000}h`
const peerIf = `pnperf${process.pid % 100000}p`
let env: TempEnv
let obj: BpfObject
let ifindex: number

const [major, minor] = release().split('.').map(Number) as [number, number]
const kernelHasTcx = major > 6 || (major === 6 && minor >= 6)

function cleanup(): void {
  tryRun('ip', ['link', 'del', hostIf])
  tryRun('ip', ['netns', 'del', ns])
}

beforeAll(() => {
  cleanup()
  try {
    run('ip', ['netns', 'add', ns])
    run('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', peerIf, 'netns', ns])
    env = tempEnv('pnperf-tcx')
    obj = BpfObject.open(compileFixture('t_prog', env.dir), { pinRoot: env.bpffs })
    obj.load()
  } catch (e) {
    cleanup()
    throw e
  }
  ifindex = ifNameToIndex(hostIf)
})

afterAll(() => {
  try {
    obj?.close()
  } finally {
    cleanup()
    env?.cleanup()
  }
})

describe('tcx links', () => {
  it(`probes tcx as the kernel version says (${release()}: ${kernelHasTcx ? 'has' : 'has not'} tcx)`, () => {
    expect(tcxSupported(ifindex)).toBe(kernelHasTcx)
    if (!kernelHasTcx) {
      let err: unknown
      try {
        tcxLinkCreate(ifindex, 'ingress', obj.program('t_cb').fd())
      } catch (e) {
        err = e
      }
      expect(isBpfError(err, 'EINVAL')).toBe(true)
    }
  })

  it.runIf(kernelHasTcx)('creates, pins, queries, updates in place and detaches a link', () => {
    const cb = obj.program('t_cb')
    const ret = obj.program('t_ret')
    const pin = join(env.bpffs, 'link_in')
    expect(tcxQuery(ifindex, 'ingress')).toEqual([])
    const fd = tcxLinkCreate(ifindex, 'ingress', cb.fd())
    objPin(fd, pin)
    closeFd(fd)
    // the pin holds it: still attached with no fd open
    expect(tcxQuery(ifindex, 'ingress')).toEqual([cb.id()])
    expect(tcxQuery(ifindex, 'egress')).toEqual([])
    const l = objGet(pin)
    try {
      const info = bpfLinkInfo(l)
      expect(info.progId).toBe(cb.id())
      expect(info.tcx).toEqual({ ifindex, point: 'ingress' })
      linkUpdate(l, ret.fd())
      expect(tcxQuery(ifindex, 'ingress')).toEqual([ret.id()])
      expect(bpfLinkInfo(l).id).toBe(info.id) // same link
      linkDetach(l)
      expect(tcxQuery(ifindex, 'ingress')).toEqual([])
      expect(bpfLinkInfo(l).tcx).toEqual({ ifindex: 0, point: 'ingress' }) // defunct, still pinned
    } finally {
      closeFd(l)
      unlinkSync(pin)
    }
  })

  it.runIf(kernelHasTcx)('appends a second link after the first, and releases an unpinned link with its last fd', () => {
    const a = tcxLinkCreate(ifindex, 'egress', obj.program('t_cb').fd())
    const b = tcxLinkCreate(ifindex, 'egress', obj.program('t_ret').fd())
    expect(tcxQuery(ifindex, 'egress')).toEqual([obj.program('t_cb').id(), obj.program('t_ret').id()])
    closeFd(a)
    expect(tcxQuery(ifindex, 'egress')).toEqual([obj.program('t_ret').id()])
    closeFd(b)
    expect(tcxQuery(ifindex, 'egress')).toEqual([])
  })

  it.runIf(kernelHasTcx)('leaves a pinned link defunct (ifindex 0) when its device is deleted', () => {
    const dev = `pnperf${process.pid % 100000}d`
    run('ip', ['link', 'add', dev, 'type', 'veth', 'peer', 'name', `${dev}p`]) // deleted with it
    const pin = join(env.bpffs, 'link_dummy')
    try {
      const fd = tcxLinkCreate(ifNameToIndex(dev), 'ingress', obj.program('t_cb').fd())
      objPin(fd, pin)
      closeFd(fd)
    } finally {
      tryRun('ip', ['link', 'del', dev])
    }
    const l = objGet(pin)
    try {
      expect(bpfLinkInfo(l).tcx?.ifindex).toBe(0)
    } finally {
      closeFd(l)
      if (existsSync(pin)) unlinkSync(pin)
    }
  })
})
