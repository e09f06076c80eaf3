// The agent's configuration: one zod schema for the YAML file (--config) and
// the flags, which override it. Unknown keys are errors with their path.
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { LineCounter, parseDocument } from 'yaml'
import { z } from '../util/zod.js'
import { UserError } from '../errors.js'
import { CidrSchema, Ipv4Schema, ModeSchema, NodeDefaults, formatZodError } from '../services/config.js'
import { EtcdConfigSchema, type EtcdConfig } from '../services/etcd.js'
import { BgpConfigSchema, parsePeerFlag } from './bgp/config.js'

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** "500ms", "10s", "2m", "1h" → milliseconds (null when malformed). */
export function parseDuration(s: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(s.trim())
  return m ? Math.round(Number(m[1]) * UNITS[m[2]!]!) : null
}

const duration = (min: number, max: number) =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    const ms = typeof v === 'number' ? v * 1000 : parseDuration(v)
    if (ms === null) {
      ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration: use e.g. 500ms, 10s, 2m` })
      return z.NEVER
    }
    if (ms < min || ms > max) {
      ctx.addIssue({ code: 'custom', message: `${v} is out of range (${min / 1000}s..${max / 1000}s)` })
      return z.NEVER
    }
    return ms
  })

const ipv4 = Ipv4Schema
const cidr = CidrSchema
const listen = z.string().regex(/^[^\s:]+:\d{1,5}$/, 'must be ADDRESS:PORT, e.g. 127.0.0.1:9963 (port 0: any free port)')

export const DATASTORES = ['etcd', 'file', 'kubernetes'] as const
export const DatastoreKindSchema = z.enum(DATASTORES)

export type { EtcdConfig }

export const AgentConfigSchema = z
  .object({
    datastore: DatastoreKindSchema,
    nodeName: z
      .string()
      .regex(/^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/, 'must be a DNS label-like name (lowercase letters, digits, . and -)')
      // the DaemonSet sets NODE_NAME from the downward API (spec.nodeName)
      .default(process.env.NODE_NAME || hostname().toLowerCase()),
    nodeIp: ipv4.optional(),
    device: z.string().min(1).max(15, 'interface names are at most 15 characters').default('eth0'),
    /** default: the cluster config's mode (etcd), else auto */
    mode: ModeSchema.optional(),
    vni: z.number().int().min(1).max(16_777_215).optional(),
    vxlanPort: z.number().int().min(1).max(65_535).default(NodeDefaults.vxlanPort),
    mtu: z.number().int().min(576).max(65_535).optional(),
    pinDir: z.string().startsWith('/', 'must be an absolute path').optional(),
    podCidr: cidr.optional(),
    peersFile: z.string().min(1).optional(),
    kubeconfig: z.string().min(1).optional(),
    etcd: EtcdConfigSchema.default({}),
    leaseTtl: duration(2000, 86_400_000).default('30s'),
    resyncInterval: duration(1000, 3_600_000).default('30s'),
    listen: listen.default('127.0.0.1:9963'),
    cniConfDir: z.string().startsWith('/', 'must be an absolute path').default('/etc/cni/net.d'),
    logFormat: z.enum(['text', 'json']).default('text'),
    /** where peer routes come from: the datastore's node list, or BGP (the datastore then only names the nodes) */
    routing: z.enum(['datastore', 'bgp']).default('datastore'),
    /** the network every pod CIDR lies in (BGP import filter); from the datastore when it knows it */
    clusterCidr: cidr.optional(),
    bgp: BgpConfigSchema.default({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.datastore === 'file' && !c.podCidr) {
      ctx.addIssue({ code: 'custom', path: ['podCidr'], message: "the file datastore needs this node's pod CIDR (--pod-cidr)" })
    }
    if (c.datastore !== 'kubernetes' && c.kubeconfig) {
      ctx.addIssue({ code: 'custom', path: ['kubeconfig'], message: 'only the kubernetes datastore reads a kubeconfig' })
    }
    if (c.datastore !== 'file' && c.peersFile) {
      ctx.addIssue({ code: 'custom', path: ['peersFile'], message: 'only the file datastore reads a peers file' })
    }
    if (c.routing === 'bgp' && c.datastore === 'file' && !c.clusterCidr) {
      ctx.addIssue({
        code: 'custom',
        path: ['clusterCidr'],
        message: 'BGP routing with the file datastore needs the cluster network (--cluster-cidr)',
      })
    }
    if (c.routing === 'bgp' && c.mode === 'vxlan') {
      ctx.addIssue({ code: 'custom', path: ['mode'], message: 'BGP routes are direct: use --mode direct or auto with --routing bgp' })
    }
    if (Boolean(c.etcd.cert) !== Boolean(c.etcd.key)) {
      ctx.addIssue({ code: 'custom', path: ['etcd', c.etcd.cert ? 'key' : 'cert'], message: 'etcd client certificate and key go together' })
    }
  })
export type AgentConfig = z.infer<typeof AgentConfigSchema>

/** Reads a YAML config file; syntax errors name the line. */
export function readYamlFile(path: string, what: string): unknown {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    throw new UserError(`cannot read ${what} ${path}: ${(e as Error).message}`, `pass an existing YAML file`)
  }
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { prettyErrors: false, lineCounter })
  if (doc.errors.length) {
    const e = doc.errors[0]!
    const pos = lineCounter.linePos(e.pos[0])
    const at = ` at line ${pos.line}, column ${pos.col}`
    throw new UserError(`${what} ${path} is not valid YAML${at}: ${e.message.split('\n')[0]}`, 'fix the YAML syntax')
  }
  return doc.toJS() as unknown
}

/** Flag values (undefined = not given) override the file's. Flags use the
 * schema's keys; `etcd*` flags go into the `etcd` section, `bgp*` into `bgp`. */
export function loadAgentConfig(flags: Record<string, unknown>, file?: string): AgentConfig {
  const fromFile = file ? readYamlFile(file, 'config file') : {}
  if (fromFile !== null && (typeof fromFile !== 'object' || Array.isArray(fromFile))) {
    throw new UserError(`config file ${file} is not a YAML mapping`, 'write keys such as `datastore: etcd`, one per line')
  }
  const merged: Record<string, unknown> = { ...(fromFile as Record<string, unknown> | null) }
  const etcd: Record<string, unknown> = { ...(merged.etcd as Record<string, unknown> | undefined) }
  const bgp: Record<string, unknown> = { ...(merged.bgp as Record<string, unknown> | undefined) }
  for (const [k, v] of Object.entries(flags)) {
    if (v === undefined) continue
    if (k.startsWith('etcd') && k !== 'etcd') etcd[k.slice(4, 5).toLowerCase() + k.slice(5)] = v
    else if (k.startsWith('bgp') && k !== 'bgp') bgp[k.slice(3, 4).toLowerCase() + k.slice(4)] = v
    else merged[k] = v
  }
  if (Object.keys(etcd).length || merged.etcd !== undefined) merged.etcd = etcd
  if (Object.keys(bgp).length || merged.bgp !== undefined) merged.bgp = bgp
  const r = AgentConfigSchema.safeParse(merged)
  if (!r.success) throw formatZodError(r.error, file ? `agent configuration (${file} + flags)` : 'agent configuration')
  return r.data
}

/** oclif flags (kebab-case) → config keys; lists given as comma-separated. */
export function flagsToConfig(flags: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(flags)) {
    if (v === undefined || k === 'config' || k === 'json') continue
    const key = k.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase())
    if (key === 'bgpPeer') {
      out.bgpPeers = (Array.isArray(v) ? v : [v]).map((x) => parsePeerFlag(String(x)))
      continue
    }
    out[key] =
      key === 'etcdEndpoints' && typeof v === 'string'
        ? v
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : v
  }
  return out
}
