// RouteMap's bulk operations against a real LPM trie (the kernel's, not a
// mock): batch writes and deletes, absent CIDRs skipped, lookups agree after.
import { afterEach, describe, expect, it } from 'vitest'
import { MapFd } from '../../src/libbpf/index.js'
import { RouteMap } from '../../src/datapath/maps.js'

const BPF_MAP_TYPE_LPM_TRIE = 11
const BPF_F_NO_PREALLOC = 1

function cidr(i: number): string {
  return `10.${100 + (i >> 8)}.${i & 255}.0/24`
}

describe('RouteMap bulk operations', () => {
  let fd: MapFd | undefined
  afterEach(() => fd?.close())

  it('writes 2,000 routes, deletes 1,200 of them plus absent ones, and keeps exactly the rest', () => {
    fd = MapFd.create(BPF_MAP_TYPE_LPM_TRIE, 'pn_test_routes', 8, 8, 4096, BPF_F_NO_PREALLOC)
    const m = new RouteMap(fd)
    const all = Array.from({ length: 2000 }, (_, i) => ({ cidr: cidr(i), nodeIp: `192.168.77.${1 + (i % 200)}`, vxlan: i % 3 === 0 }))
    m.setMany(all)
    expect(m.list()).toHaveLength(2000)

    const gone = all.filter((_, i) => i % 5 !== 0 && i % 7 !== 0).map((r) => r.cidr) // not multiples of 5 or 7
    const absent = ['10.250.0.0/24', '10.250.1.0/24', '10.0.0.0/8']
    // absent keys at the start, in the middle and at the end of the batch
    const n = m.deleteMany([absent[0]!, ...gone.slice(0, 600), absent[1]!, ...gone.slice(600), absent[2]!])
    expect(n).toBe(gone.length)

    const left = new Set(m.list().map((r) => r.cidr))
    const want = all.filter((_, i) => i % 5 === 0 || i % 7 === 0)
    expect(left.size).toBe(want.length)
    for (const r of want) expect(m.get(r.cidr), r.cidr).toEqual(r)
    for (const c of gone.slice(0, 50)) expect(m.get(c)).toBeNull()
    expect(m.deleteMany([])).toBe(0)
  })
})
