// Node configuration: the zod schema is the single source of truth for
// defaults and validation, shared by CLI flags and --config files.
import { readFileSync } from 'node:fs'
import { z } from '../util/zod.js'
import { UserError } from '../errors.js'
import { isIPv4, parseCidr } from '../util/ipv4.js'
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
export const EncapSchema = z.enum(['auto', 'vxlan', 'none'])
export type Encap = z.infer<typeof EncapSchema>

/** Defaults of the node configuration, declared once: the schema applies them, flag help shows them. */
export const NodeDefaults = { mode: 'auto', vni: 1, vxlanPort: DEFAULT_VXLAN_PORT } as const satisfies {
  mode: Mode
  vni: number
  vxlanPort: number
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
  })
  .strict()
export type NodeConfig = z.infer<typeof NodeConfigSchema>
export type NodeConfigInput = z.input<typeof NodeConfigSchema>

/** `path: message` lines, as the operator should read them. */
export function formatZodError(e: z.ZodError, source: string): UserError {
  const lines = e.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
  return new UserError(`invalid ${source}:\n  ${lines.join('\n  ')}`, 'fix the values above and run again')
}

export function parseNodeConfig(input: unknown, source = 'configuration'): NodeConfig {
  const r = NodeConfigSchema.safeParse(input)
  if (!r.success) throw formatZodError(r.error, source)
  return r.data
}

/** A JSON config file (keys as in NodeConfigSchema) merged under CLI flags. */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    throw new UserError(`cannot read config file ${path}: ${(e as Error).message}`, 'pass an existing JSON file to --config')
  }
  try {
    const v = JSON.parse(text) as unknown
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object')
    return v as Record<string, unknown>
  } catch (e) {
    throw new UserError(
      `config file ${path} is not valid JSON: ${(e as Error).message}`,
      'write a JSON object such as {"nodeIp": "192.168.77.1", …}',
    )
  }
}

export function resolvePinDir(flag?: string): string {
  const dir = flag ?? process.env.PODNET_PIN_DIR ?? DEFAULT_PIN_DIR
  if (!dir.startsWith('/')) throw new UserError(`pin dir "${dir}" is not an absolute path`, 'use e.g. /sys/fs/bpf/podnet')
  return dir.replace(/\/+$/, '')
}
