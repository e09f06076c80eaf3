// The network configuration podnet receives on stdin. Runtimes add keys of
// their own (runtimeConfig, args, capabilities, prevResult, …), so unknown
// top-level keys pass; the keys podnet reads are validated here, once.
import { z } from '../util/zod.js'
import { DEFAULT_PIN_DIR } from '../services/config.js'
import { Code, CniError, isSupported, type CniResult, type CniVersion } from './protocol.js'

/** `subnet` value that stands for the attached node's pod CIDR. */
export const USE_POD_CIDR = 'usePodCidr'

const IpamSchema = z.object({ type: z.string().min(1, 'ipam.type names the IPAM plugin, e.g. host-local') }).passthrough()

const AttachmentSchema = z.object({ containerID: z.string(), ifname: z.string() })

export const NetConfSchema = z
  .object({
    cniVersion: z.string(),
    name: z.string().min(1, 'the network needs a name'),
    type: z.literal('podnet', { errorMap: () => ({ message: 'must be "podnet"' }) }),
    pinDir: z
      .string()
      .refine((s) => s.startsWith('/'), 'must be an absolute path such as /sys/fs/bpf/podnet')
      .default(DEFAULT_PIN_DIR),
    ipam: IpamSchema.optional(),
    podDevice: z.enum(['veth', 'netkit']).default('veth'),
    mtu: z.number().int().min(576, 'MTU below 576 breaks IPv4').max(65_535).optional(),
    /** where the plugin logs (default /var/log/podnet-bpf/cni.log) */
    logFile: z.string().optional(),
    prevResult: z.record(z.unknown()).optional(),
    'cni.dev/valid-attachments': z.array(AttachmentSchema).optional(),
    // libcni also sends the name of an early draft of the spec
    'cni.dev/attachments': z.array(AttachmentSchema).optional(),
  })
  .passthrough()
export type NetConf = z.infer<typeof NetConfSchema> & { cniVersion: CniVersion }

/** Decodes and validates stdin: not JSON is code 6, a bad key code 7, an
 * unsupported cniVersion code 1. */
export function parseNetConf(text: string): NetConf {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (e) {
    throw new CniError(
      Code.DECODE,
      `network configuration on stdin is not JSON: ${(e as Error).message}`,
      'pass the network config as JSON on stdin',
    )
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new CniError(Code.DECODE, 'network configuration on stdin is not a JSON object', 'pass the network config as a JSON object')
  const r = NetConfSchema.safeParse(raw)
  if (!r.success) {
    const lines = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    throw new CniError(Code.INVALID_CONFIG, `invalid podnet network config: ${lines.join('; ')}`, 'fix these keys in the conflist')
  }
  if (!isSupported(r.data.cniVersion))
    throw new CniError(
      Code.INCOMPATIBLE_VERSION,
      `cniVersion ${r.data.cniVersion} is not supported`,
      'podnet supports cniVersion 1.0.0 and 1.1.0; set one of them in the conflist',
    )
  return r.data as NetConf
}

/** The IPAM section to delegate to: host-local over the node's pod CIDR by
 * default; a range subnet "usePodCidr" becomes the pod CIDR. */
export function resolveIpam(conf: NetConf, podCidr: string): Record<string, unknown> {
  const ipam: Record<string, unknown> = conf.ipam ? structuredClone(conf.ipam) : { type: 'host-local', ranges: [[{ subnet: podCidr }]] }
  if (ipam.subnet === USE_POD_CIDR) ipam.subnet = podCidr
  if (Array.isArray(ipam.ranges)) {
    for (const set of ipam.ranges) {
      if (!Array.isArray(set)) continue
      for (const range of set) if (range && typeof range === 'object' && range.subnet === USE_POD_CIDR) range.subnet = podCidr
    }
  }
  return ipam
}

/** The IPv4 address of the previous result (for CHECK and DEL). */
export function prevResultOf(conf: NetConf): CniResult | null {
  return (conf.prevResult as CniResult | undefined) ?? null
}
