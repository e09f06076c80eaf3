// The cluster's state in etcd, Flannel-style. Under a prefix P
// (default /podnet.io/network):
//   P/config                   {"network","subnetLen","mode"} (cluster init)
//   P/subnets/10.244.3.0-24    {"node","nodeIp","podCidr","mode","vxlanPort"},
//                              bound to the owning node's etcd lease (TTL)
// A node acquires a subnet by a transaction that creates the key only if it
// does not exist (create_revision == 0), so two nodes never hold the same
// one; the lease's expiry deletes the key, which every watcher sees.
import { readFileSync } from 'node:fs'
import { Etcd3, type IKeyValue } from 'etcd3'
import { z } from '../util/zod.js'
import { UserError } from '../errors.js'
import { cidrString, cidrsOverlap, intToIp, isIPv4, parseCidr, type Cidr } from '../util/ipv4.js'
import { ModeSchema, formatZodError } from './config.js'

export interface EtcdConnection {
  endpoints: string[]
  prefix: string
  ca?: string
  cert?: string
  key?: string
}

const url = z.string().regex(/^https?:\/\/[^\s/]+$/, 'must be an http(s)://HOST:PORT URL')

/** The etcd connection settings (agent config `etcd:`, and the --etcd-* flags). */
export const EtcdConfigSchema = z
  .object({
    endpoints: z.array(url).min(1, 'list at least one etcd endpoint').default(['http://127.0.0.1:2379']),
    prefix: z
      .string()
      .regex(/^\/[^\s]*[^/\s]$/, 'must start with / and not end with / (e.g. /podnet.io/network)')
      .default('/podnet.io/network'),
    ca: z.string().optional(),
    cert: z.string().optional(),
    key: z.string().optional(),
  })
  .strict()
export type EtcdConfig = z.infer<typeof EtcdConfigSchema>

/** --etcd-* flag values (endpoints comma-separated) → a validated connection. */
export function etcdConnection(f: { endpoints: string; prefix: string; ca?: string; cert?: string; key?: string }): EtcdConnection {
  const r = EtcdConfigSchema.safeParse({
    endpoints: f.endpoints
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    prefix: f.prefix,
    ca: f.ca,
    cert: f.cert,
    key: f.key,
  })
  if (!r.success) throw formatZodError(r.error, 'etcd flags')
  return r.data
}

export const ClusterConfigSchema = z
  .object({
    network: z.string(),
    subnetLen: z.number().int(),
    mode: ModeSchema.default('auto'),
  })
  .strict()
export type ClusterConfig = z.infer<typeof ClusterConfigSchema>

export const LeaseValueSchema = z.object({
  node: z.string().min(1),
  nodeIp: z.string().refine(isIPv4),
  podCidr: z.string(),
  mode: ModeSchema.optional(),
  vxlanPort: z.number().int().optional(),
})
export type LeaseValue = z.infer<typeof LeaseValueSchema>

export const configKey = (prefix: string) => `${prefix}/config`
export const subnetsPrefix = (prefix: string) => `${prefix}/subnets/`
export const subnetKey = (prefix: string, cidr: string) => `${subnetsPrefix(prefix)}${cidr.replace('/', '-')}`

/** The CIDR a subnet key names (null: not one of ours). */
export function keyToCidr(prefix: string, key: string): string | null {
  const p = subnetsPrefix(prefix)
  if (!key.startsWith(p)) return null
  const m = /^(\d+\.\d+\.\d+\.\d+)-(\d+)$/.exec(key.slice(p.length))
  if (!m) return null
  try {
    return cidrString(parseCidr(`${m[1]}/${m[2]}`))
  } catch {
    return null
  }
}

/** End of a prefix range: the prefix with its last byte incremented. */
export function prefixEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix)
  b[b.length - 1]! += 1
  return b
}

export function deadline(ms: number): { deadline: number } {
  return { deadline: Date.now() + ms }
}

