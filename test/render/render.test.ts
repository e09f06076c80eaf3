// The commands' text output (src/render): pure functions of what the services
// return, so they are checked here without root, a lab or a datapath.
import { describe, expect, it } from 'vitest'
import { renderLab, renderLabStatus, renderLabUp } from '../../src/render/lab.js'
import { renderMetrics, renderSample } from '../../src/render/metrics.js'
import { renderExplanation } from '../../src/render/explain.js'
import { renderInline, writeDumpJson, writeDumpText } from '../../src/render/maps.js'
import { renderNodeStatus } from '../../src/render/status.js'
import { renderAttach } from '../../src/render/attach.js'
import { bgpSessionCells } from '../../src/render/bgp.js'
import type { LabStatus, UpResult } from '../../src/services/lab/lab.js'
import type { LabState } from '../../src/services/lab/state.js'
import type { Explanation } from '../../src/services/inspect/explain.js'
import type { MapDump } from '../../src/services/inspect/maps.js'

const node = (name: string, ip: string, paths: LabState['nodes'][number]['paths']): LabState['nodes'][number] => ({
  name,
  ns: `pnlab-t-${name}`,
  ip,
  subnet: 'a',
  podCidr: '10.244.1.0/24',
  pinDir: `/sys/fs/bpf/pnlab-t-${name}`,
  underlayPort: `u-${name}`,
  pods: [{ name: `${name}-pod1`, node: name, ns: `pnlab-t-${name}-pod1`, ip: '10.244.1.11', hostIf: 'vp11' }],
  podMtu: 1450,
  paths,
})
const nodes = [
  node('node1', '192.168.77.1', [{ peer: 'node2', cidr: '10.244.2.0/24', nodeIp: '192.168.77.2', encap: 'vxlan', via: 'node' }]),
  node('node2', '192.168.77.2', [{ peer: 'node1', cidr: '10.244.1.0/24', nodeIp: '192.168.77.1', encap: 'direct', via: 'node' }]),
]
const status: LabStatus = {
  name: 't',
  datastore: 'static',
  routing: 'datastore',
  router: null,
  agents: {},
  health: 'crashed',
  mode: 'auto',
  podDevice: 'veth',
  createdAt: '2026-11-30T10:00:00Z',
  underlayNs: 'pnlab-t-underlay',
  routerNs: null,
  nodes: nodes.map((n) => ({ ...n, present: true })),
  missing: ['pnlab-t-node3'],
}

describe('lab rendering', () => {
  it('renders nodes, pods and the path each node takes to each peer', () => {
    const out = renderLab({ name: 't', mode: 'auto', nodes, routerNs: null, datastore: 'static' })
    expect(out.split('\n')[0]).toBe('lab t: mode auto, 2 nodes, static routes')
    expect(out).toMatch(/node1-pod1\s+node1\s+10\.244\.1\.11/)
    expect(out).toMatch(/node1\s+local\s+vxlan/)
    expect(out).toMatch(/node2\s+direct\s+local/)
  })

  it('says how to clean up a crashed lab, names missing namespaces and ends with a blank line', () => {
    const out = renderLabStatus(status, 'podnet-bpf')
    const lines = out.split('\n')
    expect(lines.slice(0, 3)).toEqual([
      't: crashed (created 2026-11-30T10:00:00Z)',
      '  missing namespaces: pnlab-t-node3',
      '  clean up with: podnet-bpf lab down --name t',
    ])
    expect(lines[3]).toBe('lab t: mode auto, 2 nodes, veth pods, static routes')
    expect(lines.at(-1)).toBe('')
  })

  it('leaves out the lab itself when its state is unknown, and the clean-up line for a ready lab', () => {
    expect(renderLabStatus({ ...status, health: 'ready', missing: [], mode: null }, 'podnet-bpf')).toBe(
      't: ready (created 2026-11-30T10:00:00Z)\n',
    )
  })

  it('ends lab up with a ping to try, naming a lab that is not the default', () => {
    const r = { lab: { ...status, mode: 'auto', status: 'ready', version: 1, pid: 1, underlayNs: 'u', nodes }, seconds: 12.34 }
    const out = renderLabUp(r as unknown as UpResult, null, 'podnet-bpf')
    expect(out.split('\n').at(-1)).toBe('up in 12.3s. Try: podnet-bpf lab ping node1-pod1 node2-pod1 --name t')
  })
})

