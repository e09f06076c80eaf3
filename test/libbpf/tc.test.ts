// SPDX-License-Identifier: Apache-2.0
// tc clsact hooks/filters and rtnetlink RTM_GETLINK on a veth pair whose peer
// lives in a temporary netns (host side in this netns, uniquely named). No
// traffic is sent; the netns and the veth are deleted in afterAll.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  BpfObject,
  ProgFd,
  getLink,
  ifIndexToName,
  ifNameToIndex,
  tcAttach,
  tcDetach,
  tcHookCreate,
  tcHookDestroy,
  tcQuery,
} from '../../src/libbpf/index.js'
import { compileFixture, run, tempEnv, tryRun, type TempEnv } from './helpers.js'

const ns = `pn-libbpf-${process.pid}`
const hostIf = `pnt${process.pid}h`.slice(0, 15)
const peerIf = `pnt${process.pid}p`.slice(0, 15)
let env: TempEnv
let obj: BpfObject
let ifindex: number

function ipJson<T>(args: string[]): T {
  return JSON.parse(run('ip', ['-j', ...args])) as T
}

function cleanup(): void {
  tryRun('ip', ['link', 'del', hostIf])
  tryRun('ip', ['netns', 'del', ns])
}

beforeAll(() => {
  cleanup()
  try {
    run('ip', ['netns', 'add', ns])
    run('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', peerIf, 'netns', ns])
    run('ip', ['-n', ns, 'link', 'set', peerIf, 'mtu', '1450'])
    env = tempEnv('pn-libbpf-tc')
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
    if (ifindex) tcHookDestroy(ifindex)
  } finally {
    obj?.close()
    cleanup()
    env?.cleanup()
  }
})

describe('tc clsact', () => {
  it('creates the hook once (EEXIST is success)', () => {
    expect(ifIndexToName(ifindex)).toBe(hostIf)
    expect(tcQuery(ifindex, 'ingress')).toBeNull() // no clsact yet
    expect(tcHookCreate(ifindex)).toBe(true)
    expect(tcHookCreate(ifindex)).toBe(false)
    expect(run('tc', ['qdisc', 'show', 'dev', hostIf])).toMatch(/clsact/)
  })

  it('attaches, queries, replaces and detaches a filter', () => {
    const cb = obj.program('t_cb')
    const ret = obj.program('t_ret')
    expect(tcQuery(ifindex, 'ingress')).toBeNull()

    const a = tcAttach(ifindex, 'ingress', cb.fd())
    expect(a.progId).toBe(cb.id())
    expect(tcQuery(ifindex, 'ingress')).toEqual({ progId: cb.id() })
    expect(tcQuery(ifindex, 'egress')).toBeNull()
    const shown = run('tc', ['filter', 'show', 'dev', hostIf, 'ingress'])
    expect(shown).toMatch(/direct-action/)
    expect(shown).toContain(`id ${cb.id()}`)

    // same handle/priority without replace: EEXIST
    expect(() => tcAttach(ifindex, 'ingress', ret.fd())).toThrow(expect.objectContaining({ code: 'EEXIST' }))
    const r = tcAttach(ifindex, 'ingress', ret.fd(), { replace: true })
    expect(r.progId).toBe(ret.id())
    expect(tcQuery(ifindex, 'ingress')).toEqual({ progId: ret.id() })

    // a second filter at another priority, on egress
    const e = tcAttach(ifindex, 'egress', cb.fd(), { handle: 2, priority: 7 })
    expect(tcQuery(ifindex, 'egress', { handle: 2, priority: 7 })).toEqual(e)
    expect(ProgFd.fromFd(cb.fd()).info().id).toBe(e.progId)

    expect(tcDetach(ifindex, 'ingress')).toBe(true)
    expect(tcDetach(ifindex, 'ingress')).toBe(false)
    expect(tcQuery(ifindex, 'ingress')).toBeNull()
    expect(tcDetach(ifindex, 'egress', { handle: 2, priority: 7 })).toBe(true)
  })

  it('rejects an invalid program fd with a BpfError', () => {
    expect(() => tcAttach(ifindex, 'ingress', 987654)).toThrow(expect.objectContaining({ op: expect.stringContaining('bpf_tc_attach') }))
  })

  it('destroys the hook, tolerating a missing one', () => {
    tcAttach(ifindex, 'ingress', obj.program('t_cb').fd())
    tcHookDestroy(ifindex)
    expect(run('tc', ['qdisc', 'show', 'dev', hostIf])).not.toMatch(/clsact/)
    expect(tcQuery(ifindex, 'ingress')).toBeNull()
    tcHookDestroy(ifindex) // no clsact: fine
    expect(tcHookCreate(ifindex)).toBe(true)
    tcHookDestroy(ifindex)
  })
})

describe('getLink (rtnetlink)', () => {
  it('reads a device in this netns', () => {
    const [host] = ipJson<{ address: string; mtu: number }[]>(['link', 'show', 'dev', hostIf])
    expect(getLink(ifindex)).toMatchObject({ ifindex, name: hostIf, mac: host!.address, mtu: host!.mtu, kind: 'veth' })
  })

  it("reads the veth peer's MAC in another netns via IFLA_TARGET_NETNSID", () => {
    const [d] = ipJson<{ link_index: number; link_netnsid: number }[]>(['-d', 'link', 'show', 'dev', hostIf])
    const [peer] = ipJson<{ ifindex: number; ifname: string; address: string; mtu: number }[]>(['-n', ns, 'link', 'show', 'dev', peerIf])
    expect(d!.link_index).toBe(peer!.ifindex)
    const l = getLink(d!.link_index, d!.link_netnsid)
    expect(l).toMatchObject({ ifindex: peer!.ifindex, name: peerIf, mac: peer!.address, mtu: 1450 })
  })

  it('fails with ENODEV for a missing device', () => {
    expect(() => getLink(0x7ffffff0)).toThrow(expect.objectContaining({ code: 'ENODEV' }))
  })
})
