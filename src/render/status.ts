// `status` as text: the node's config, agent, programs and maps.
import { table } from '../cli/base.js'
import type { NodeStatus } from '../services/inspect/status.js'
import { BGP_SESSION_HEADERS, bgpSessionCells } from './bgp.js'

function agentLine(a: NonNullable<NodeStatus['agent']>): string {
  const state = a.running ? (a.ready ? 'running, ready' : `running, NOT READY (${a.reason})`) : `stopped (last report ${a.updatedAt})`
  const lease = typeof a.datastoreDetail.leaseExpiresAt === 'string' ? `, lease until ${a.datastoreDetail.leaseExpiresAt}` : ''
  const sync = a.lastSync ? `, last sync ${a.lastSync.at} (${a.lastSync.trigger})` : ', never synced'
  return `agent: ${state}; node ${a.nodeName}, datastore ${a.datastore}${lease}, ${a.peers} peers${sync}${a.url ? `; ${a.url}` : ''}`
}

function bgpLines(b: NonNullable<NonNullable<NodeStatus['agent']>['bgp']>): string[] {
  const d = b.daemon
  const daemon = `BIRD ${d.pid ? `pid ${d.pid}` : 'NOT RUNNING'}, ${d.restarts} restarts${b.error ? `; ERROR ${b.error}` : ''}`
  return [
    `BGP: AS ${b.asn}, router id ${b.routerId}, table ${b.table} (${b.routes} routes); ${daemon}`,
    table(
      ['PEER', 'ASN', 'WHO', ...BGP_SESSION_HEADERS],
      b.sessions.map((x) => [x.peer, String(x.asn), x.description, ...bgpSessionCells(x)]),
    ),
  ]
}

export function renderNodeStatus(s: NodeStatus): string {
  const via = s.attachMode === 'tcx' ? 'tcx links' : 'tc filters'
  const tracing = s.tracing.orphanCleared
    ? ['tracing was left on by a monitor that is gone: turned off']
    : s.tracing.on
      ? ['tracing on (a `monitor --type trace|all` is running)']
      : []
  return [
    `node ${s.nodeIp}  pod CIDR ${s.podCidr}  mode ${s.mode}  device ${s.device} (ifindex ${s.deviceIfindex}, MTU ${s.deviceMtu})  pod MTU ${s.podMtu}`,
    s.vxlan ? `VXLAN ${s.vxlan.device} (ifindex ${s.vxlan.ifindex}) VNI ${s.vxlan.vni} port ${s.vxlan.port}` : 'VXLAN: none (direct mode)',
    `pin dir ${s.pinDir}, attached ${s.attachedAt} with ${via}, ${s.endpoints} endpoints; libbpf ${s.libbpf}, kernel ${s.kernel}`,
    ...tracing,
    ...(s.agent ? [agentLine(s.agent)] : []),
    ...(s.agent?.bgp ? bgpLines(s.agent.bgp) : []),
    '',
    table(
      ['PROGRAM', 'DEVICE', 'HOOK', 'VIA', 'ID', 'TAG', 'LOADED'],
      s.programs.map((p) => [
        p.program,
        `${p.device} (${p.ifindex})`,
        p.hook,
        p.attach ?? '-',
        p.id === null ? 'NOT ATTACHED' : `${p.id}${p.expected ? '' : ' !'}`,
        p.tag ?? '-',
        p.loadedAt ?? '-',
      ]),
    ),
    '',
    table(
      ['MAP', 'TYPE', 'KEY', 'VALUE', 'ENTRIES', 'PIN'],
      s.maps.map((m) => [
        m.name,
        m.type,
        m.keyType ?? '-',
        m.valueType ?? '-',
        m.entries === null ? `- / ${m.maxEntries} bytes` : `${m.entries}/${m.maxEntries}`,
        m.pinPath,
      ]),
    ),
  ].join('\n')
}