describe('metrics rendering', () => {
  const row = { direction: 'from-pod', kind: 'forward', reason: 'local', packets: 3, bytes: 300 }
  it('renders counters, with rates when the rows have them', () => {
    expect(renderMetrics([])).toBe('(no packets counted yet)')
    expect(renderMetrics([row] as never).split('\n')[0]).toMatch(/^DIRECTION\s+KIND\s+REASON\s+PACKETS\s+BYTES$/)
    const rates = renderMetrics([{ ...row, packetsPerSec: 1.5, bytesPerSec: 150 }] as never)
    expect(rates).toMatch(/PKT\/S\s+BYTES\/S/)
    expect(rates).toMatch(/1\.5\s+150$/)
  })

  it('renders a watch sample as a JSON line or as a table under its time', () => {
    const at = Date.parse('2026-11-30T10:00:00Z')
    expect(JSON.parse(renderSample(at, [], 2, true))).toEqual({ time: '2026-11-30T10:00:00.000Z', counters: [] })
    expect(renderSample(at, [], 2, false)).toBe('--- 2026-11-30T10:00:00.000Z (rates over 2s)\n(no packets counted yet)')
  })
})

describe('explain rendering', () => {
  it('prints the summary, then packet, entry, program, verdict and notes', () => {
    const x = {
      summary: 'local: into pod 10.244.1.12',
      packet: { src: '10.244.1.11', dst: '10.244.1.12', proto: 'tcp', sport: 40000, dport: 80, ipLen: 96, ttl: 64 },
      entry: { hook: 'from-pod', device: 'vp11', ifindex: 5, why: 'source is a local pod' },
      program: { name: 'pn_from_pod', id: 42, device: 'vp11', hook: 'tc-ingress' },
      verdict: 'TC_ACT_REDIRECT',
      reason: 'local',
      reasonCode: 1,
      notes: ['a note'],
    } as unknown as Explanation
    expect(renderExplanation(x).split('\n')).toEqual([
      'local: into pod 10.244.1.12',
      '  packet   10.244.1.11 > 10.244.1.12 tcp 40000 > 80, 96 bytes, TTL 64',
      '  entry    from-pod on vp11: source is a local pod',
      '  program  pn_from_pod id 42 (vp11 tc-ingress)',
      '  verdict  TC_ACT_REDIRECT, reason local (1)',
      '  note     a note',
    ])
    expect(renderExplanation({ ...x, program: null, notes: [] }).split('\n')).toHaveLength(4)
  })
})

describe('maps dump rendering', () => {
  const dump = (): MapDump =>
    ({
      header: {
        name: 'podnet_routes',
        id: 7,
        type: 'lpm_trie',
        keyType: 'struct podnet_route_key',
        valueType: 'struct podnet_route',
        maxEntries: 16384,
      },
      entries: [{ key: '10.244.2.0/24', value: { node_ip: '192.168.77.2', flags: ['vxlan'] } }][Symbol.iterator](),
      skipped: () => 0,
      close: () => {},
    }) as unknown as MapDump

  it('writes one line per entry and a count', () => {
    let out = ''
    writeDumpText(dump(), (s) => (out += s))
    expect(out.split('\n')).toEqual([
      'podnet_routes (id 7, lpm_trie, key struct podnet_route_key, value struct podnet_route, max 16384)',
      '10.244.2.0/24       node_ip=192.168.77.2 flags=vxlan',
      '1 entry',
      '',
    ])
  })

  it('streams JSON that parses back', () => {
    let out = ''
    writeDumpJson(dump(), (s) => (out += s))
    expect(JSON.parse(out)).toEqual({
      map: dump().header,
      entries: [{ key: '10.244.2.0/24', value: { node_ip: '192.168.77.2', flags: ['vxlan'] } }],
      skipped: 0,
    })
  })

  it('renders nested values inline', () => {
    expect(renderInline({ a: 1, b: { c: null }, d: [] })).toBe('a=1 b={c=-} d=-')
  })
})