function readPem(path: string | undefined, what: string): Buffer | undefined {
  if (!path) return undefined
  try {
    return readFileSync(path)
  } catch (e) {
    throw new UserError(`cannot read the etcd ${what} ${path}: ${(e as Error).message}`, `pass a readable PEM file to --etcd-${what}`)
  }
}

export function etcdClient(c: EtcdConnection): Etcd3 {
  const rootCertificate = readPem(c.ca, 'ca')
  const certChain = readPem(c.cert, 'cert')
  const privateKey = readPem(c.key, 'key')
  const tls = rootCertificate || certChain
  return new Etcd3({
    hosts: c.endpoints.map((e) => (tls ? e.replace(/^http:/, 'https:') : e)),
    ...(tls
      ? { credentials: { rootCertificate: rootCertificate ?? Buffer.alloc(0), ...(certChain ? { certChain, privateKey } : {}) } }
      : {}),
    dialTimeout: 3000,
  })
}

/** Operator-facing form of an etcd failure. */
export function etcdUserError(e: unknown, c: Pick<EtcdConnection, 'endpoints'>): UserError {
  const msg = (e as Error).message?.split('\n')[0] ?? String(e)
  return new UserError(
    `cannot reach etcd at ${c.endpoints.join(',')}: ${msg}`,
    'check --etcd-endpoints (and TLS flags), and that a quorum of etcd members is up',
  )
}

export function validateClusterConfig(cfg: ClusterConfig, source: string): { network: Cidr; subnetLen: number } {
  let network: Cidr
  try {
    network = parseCidr(cfg.network, 'cluster network')
  } catch (e) {
    throw e instanceof UserError ? new UserError(`${source}: ${e.message}`, e.hint) : e
  }
  if (cfg.subnetLen <= network.len || cfg.subnetLen > 30) {
    throw new UserError(
      `${source}: subnet length /${cfg.subnetLen} is out of range for network ${cidrString(network)}`,
      `use a subnet length from /${network.len + 1} to /30 (e.g. --subnet-len 24 for a /16)`,
    )
  }
  return { network, subnetLen: cfg.subnetLen }
}

/** The i-th subnet of the network. */
export function nthSubnet(network: Cidr, subnetLen: number, i: number): string {
  return `${intToIp(network.net + i * 2 ** (32 - subnetLen))}/${subnetLen}`
}

export function subnetCount(network: Cidr, subnetLen: number): number {
  return 2 ** (subnetLen - network.len)
}

export async function readClusterConfig(client: Etcd3, prefix: string, timeoutMs = 5000): Promise<ClusterConfig | null> {
  const r = await client.kv.range({ key: Buffer.from(configKey(prefix)) }, deadline(timeoutMs))
  const kv = r.kvs[0]
  if (!kv) return null
  let raw: unknown
  try {
    raw = JSON.parse(kv.value.toString())
  } catch {
    throw new UserError(`cluster config ${configKey(prefix)} is not JSON`, 'rewrite it with podnet-bpf cluster init')
  }
  const p = ClusterConfigSchema.safeParse(raw)
  if (!p.success) throw formatZodError(p.error, `cluster config ${configKey(prefix)}`)
  return p.data
}

export interface SubnetLease {
  key: string
  cidr: string
  value: LeaseValue
  lease: string
  modRevision: string
  createRevision: string
}

/** A subnet key-value as a lease; null when malformed (counted by callers). */
export function parseSubnet(prefix: string, kv: IKeyValue): SubnetLease | null {
  const key = kv.key.toString()
  const cidr = keyToCidr(prefix, key)
  if (!cidr) return null
  let v: unknown
  try {
    v = JSON.parse(kv.value.toString())
  } catch {
    return null
  }
  const p = LeaseValueSchema.safeParse(v)
  if (!p.success || p.data.podCidr !== cidr) return null
  return { key, cidr, value: p.data, lease: kv.lease, modRevision: kv.mod_revision, createRevision: kv.create_revision }
}

