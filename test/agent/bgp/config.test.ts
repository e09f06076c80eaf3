// BGP settings, the rendered BIRD configuration (checked by BIRD's own
// parser) and the birdc output parser.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { parseBgpConfig, parsePeerFlag } from '../../../src/agent/bgp/config.js'
import { renderBird, type RenderInput } from '../../../src/agent/bgp/render.js'
import { parseProtocols } from '../../../src/agent/bgp/birdc.js'
import { loadAgentConfig, flagsToConfig } from '../../../src/agent/config.js'
import { parseCidr } from '../../../src/util/ipv4.js'

const dir = mkdtempSync(join(tmpdir(), 'pnbgp-unit-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const msg = (fn: () => unknown) => {
  try {
    fn()
  } catch (e) {
    return String(e)
  }
  return 'no error'
}

const input = (over: Partial<RenderInput> = {}): RenderInput => ({
  bgp: parseBgpConfig({ peers: [{ address: '192.168.1.254', asn: 65000 }] }),
  self: { name: 'n1', nodeIp: '192.168.1.1', podCidr: '10.244.1.0/24' },
  clusterCidr: '10.244.0.0/16',
  nodes: [
    { name: 'n2', nodeIp: '192.168.1.2', podCidr: '10.244.2.0/24' },
    { name: 'n3', nodeIp: '192.168.2.3', podCidr: '10.244.3.0/24' },
  ],
  subnets: [parseCidr('192.168.1.0/24')],
  ...over,
})

describe('BGP configuration', () => {
  it('has the documented defaults', () => {
    expect(parseBgpConfig({})).toEqual({
      asn: 64512,
      mesh: true,
      peers: [],
      gracefulRestart: true,
      restartTime: 120,
      holdTime: 90,
      table: 201,
    })
  })

  it.each([
    [{ asn: 0 }, 'asn: AS numbers are 1..4294967294 (0 is reserved)'],
    [{ asn: 4294967295 }, 'asn: AS numbers are 1..4294967294'],
    [{ asn: 23456 }, 'asn: AS 23456 is AS_TRANS'],
    [{ peers: [{ address: 'tor1', asn: 65000 }] }, 'peers.0.address: must be an IPv4 address'],
    [
      {
        peers: [
          { address: '10.0.0.1', asn: 65000 },
          { address: '10.0.0.1', asn: 65001 },
        ],
      },
      'peers.1.address: duplicate peer 10.0.0.1 (also peers.0)',
    ],
    [{ table: 254 }, 'table: tables 253..255 are the kernel default/main/local tables'],
    [{ peers: [{ address: '10.0.0.1', asn: 65000, password: 'a"b' }] }, 'peers.0.password: no quotes'],
    [{ holdTime: 1 }, 'holdTime: hold time is 0 or at least 3 s'],
    [{ bogus: 1 }, "Unrecognized key(s) in object: 'bogus'"],
  ])('refuses %j with a message naming the field', (cfg, expected) => {
    expect(msg(() => parseBgpConfig(cfg))).toContain(expected)
  })

  it('parses --bgp-peer ADDRESS:ASN and refuses a name or a missing ASN', () => {
    expect(parsePeerFlag('192.168.1.254:65000')).toEqual({ address: '192.168.1.254', asn: 65000 })
    expect(msg(() => parsePeerFlag('tor:65000'))).toContain('"tor" is not an IPv4 address')
    expect(msg(() => parsePeerFlag('192.168.1.254'))).toContain('use ADDRESS:ASN')
  })

  it('needs --cluster-cidr for BGP with the file datastore, and refuses BGP with VXLAN-only mode', () => {
    const base = { datastore: 'file', podCidr: '10.244.1.0/24', routing: 'bgp' }
    expect(msg(() => loadAgentConfig(base))).toContain(
      'clusterCidr: BGP routing with the file datastore needs the cluster network (--cluster-cidr)',
    )
    expect(msg(() => loadAgentConfig({ ...base, clusterCidr: '10.244.0.0/16', mode: 'vxlan' }))).toContain('mode: BGP routes are direct')
  })

  it('takes --bgp-* flags into the bgp section, over the file', () => {
    const file = join(dir, 'agent.yaml')
    writeFileSync(
      file,
      'datastore: file\npodCidr: 10.244.1.0/24\nclusterCidr: 10.244.0.0/16\nrouting: bgp\nbgp:\n  asn: 65100\n  holdTime: 6\n',
    )
    const c = loadAgentConfig(flagsToConfig({ 'bgp-peer': ['192.168.1.254:65000'], 'bgp-mesh': false }), file)
    expect(c.bgp).toMatchObject({ asn: 65100, holdTime: 6, mesh: false, peers: [{ address: '192.168.1.254', asn: 65000 }] })
  })
})

describe('BIRD configuration', () => {
  it('renders a config that BIRD itself accepts', () => {
    const file = join(dir, 'bird.conf')
    writeFileSync(file, renderBird(input()).text)
    execFileSync('bird', ['-p', '-c', file]) // throws on a parse error
  })

  it('announces only the own CIDR and writes only BGP routes into the dedicated table', () => {
    const { text } = renderBird(input())
    expect(text).toContain('route 10.244.1.0/24 blackhole;')
    expect(text).toMatch(/kernel table 201;[\s\S]*export where source = RTS_BGP;/)
    expect(text).toContain('export where proto = "podnet_own";')
  })

  it('meshes with nodes on its subnet only, and peers with the router', () => {
    const r = renderBird(input())
    expect(r.sessions.map((s) => [s.name, s.kind])).toEqual([
      ['peer_192_168_1_254', 'router'],
      ['mesh_192_168_1_2', 'mesh'],
    ])
    expect(r.skipped).toEqual(['n3 (192.168.2.3)'])
    expect(renderBird(input({ bgp: parseBgpConfig({ mesh: false }) })).sessions).toEqual([])
  })

  it("accepts a node's CIDR only at its own length, from the owner or a router whose path starts at the cluster AS", () => {
    const { text } = renderBird(input())
    expect(text).toContain('if net ~ [ 10.244.2.0/24+ ] then {')
    expect(text).toContain('if net.len != 24 then')
    expect(text).toContain('if from = 192.168.1.2 || (from_router && bgp_path.len > 0 && bgp_path.last = 64512) then return true;')
    expect(text).toContain('if ! (net ~ [ 10.244.0.0/16{16,32} ])')
  })

  it('refuses a peer that is the node itself and a pod CIDR outside the cluster network', () => {
    expect(msg(() => renderBird(input({ bgp: parseBgpConfig({ peers: [{ address: '192.168.1.1', asn: 65000 }] }) })))).toContain(
      "BGP peer 192.168.1.1 is this node's own IP",
    )
    expect(msg(() => renderBird(input({ clusterCidr: '10.96.0.0/16' })))).toContain(
      'pod CIDR 10.244.1.0/24 is not inside the cluster network',
    )
  })
})

describe('birdc output', () => {
  const out = `Name       Proto      Table      State  Since         Info
device1    Device     ---        up     2026-11-30 07:28:51
podnet_own Static     master4    up     2026-11-30 07:28:51
peer_192_168_1_254 BGP        ---        up     2026-11-30 07:28:56  Established
  Description:    router
  BGP state:          Established
    Neighbor address: 192.168.1.254
    Neighbor AS:      65000
  Channel ipv4
    State:          UP
    Routes:         1 imported, 3 filtered, 1 exported, 1 preferred
    Route change stats:     received   rejected   filtered    ignored   accepted

mesh_192_168_1_2 BGP        ---        start  2026-11-30 07:28:51  Active        Socket: No route to host
  Description:    node n2
  BGP state:          Active
    Neighbor address: 192.168.1.2
    Neighbor AS:      64512
`
  it('reads every BGP session with its state, uptime and prefix counts', () => {
    const s = parseProtocols(out, Date.parse('2026-11-30T07:29:56'))
    expect(s).toEqual([
      {
        name: 'peer_192_168_1_254',
        description: 'router',
        peer: '192.168.1.254',
        asn: 65000,
        state: 'Established',
        since: '2026-11-30 07:28:56',
        uptimeSeconds: 60,
        info: 'Established',
        prefixes: { received: 4, accepted: 1, rejected: 3 },
      },
      {
        name: 'mesh_192_168_1_2',
        description: 'node n2',
        peer: '192.168.1.2',
        asn: 64512,
        state: 'Active',
        since: '2026-11-30 07:28:51',
        uptimeSeconds: 65,
        info: 'Active        Socket: No route to host',
        prefixes: { received: 0, accepted: 0, rejected: 0 },
      },
    ])
  })
})
