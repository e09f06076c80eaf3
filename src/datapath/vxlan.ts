// The node's VXLAN device (collect_md, one per node): reused when it is
// already right, recreated when podnet made it and it is not, refused when
// someone else's device has the name.
import { UserError } from '../errors.js'
import { createVxlan, deleteLink, getLinkByName, setMtu, VXLAN_DEV } from './netdev.js'

export interface VxlanDevice {
  ifindex: number
  /** podnet created it (detach deletes it; otherwise only our programs come off it) */
  created: boolean
}

/** Makes `podnet_vxlan` a collect_md VXLAN device on `port` with `mtu`. `ours`: podnet created the one there now. */
export function ensureVxlanDevice(port: number, mtu: number, ours: boolean): VxlanDevice {
  let vx = getLinkByName(VXLAN_DEV)
  let created = ours
  if (vx && (vx.kind !== 'vxlan' || !vx.vxlan?.external || vx.vxlan.port !== port)) {
    if (!created) {
      throw new UserError(
        `a device named ${VXLAN_DEV} exists but is not a collect_md VXLAN device on port ${port}`,
        `delete it (ip link del ${VXLAN_DEV}) and attach again`,
      )
    }
    deleteLink(VXLAN_DEV)
    vx = null
  }
  if (!vx) {
    try {
      createVxlan(port, mtu)
    } catch (e) {
      throw new UserError(
        `cannot create the VXLAN device: ${(e as Error).message.split('\n')[0]}`,
        'load the vxlan module (modprobe vxlan) or use --mode direct',
      )
    }
    created = true
    vx = getLinkByName(VXLAN_DEV)
    if (!vx) throw new Error(`${VXLAN_DEV} vanished right after it was created`)
  } else if (vx.mtu !== mtu) {
    setMtu(VXLAN_DEV, mtu)
  }
  return { ifindex: vx.ifindex, created }
}
