// Node configuration: the zod schema is the single source of truth for
// defaults and validation, shared by CLI flags and --config files.
import { z } from '../util/zod.js'
import { UserError } from '../errors.js'
import { isIPv4, parseCidr } from '../util/ipv4.js'
import { CONFIG_MAX_BYTES, parseDataText, readBoundedFile } from './validate.js'
import { DEFAULT_VXLAN_PORT } from '../datapath/abi.js'

export const DEFAULT_PIN_DIR = '/sys/fs/bpf/podnet'

/** Address and CIDR fields of every config schema (node, agent). */
export const Ipv4Schema = z.string().refine(isIPv4, { message: 'must be an IPv4 address like 192.168.77.1' })
export const CidrSchema = z.string().superRefine((s, ctx) => {
  try {
    parseCidr(s)
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: e instanceof UserError ? e.toString() : String(e) })
  }
})

export const ModeSchema = z.enum(['direct', 'vxlan', 'auto'])
export type Mode = z.infer<typeof ModeSchema>
/** How programs go on device hooks: tcx links (Linux >= 6.6), tc cls_bpf filters, or tcx where the kernel has it */
export const AttachModeSchema = z.enum(['auto', 'tcx', 'tc'])
export type AttachModeOption = z.infer<typeof AttachModeSchema>
export const EncapSchema = z.enum(['auto', 'vxlan', 'none'])
export type Encap = z.infer<typeof EncapSchema>

/** Defaults of the node configuration, declared once: the schema applies them, flag help shows them. */
export const NodeDefaults = { mode: 'auto', vni: 1, vxlanPort: DEFAULT_VXLAN_PORT, attachMode: 'auto' } as const satisfies {
  mode: Mode
  vni: number
  vxlanPort: number
  attachMode: AttachModeOption
}

export const NodeConfigSchema = z
  .object({
    nodeIp: Ipv4Schema,
    podCidr: CidrSchema,
    device: z.string().min(1).max(15, 'interface names are at most 15 characters'),
    mode: ModeSchema.default(NodeDefaults.mode),
    vni: z.number().int().min(1).max(16_777_215, 'VNI is 24 bits: 1..16777215').default(NodeDefaults.vni),
    vxlanPort: z.number().int().min(1).max(65_535).default(NodeDefaults.vxlanPort),
    /** pod-facing MTU; default: device MTU, minus 50 when a mode uses VXLAN */
    mtu: z.number().int().min(576, 'MTU below 576 breaks IPv4').max(65_535).optional(),
    attachMode: AttachModeSchema.default(NodeDefaults.attachMode),
  })
  .strict()
export type NodeConfig = z.infer<typeof NodeConfigSchema>
export type NodeConfigInput = z.input<typeof NodeConfigSchema>

/** `path: message` lines, as the operator should read them. */
export function formatZodError(e: z.ZodError, source: string): UserError {
  const lines = e.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
  const more = lines.length > 5 ? `; … and ${lines.length - 5} more` : ''
  return new UserError(`invalid ${source}: ${lines.slice(0, 5).join('; ')}${more}`, 'fix the values named above and run again')
}

export function parseNodeConfig(input: unknown, source = 'configuration'): NodeConfig {
  const r = NodeConfigSchema.safeParse(input)
  if (!r.success) throw formatZodError(r.error, source)
  return r.data
}

/** A JSON (or YAML) config file (keys as in NodeConfigSchema) merged under
 * CLI flags: a regular file of at most CONFIG_MAX_BYTES, no duplicate keys. */
export function readConfigFile(path: string): Record<string, unknown> {
  const hint = 'pass a JSON object such as {"nodeIp": "192.168.77.1", "podCidr": "10.244.1.0/24", "device": "eth0"} to --config'
  const v = parseDataText(readBoundedFile(path, CONFIG_MAX_BYTES, 'config file', hint), `config file ${path}`, hint)
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new UserError(`config file ${path} is not a JSON object`, hint)
  return v as Record<string, unknown>
}

export function resolvePinDir(flag?: string): string {
  const dir = flag ?? process.env.PODNET_PIN_DIR ?? DEFAULT_PIN_DIR
  if (!dir.startsWith('/')) throw new UserError(`pin dir "${dir}" is not an absolute path`, 'use e.g. /sys/fs/bpf/podnet')
  return dir.replace(/\/+$/, '')
}
