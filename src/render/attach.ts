// What `attach` did, as text.
import { table } from '../cli/base.js'
import type { AttachResult } from '../services/index.js'

export function renderAttach(r: AttachResult): string {
  const c = r.config
  const vxlan = r.vxlanDevice ? `, VXLAN ${r.vxlanDevice} VNI ${c.vni} port ${c.vxlanPort}` : ''
  const via = r.attachMode === 'tcx' ? 'tcx links' : 'tc filters'
  return [
    `${r.action}: node ${c.nodeIp}, pod CIDR ${c.podCidr}, mode ${c.mode}, device ${c.device} (MTU ${r.deviceMtu})${vxlan}`,
    `pod MTU: ${r.podMtu} (set it on each pod's eth0); programs attached as ${via}`,
    table(
      ['PROGRAM', 'DEVICE', 'HOOK', 'ID'],
      r.programs.map((p) => [p.program, p.device, p.hook, p.id]),
    ),
  ].join('\n')
}
