// BGP settings of the agent (`bgp:` in its YAML config, --bgp-* flags): one
// zod schema for defaults and validation. Checks that need the node (a peer
// that is the node itself) run when the daemon's config is rendered.
import { z } from '../../util/zod.js'
import { UserError } from '../../errors.js'
import { formatZodError } from '../../services/config.js'
import { isIPv4 } from '../../util/ipv4.js'

/** 0 and 4294967295 are reserved (RFC 7607, RFC 7300); 23456 is AS_TRANS (RFC 6793). */
export const AsnSchema = z
  .number({ invalid_type_error: 'must be a number (an AS number such as 64512)' })
  .int('must be a whole number')
  .min(1, 'AS numbers are 1..4294967294 (0 is reserved)')
  .max(4_294_967_294, 'AS numbers are 1..4294967294')
  .refine((n) => n !== 23456, 'AS 23456 is AS_TRANS, not a usable AS number')

const ipv4 = z.string().refine(isIPv4, { message: 'must be an IPv4 address like 192.168.1.1' })

export const BgpPeerSchema = z
  .object({
    address: ipv4,
    asn: AsnSchema,
    /** TCP MD5 signature (RFC 2385) */
    password: z
      .string()
      .min(1)
      .max(80, 'TCP MD5 keys are at most 80 characters')
      .regex(/^[^"\\\n]+$/, 'no quotes, backslashes or newlines (BIRD config strings)')
      .optional(),
    /** only this node peers with it (a ToR per rack); absent: every node */
    node: z.string().min(1).optional(),
  })
  .strict()
export type BgpPeer = z.infer<typeof BgpPeerSchema>

export const BgpConfigSchema = z
  .object({
    asn: AsnSchema.default(64512),
    /** default: the node IP */
    routerId: ipv4.optional(),
    /** iBGP sessions with every other node the datastore knows (Calico's node-to-node mesh) */
    mesh: z.boolean().default(true),
    peers: z.array(BgpPeerSchema).default([]),
    gracefulRestart: z.boolean().default(true),
    /** how long peers keep this node's routes while it restarts (s) */
    restartTime: z.number().int().min(1).max(4095, 'graceful restart time is 12 bits: 1..4095 s').default(120),
    /** BGP hold time (s); keepalives every third of it */
    holdTime: z.number().int().min(3, 'hold time is 0 or at least 3 s (RFC 4271); use 3..65535').max(65_535).default(90),
    /** kernel table the daemon writes accepted routes into (never main) */
    table: z.number().int().min(1).max(252, 'tables 253..255 are the kernel default/main/local tables; use 1..252').default(201),
  })
  .strict()
  .superRefine((c, ctx) => {
    const seen = new Map<string, number>()
    c.peers.forEach((p, i) => {
      const key = `${p.address}@${p.node ?? '*'}`
      const first = seen.get(key)
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['peers', i, 'address'], message: `duplicate peer ${p.address} (also peers.${first})` })
      } else seen.set(key, i)
    })
  })
export type BgpConfig = z.infer<typeof BgpConfigSchema>
export type BgpConfigInput = z.input<typeof BgpConfigSchema>

export function parseBgpConfig(input: unknown, source = 'BGP configuration'): BgpConfig {
  const r = BgpConfigSchema.safeParse(input ?? {})
  if (!r.success) throw formatZodError(r.error, source)
  return r.data
}

/** `--bgp-peer ADDRESS:ASN` */
export function parsePeerFlag(s: string): BgpPeer {
  const m = /^([^:]+):(\d+)$/.exec(s)
  if (!m) throw new UserError(`invalid --bgp-peer "${s}"`, 'use ADDRESS:ASN, e.g. --bgp-peer 192.168.1.1:65000')
  if (!isIPv4(m[1]!))
    throw new UserError(`invalid --bgp-peer "${s}": "${m[1]}" is not an IPv4 address`, 'use ADDRESS:ASN, e.g. 192.168.1.1:65000')
  return { address: m[1]!, asn: Number(m[2]) }
}