export async function listSubnets(
  client: Etcd3,
  prefix: string,
  timeoutMs = 5000,
): Promise<{ revision: string; leases: SubnetLease[]; bad: number }> {
  const p = subnetsPrefix(prefix)
  const r = await client.kv.range({ key: Buffer.from(p), range_end: prefixEnd(p) }, deadline(timeoutMs))
  const leases: SubnetLease[] = []
  let bad = 0
  for (const kv of r.kvs) {
    const s = parseSubnet(prefix, kv)
    if (s) leases.push(s)
    else bad++
  }
  return { revision: r.header.revision, leases, bad }
}

export interface ClusterInitInput extends EtcdConnection {
  network: string
  subnetLen: number
  mode: ClusterConfig['mode']
}

/** Writes the cluster config. Unchanged config: no write. A different
 * network or subnet length while subnets are leased: refused. */
export async function clusterInit(i: ClusterInitInput): Promise<{ action: 'created' | 'updated' | 'unchanged'; config: ClusterConfig }> {
  const cfg: ClusterConfig = { network: i.network, subnetLen: i.subnetLen, mode: i.mode }
  const { network } = validateClusterConfig(cfg, 'cluster network')
  cfg.network = cidrString(network)
  for (const e of i.endpoints) {
    const host = /^https?:\/\/([\d.]+):/.exec(e)?.[1]
    if (host && cidrsOverlap(network, parseCidr(`${host}/32`))) {
      throw new UserError(
        `cluster network ${cfg.network} contains the etcd endpoint ${host}`,
        'pick a pod network that no node or etcd address falls in',
      )
    }
  }
  const client = etcdClient(i)
  try {
    const old = await readClusterConfig(client, i.prefix).catch((e: unknown) => {
      throw e instanceof UserError ? e : etcdUserError(e, i)
    })
    if (old && old.network === cfg.network && old.subnetLen === cfg.subnetLen && old.mode === cfg.mode)
      return { action: 'unchanged', config: old }
    if (old && (old.network !== cfg.network || old.subnetLen !== cfg.subnetLen)) {
      const { leases } = await listSubnets(client, i.prefix)
      if (leases.length) {
        throw new UserError(
          `the cluster network is ${old.network} with /${old.subnetLen} subnets and ${leases.length} nodes hold leases in it; it cannot change to ${cfg.network} /${cfg.subnetLen}`,
          'keep the network (only --mode may change), or stop every agent and let the leases expire first',
        )
      }
    }
    await client.kv.put({ key: Buffer.from(configKey(i.prefix)), value: Buffer.from(JSON.stringify(cfg)) }, deadline(5000))
    return { action: old ? 'updated' : 'created', config: cfg }
  } finally {
    client.close()
  }
}

export interface NodeLease {
  node: string
  nodeIp: string
  podCidr: string
  mode: string
  /** seconds left on the lease; null when the lease is gone */
  ttl: number | null
  expiresAt: string | null
}

export async function clusterNodes(c: EtcdConnection): Promise<{ config: ClusterConfig | null; nodes: NodeLease[] }> {
  const client = etcdClient(c)
  try {
    const config = await readClusterConfig(client, c.prefix).catch((e: unknown) => {
      throw e instanceof UserError ? e : etcdUserError(e, c)
    })
    const { leases } = await listSubnets(client, c.prefix)
    const nodes = await Promise.all(
      leases.map(async (l) => {
        const t = l.lease === '0' ? null : await client.leaseClient.leaseTimeToLive({ ID: l.lease }, deadline(5000)).catch(() => null)
        const ttl = t && Number(t.TTL) >= 0 ? Number(t.TTL) : null
        return {
          node: l.value.node,
          nodeIp: l.value.nodeIp,
          podCidr: l.cidr,
          mode: l.value.mode ?? '-',
          ttl,
          expiresAt: ttl === null ? null : new Date(Date.now() + ttl * 1000).toISOString(),
        }
      }),
    )
    return { config, nodes: nodes.sort((a, b) => a.node.localeCompare(b.node)) }
  } finally {
    client.close()
  }
}
