// What is attached on this node and where: configuration, every live tc
// program (as the kernel reports it), every pinned map, library versions.
import { release } from 'node:os'
import { libbpfVersion, programInfo } from '../../datapath/kernel.js'
import { MONITOR_F_TRACE, Programs } from '../../datapath/abi.js'
import { DatapathMaps } from '../../datapath/maps.js'
import { queryAttachment, type AttachedVia, type AttachMode } from '../../datapath/tc.js'
import { VXLAN_DEV } from '../../datapath/netdev.js'
import { hooksOf, requireState } from '../node.js'
import { bootTimeToDate } from './common.js'
import { readAgentStatus, type AgentStatus } from '../agent-status.js'
import { pinnedMapNames, summarizeMap, type MapSummary } from './maps.js'
import { clearOrphanedTracing } from './monitor.js'

export interface ProgramStatus {
  program: string
  device: string
  ifindex: number
  hook: string
  /** Program id live on the hook now (null: nothing attached there). */
  id: number | null
  /** how it is attached: tcx link, tc filter, netkit hook (null: nothing there) */
  attach: AttachedVia | null
  tag: string | null
  loadedAt: string | null
  /** Whether the live program is the one attach recorded for this hook. */
  expected: boolean
}

export interface NodeStatus {
  pinDir: string
  nodeIp: string
  podCidr: string
  mode: string
  device: string
  deviceIfindex: number
  deviceMtu: number
  podMtu: number
  vxlan: { device: string; ifindex: number; vni: number; port: number } | null
  endpoints: number
  attachedAt: string
  /** how attach puts programs on device hooks: tcx links or tc filters */
  attachMode: AttachMode
  programs: ProgramStatus[]
  maps: MapSummary[]
  /** forwarding traces on (a tracing monitor runs); orphanCleared: a dead monitor had left them on and this call turned them off */
  tracing: { on: boolean; orphanCleared: boolean }
  libbpf: string
  kernel: string
  /** the node agent's last report (null: no agent ran on this pin dir) */
  agent: (AgentStatus & { running: boolean }) | null
}

export function nodeStatus(pinDirFlag?: string): NodeStatus {
  const s = requireState(pinDirFlag)
  const programs: ProgramStatus[] = hooksOf(s).map((h) => {
    let a: { id: number; via: AttachedVia } | null = null
    try {
      a = queryAttachment(h.hook)
    } catch {
      a = null // device gone
    }
    const id = a?.id ?? null
    let tag: string | null = null
    let loadedAt: string | null = null
    if (id !== null) {
      const info = programInfo(id)
      tag = info.tag
      loadedAt = bootTimeToDate(info.loadTime).toISOString()
    }
    return {
      program: Programs[h.key].program,
      device: h.key === 'fromNetdev' ? s.config.device : h.device,
      ifindex: h.hook.ifindex,
      hook: h.hook.point,
      id,
      attach: a?.via ?? null,
      tag,
      loadedAt,
      expected: id !== null && id === s.programs[h.key]?.id,
    }
  })
  return {
    pinDir: s.pinDir,
    nodeIp: s.config.nodeIp,
    podCidr: s.config.podCidr,
    mode: s.config.mode,
    device: s.config.device,
    deviceIfindex: s.deviceIfindex,
    deviceMtu: s.deviceMtu,
    podMtu: s.podMtu,
    vxlan: s.vxlan ? { device: VXLAN_DEV, ifindex: s.vxlan.ifindex, vni: s.config.vni, port: s.config.vxlanPort } : null,
    endpoints: Object.keys(s.endpoints).length,
    attachedAt: s.attachedAt,
    attachMode: s.attachMode,
    programs,
    maps: pinnedMapNames(s.pinDir).map((n) => summarizeMap(s.pinDir, n)),
    tracing: tracingStatus(s.pinDir),
    libbpf: libbpfVersion(),
    kernel: release(),
    agent: readAgentStatus(s.pinDir),
  }
}

function tracingStatus(pinDir: string): NodeStatus['tracing'] {
  const maps = DatapathMaps.open(pinDir)
  try {
    const orphanCleared = clearOrphanedTracing(pinDir, maps)
    return { on: (maps.settings.monitorFlags & MONITOR_F_TRACE) !== 0, orphanCleared }
  } finally {
    maps.close()
  }
}
