import { BaseCommand, table } from '../cli/base.js'
import { nodeStatus, type NodeStatus } from '../services/inspect/status.js'

function agentLine(a: NonNullable<NodeStatus['agent']>): string {
  const state = a.running ? (a.ready ? 'running, ready' : `running, NOT READY (${a.reason})`) : `stopped (last report ${a.updatedAt})`
  const lease = typeof a.datastoreDetail.leaseExpiresAt === 'string' ? `, lease until ${a.datastoreDetail.leaseExpiresAt}` : ''
  const sync = a.lastSync ? `, last sync ${a.lastSync.at} (${a.lastSync.trigger})` : ', never synced'
  return `agent: ${state}; node ${a.nodeName}, datastore ${a.datastore}${lease}, ${a.peers} peers${sync}${a.url ? `; ${a.url}` : ''}`
}

export default class Status extends BaseCommand {
  static override summary = 'Show what the datapath has attached on this node: config, programs, maps'
  static override description =
    'Node configuration from attach, every program live on its hook as the kernel reports it (how it is attached: tcx link, tc filter or netkit; id, tag, load time; "!" marks a program that is not the one attach installed), every pinned map with its entries, and the libbpf and kernel versions.'
  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status --pin-dir /sys/fs/bpf/node1 --json']
  static override enableJsonFlag = true

  async run(): Promise<NodeStatus> {
    const { flags } = await this.parse(Status)
    const s = nodeStatus(flags['pin-dir'])
    this.log(
      `node ${s.nodeIp}  pod CIDR ${s.podCidr}  mode ${s.mode}  device ${s.device} (ifindex ${s.deviceIfindex}, MTU ${s.deviceMtu})  pod MTU ${s.podMtu}`,
    )
    this.log(
      s.vxlan
        ? `VXLAN ${s.vxlan.device} (ifindex ${s.vxlan.ifindex}) VNI ${s.vxlan.vni} port ${s.vxlan.port}`
        : 'VXLAN: none (direct mode)',
    )
    this.log(
      `pin dir ${s.pinDir}, attached ${s.attachedAt} with ${s.attachMode === 'tcx' ? 'tcx links' : 'tc filters'}, ${s.endpoints} endpoints; libbpf ${s.libbpf}, kernel ${s.kernel}`,
    )
    if (s.tracing.orphanCleared) this.log('tracing was left on by a monitor that is gone: turned off')
    else if (s.tracing.on) this.log('tracing on (a `monitor --type trace|all` is running)')
    if (s.agent) this.log(agentLine(s.agent))
    if (s.agent?.bgp) this.logBgp(s.agent.bgp)
    this.log('')
    this.log(
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
    )
    this.log('')
    this.log(
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
    )
    return s
  }

  private logBgp(b: NonNullable<NonNullable<NodeStatus['agent']>['bgp']>): void {
    const d = b.daemon
    this.log(
      `BGP: AS ${b.asn}, router id ${b.routerId}, table ${b.table} (${b.routes} routes); BIRD ${d.pid ? `pid ${d.pid}` : 'NOT RUNNING'}, ${d.restarts} restarts${b.error ? `; ERROR ${b.error}` : ''}`,
    )
    this.log(
      table(
        ['PEER', 'ASN', 'WHO', 'STATE', 'UPTIME', 'RECEIVED', 'ACCEPTED', 'REJECTED'],
        b.sessions.map((x) => [
          x.peer,
          String(x.asn),
          x.description,
          x.state === 'Established' ? x.state : `${x.state}${x.info && x.info !== x.state ? ` (${x.info})` : ''}`,
          `${x.uptimeSeconds}s`,
          String(x.prefixes.received),
          String(x.prefixes.accepted),
          String(x.prefixes.rejected),
        ]),
      ),
    )
  }
}