describe('status and attach rendering', () => {
  const session = {
    name: 'r',
    description: 'router',
    peer: '192.168.77.254',
    asn: 65000,
    state: 'Active',
    since: '',
    uptimeSeconds: 3,
    info: 'Connection refused',
    prefixes: { received: 1, accepted: 1, rejected: 0 },
  }
  const status = {
    pinDir: '/sys/fs/bpf/n1',
    nodeIp: '192.168.77.1',
    podCidr: '10.244.1.0/24',
    mode: 'vxlan',
    device: 'eth0',
    deviceIfindex: 2,
    deviceMtu: 1500,
    podMtu: 1450,
    vxlan: { device: 'podnet_vxlan', ifindex: 3, vni: 1, port: 8472 },
    endpoints: 2,
    attachedAt: '2026-11-30T10:00:00Z',
    attachMode: 'tcx',
    programs: [
      {
        program: 'pn_from_netdev',
        device: 'eth0',
        ifindex: 2,
        hook: 'ingress',
        attach: 'tcx',
        id: 9,
        expected: false,
        tag: 'ab',
        loadedAt: null,
      },
    ],
    maps: [{ name: 'podnet_events', type: 'ringbuf', keyType: null, valueType: null, entries: null, maxEntries: 262144, pinPath: '/p' }],
    tracing: { on: false, orphanCleared: true },
    libbpf: '1.5',
    kernel: '6.12',
    agent: null,
  }

  it('renders the node, its programs (marking one attach did not install) and maps', () => {
    const lines = renderNodeStatus(status as never).split('\n')
    expect(lines.slice(0, 4)).toEqual([
      'node 192.168.77.1  pod CIDR 10.244.1.0/24  mode vxlan  device eth0 (ifindex 2, MTU 1500)  pod MTU 1450',
      'VXLAN podnet_vxlan (ifindex 3) VNI 1 port 8472',
      'pin dir /sys/fs/bpf/n1, attached 2026-11-30T10:00:00Z with tcx links, 2 endpoints; libbpf 1.5, kernel 6.12',
      'tracing was left on by a monitor that is gone: turned off',
    ])
    expect(lines.join('\n')).toMatch(/pn_from_netdev\s+eth0 \(2\)\s+ingress\s+tcx\s+9 !\s+ab\s+-/)
    expect(lines.join('\n')).toMatch(/podnet_events\s+ringbuf\s+-\s+-\s+- \/ 262144 bytes\s+\/p/)
  })

  it("renders the agent's BGP sessions, with BIRD's reason for one that is not up", () => {
    const bgp = {
      asn: 64512,
      routerId: '192.168.77.1',
      table: 100,
      daemon: { pid: null, restarts: 2, config: '', socket: '' },
      sessions: [session],
      routes: 0,
      error: null,
    }
    const agent = {
      running: true,
      ready: true,
      reason: null,
      nodeName: 'n1',
      datastore: 'file',
      datastoreDetail: {},
      peers: 1,
      lastSync: null,
      url: null,
      bgp,
    }
    const out = renderNodeStatus({ ...status, agent } as never)
    expect(out).toContain('BGP: AS 64512, router id 192.168.77.1, table 100 (0 routes); BIRD NOT RUNNING, 2 restarts')
    expect(out).toMatch(/192\.168\.77\.254\s+65000\s+router\s+Active \(Connection refused\)\s+3s\s+1\s+1\s+0/)
    expect(bgpSessionCells({ ...session, state: 'Established' })[0]).toBe('Established')
  })

  it('renders what attach did', () => {
    const r = {
      action: 'attached',
      attachMode: 'tc',
      config: { nodeIp: '192.168.77.1', podCidr: '10.244.1.0/24', mode: 'direct', device: 'eth0', vni: 1, vxlanPort: 8472 },
      podMtu: 1500,
      deviceMtu: 1500,
      vxlanDevice: null,
      programs: [{ program: 'pn_from_netdev', device: 'eth0', hook: 'ingress', id: 9 }],
    }
    const lines = renderAttach(r as never).split('\n')
    expect(lines.slice(0, 2)).toEqual([
      'attached: node 192.168.77.1, pod CIDR 10.244.1.0/24, mode direct, device eth0 (MTU 1500)',
      "pod MTU: 1500 (set it on each pod's eth0); programs attached as tc filters",
    ])
    expect(lines[3]).toMatch(/pn_from_netdev\s+eth0\s+ingress\s+9/)
  })
})
