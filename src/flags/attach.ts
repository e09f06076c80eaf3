// The flags of `attach`. None has an oclif default: a --config file's values
// must win over what is left unset, so defaults come from the schema (and
// are only named in the help).
import * as Flags from '@oclif/core/flags'
import { enumFlag } from '../cli/base.js'
import { AttachModeSchema, ModeSchema, NodeDefaults } from '../services/index.js'

export const attachFlags = {
  'node-ip': Flags.string({ description: "this node's underlay IPv4 address (an address of --device)", helpValue: 'IP' }),
  'pod-cidr': Flags.string({ description: "this node's pod CIDR", helpValue: 'CIDR' }),
  device: Flags.string({ description: 'node NIC (underlay)', helpValue: 'IFNAME' }),
  mode: enumFlag(ModeSchema, {
    description: `cross-node forwarding: direct routing, VXLAN, or per peer (direct when on the device subnet) [default: ${NodeDefaults.mode}]`,
  }),
  vni: Flags.integer({ description: `VXLAN network identifier [default: ${NodeDefaults.vni}]` }),
  'vxlan-port': Flags.integer({ description: `VXLAN UDP port [default: ${NodeDefaults.vxlanPort}]` }),
  mtu: Flags.integer({ description: 'pod-facing MTU [default: device MTU, minus 50 with VXLAN]' }),
  'attach-mode': enumFlag(AttachModeSchema, {
    description: `programs on device hooks as tcx links (Linux >= 6.6), tc filters, or tcx where the kernel has it [default: ${NodeDefaults.attachMode}]`,
  }),
  config: Flags.string({
    description: 'JSON file with nodeIp, podCidr, device, mode, vni, vxlanPort, mtu, attachMode (flags win)',
    helpValue: 'FILE',
  }),
}
