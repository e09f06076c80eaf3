// The one link reader (rtnetlink RTM_GETLINK by name and as a dump) against
// iproute2's view of the same devices, in a temporary netns: veth pairs
// (peer index, peer netns id), VXLAN devices (VNI, port, collect_md,
// learning), flags, MTU, MAC. The reader runs in a child inside the netns.
import { spawnSync } from 'node:child_process'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { run, tryRun } from './helpers.js'

const ROOT = resolve(import.meta.dirname, '..', '..')
const ns = `pncore-lk${process.pid.toString(36)}`
const peerNs = `${ns}p`

interface IpLink {
  ifindex: number
  ifname: string
  mtu: number
  address?: string
  flags: string[]
  link_index?: number
  /** the peer's name, instead of link_index, when it is in the same netns */
  link?: string
  link_netnsid?: number
  linkinfo?: { info_kind?: string; info_data?: { id?: number; port?: number; external?: boolean; learning?: boolean } }
}

/** listLinks() and getLinkByName(names) as seen from inside `ns`. */
function readerInNs(names: string[]): { all: Record<string, unknown>[]; byName: (Record<string, unknown> | null)[] } {
  const mod = join(ROOT, 'dist', 'libbpf', 'index.js')
  const code = `const m = await import(${JSON.stringify(mod)}); console.log(JSON.stringify({ all: m.listLinks(), byName: ${JSON.stringify(names)}.map((n) => m.getLinkByName(n)) }))`
  const r = spawnSync('ip', ['netns', 'exec', ns, 'node', '--input-type=module', '-e', code], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(r.stderr)
  return JSON.parse(r.stdout) as ReturnType<typeof readerInNs>
}

beforeAll(() => {
  run('ip', ['netns', 'add', ns])
  run('ip', ['netns', 'add', peerNs])
  run('ip', ['-n', ns, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb'])
  run('ip', ['-n', ns, 'link', 'add', 'vc', 'mtu', '1400', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', peerNs])
  run('ip', ['-n', ns, 'link', 'add', 'vx0', 'type', 'vxlan', 'external', 'dstport', '8472', 'nolearning'])
  run('ip', ['-n', ns, 'link', 'add', 'vx1', 'type', 'vxlan', 'id', '42', 'dstport', '4789', 'learning'])
  run('ip', ['-n', ns, 'link', 'set', 'va', 'up'])
})

afterAll(() => {
  tryRun('ip', ['netns', 'del', ns])
  tryRun('ip', ['netns', 'del', peerNs])
})

describe('the rtnetlink link reader', () => {
  it('agrees with iproute2 on every device of a namespace', () => {
    const ip = JSON.parse(run('ip', ['-n', ns, '-j', '-d', 'link', 'show'])) as IpLink[]
    const { all } = readerInNs([])
    const want = ip.map((j) => {
      const kind = j.linkinfo?.info_kind ?? null
      const d = j.linkinfo?.info_data ?? {}
      return {
        ifindex: j.ifindex,
        name: j.ifname,
        mtu: j.mtu,
        mac: j.address ?? '',
        up: j.flags.includes('UP'),
        kind,
        peerIfindex: j.link_index ?? ip.find((x) => x.ifname === j.link)?.ifindex ?? null,
        peerNetnsid: j.link_netnsid ?? null,
        ...(kind === 'vxlan'
          ? { vxlan: { id: d.id ?? null, port: d.port ?? null, external: d.external === true, learning: d.learning === true } }
          : {}),
      }
    })
    expect(all).toEqual(want)
    // the cases that matter are really there
    expect(all.find((l) => l.name === 'vx0')).toMatchObject({ kind: 'vxlan', vxlan: { port: 8472, external: true, learning: false } })
    expect(all.find((l) => l.name === 'vx1')).toMatchObject({ vxlan: { id: 42, port: 4789, external: false, learning: true } })
    expect(all.find((l) => l.name === 'vc')).toMatchObject({ kind: 'veth', mtu: 1400, peerNetnsid: expect.any(Number) })
    expect(all.find((l) => l.name === 'va')).toMatchObject({ up: true, peerIfindex: all.find((l) => l.name === 'vb')!.ifindex })
  })

  it('finds a device by name, and null for a missing or impossible name', () => {
    const { all, byName } = readerInNs(['vx0', 'nosuchdev', 'a-name-longer-than-15'])
    expect(byName[0]).toEqual(all.find((l) => l.name === 'vx0'))
    expect(byName[1]).toBeNull()
    expect(byName[2]).toBeNull()
  })
})
