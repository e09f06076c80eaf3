// Kubernetes API TEST SERVER (not a Kubernetes API server): enough of the
// core/v1 Node API, over HTTPS (plain HTTP without a certificate), for what podnet-bpf's Kubernetes datastore
// uses, with the protocol rules a real kube-apiserver enforces:
//   GET  /api/v1/nodes                     list, metadata.resourceVersion
//   GET  /api/v1/nodes?watch=1&...         ADDED/MODIFIED/DELETED, BOOKMARK with allowWatchBookmarks,
//                                          ERROR 410 Expired for a compacted resourceVersion
//   GET  /api/v1/nodes/NAME
//   PATCH /api/v1/nodes/NAME[/status]      json-patch, merge-patch, strategic-merge-patch
// Bearer-token authentication (401), RBAC from ClusterRole rules (403), 415 for
// other patch types, 409 on a stale metadata.resourceVersion, 422 on invalid
// objects. Every request is logged so tests can compare it with the manifests.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { Socket } from 'node:net'
import { jsonPatch, mergePatch, PatchError, strategicMergePatch } from './kube-patch.js'

export type KubeNode = { metadata: { name: string; [k: string]: any }; spec?: any; status?: any; [k: string]: any }
export interface PolicyRule {
  apiGroups?: string[]
  resources?: string[]
  verbs?: string[]
  resourceNames?: string[]
}
export interface LoggedRequest {
  method: string
  path: string
  query: Record<string, string>
  user: string | null
  verb: string
  resource: string
  name?: string
  contentType?: string
  body?: unknown
  code: number
}
export interface TestServerOptions {
  host?: string
  port?: number
  /** bearer token → user name */
  tokens?: Record<string, string>
  /** when set, requests are authorized against these rules (as a ClusterRole would) */
  rules?: PolicyRule[]
  bookmarkIntervalMs?: number
  /** PEM certificate and key: serve HTTPS, as every real API server does */
  tls?: { cert: string; key: string }
}
export interface NodeSpec {
  name: string
  podCIDR?: string
  internalIP?: string
  annotations?: Record<string, string>
}

interface Event {
  type: 'ADDED' | 'MODIFIED' | 'DELETED'
  object: KubeNode
  rv: number
}
interface Watcher {
  res: ServerResponse
  send(e: Event): void
}

const PATCH_TYPES = ['application/json-patch+json', 'application/merge-patch+json', 'application/strategic-merge-patch+json']
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T

class HttpError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message)
  }
}

export function nodeObject(n: NodeSpec): KubeNode {
  return {
    metadata: { name: n.name, annotations: { ...(n.annotations ?? {}) }, labels: { 'kubernetes.io/hostname': n.name } },
    spec: n.podCIDR ? { podCIDR: n.podCIDR, podCIDRs: [n.podCIDR] } : {},
    status: {
      addresses: [...(n.internalIP ? [{ type: 'InternalIP', address: n.internalIP }] : []), { type: 'Hostname', address: n.name }],
      conditions: [{ type: 'Ready', status: 'False', reason: 'KubeletNotReady', message: 'network plugin not ready' }],
    },
  }
}

export class KubeApiTestServer {
  readonly log: LoggedRequest[] = []
  private nodes = new Map<string, KubeNode>()
  private history: Event[] = []
  private rv = 100
  private minRv = 100
  private uid = 0
  private watchers = new Set<Watcher>()
  private sockets = new Set<Socket>()
  private server: Server | null = null
  private failWith: number | null = null
  port = 0

  constructor(private readonly opts: TestServerOptions = {}) {}

  get url(): string {
    return `${this.opts.tls ? 'https' : 'http'}://${this.opts.host ?? '127.0.0.1'}:${this.port}`
  }
  get resourceVersion(): string {
    return String(this.rv)
  }
  get watchCount(): number {
    return this.watchers.size
  }

  async start(): Promise<void> {
    const handler = (req: IncomingMessage, res: ServerResponse): void => void this.handle(req, res)
    const server: Server = this.opts.tls ? createHttpsServer(this.opts.tls, handler) : createHttpServer(handler)
    server.on(this.opts.tls ? 'secureConnection' : 'connection', (s) => {
      this.sockets.add(s)
      s.on('close', () => this.sockets.delete(s))
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.port || this.opts.port || 0, this.opts.host ?? '127.0.0.1', () => resolve())
    })
    this.port = (server.address() as { port: number }).port
    this.server = server
  }

  /** Down: stop listening and reset every connection; state is kept for start(). */
  async stop(): Promise<void> {
    const server = this.server
    this.server = null
    for (const w of this.watchers) w.res.destroy()
    this.watchers.clear()
    for (const s of this.sockets) s.destroy()
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  /** Ends every open watch cleanly, as an API server does at its watch timeout or on restart. */
  cutWatches(): number {
    const n = this.watchers.size
    for (const w of this.watchers) w.res.end()
    this.watchers.clear()
    return n
  }

  /** Answers every request with this HTTP status (a Status object), as a sick API server does (e.g. 503 while its etcd is away); null: healthy. */
  fail(code: number | null): void {
    this.failWith = code
  }

  /** Writes elsewhere in the cluster (other resources share the revision counter): the resourceVersion moves, Node watchers see no event. */
  advance(n: number): void {
    this.rv += n
  }

  /** Forgets history up to now: a watch from any older resourceVersion gets 410 Gone. */
  compact(): void {
    this.minRv = this.rv
    this.history = []
  }

  createNode(n: NodeSpec | KubeNode): KubeNode {
    const obj = 'metadata' in n ? clone(n) : nodeObject(n)
    if (this.nodes.has(obj.metadata.name)) throw new Error(`node ${obj.metadata.name} exists`)
    obj.metadata.uid = `uid-${++this.uid}`
    obj.metadata.creationTimestamp = new Date().toISOString()
    return this.write('ADDED', obj)
  }

  /** Changes a Node as the control plane would (e.g. kube-controller-manager assigning a pod CIDR). */
  updateNode(name: string, change: (n: KubeNode) => void): KubeNode {
    const obj = clone(this.need(name))
    change(obj)
    return this.write('MODIFIED', obj)
  }

  deleteNode(name: string): void {
    const obj = this.need(name)
    this.nodes.delete(name)
    this.write('DELETED', obj)
  }

  getNode(name: string): KubeNode | undefined {
    const n = this.nodes.get(name)
    return n && clone(n)
  }

  private need(name: string): KubeNode {
    const n = this.nodes.get(name)
    if (!n) throw new HttpError(404, 'NotFound', `nodes "${name}" not found`)
    return n
  }

  private write(type: Event['type'], obj: KubeNode): KubeNode {
    const o = clone(obj)
    o.metadata.resourceVersion = String(++this.rv)
    if (type !== 'DELETED') this.nodes.set(o.metadata.name, o)
    const e: Event = { type, object: o, rv: this.rv }
    this.history.push(e)
    for (const w of this.watchers) w.send(e)
    return clone(o)
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x')
    const query = Object.fromEntries(url.searchParams)
    const entry: LoggedRequest = { method: req.method ?? '', path: url.pathname, query, user: null, verb: '', resource: '', code: 0 }
    this.log.push(entry)
    try {
      const body = await readBody(req)
      const m = /^\/api\/v1\/nodes(?:\/([^/]+))?(\/status)?$/.exec(url.pathname)
      entry.name = m?.[1] && decodeURIComponent(m[1])
      entry.resource = m ? (m[2] ? 'nodes/status' : 'nodes') : ''
      entry.verb = verbOf(req.method ?? '', entry.name, query)
      if (this.failWith) throw new HttpError(this.failWith, 'ServiceUnavailable', 'the server is currently unable to handle the request')
      entry.user = this.authenticate(req)
      if (!m) throw new HttpError(404, 'NotFound', 'the server could not find the requested resource')
      this.authorize(entry)
      if (entry.verb === 'watch') return this.watch(query, res, entry)
      if (entry.verb === 'list') return this.reply(res, entry, 200, this.list(query))
      if (entry.verb === 'get') return this.reply(res, entry, 200, withKind(clone(this.need(entry.name ?? ''))))
      if (entry.verb === 'patch') {
        entry.contentType = req.headers['content-type']
        entry.body = parseJson(body)
        return this.reply(res, entry, 200, withKind(this.patch(entry, entry.body)))
      }
      throw new HttpError(405, 'MethodNotAllowed', `${req.method} ${url.pathname} is not implemented by this test server`)
    } catch (err) {
      if (err instanceof HttpError || err instanceof PatchError)
        this.reply(res, entry, err.code, statusObject(err.code, err.reason, err.message))
      else this.reply(res, entry, 500, statusObject(500, 'InternalError', String(err)))
    }
  }

  private authenticate(req: IncomingMessage): string {
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')
    const user = m && this.opts.tokens ? this.opts.tokens[m[1]!.trim()] : undefined
    if (!this.opts.tokens) return 'anonymous'
    if (!user) throw new HttpError(401, 'Unauthorized', 'Unauthorized')
    return user
  }

  private authorize(e: LoggedRequest): void {
    const rules = this.opts.rules
    if (!rules || allowedBy(rules, e.verb, e.resource, e.name)) return
    const what = e.name ? `nodes "${e.name}"` : 'nodes'
    throw new HttpError(
      403,
      'Forbidden',
      `${what} is forbidden: User "${e.user}" cannot ${e.verb} resource "${e.resource}" in API group "" at the cluster scope`,
    )
  }

  private reply(res: ServerResponse, entry: LoggedRequest, code: number, body: unknown): void {
    entry.code = code
    if (res.headersSent) return void res.end()
    res.writeHead(code, { 'content-type': 'application/json' })
    res.end(JSON.stringify(body))
  }

  private parseRv(v: string | undefined): number | null {
    if (v === undefined || v === '' || v === '0') return null
    if (!/^\d+$/.test(v)) throw new HttpError(400, 'BadRequest', `invalid resource version "${v}"`)
    return Number(v)
  }

  private list(query: Record<string, string>): unknown {
    if (query.resourceVersionMatch && !query.resourceVersion) {
      throw new HttpError(
        422,
        'Invalid',
        'resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided',
      )
    }
    const want = this.parseRv(query.resourceVersion)
    if (want !== null && want > this.rv) throw new HttpError(504, 'Timeout', `Too large resource version: ${want}, current: ${this.rv}`)
    const items = [...this.nodes.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)).map(clone)
    return { kind: 'NodeList', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) }, items }
  }

  private watch(query: Record<string, string>, res: ServerResponse, entry: LoggedRequest): void {
    if (query.resourceVersionMatch) throw new HttpError(400, 'BadRequest', 'resourceVersionMatch is forbidden for watch')
    const from = this.parseRv(query.resourceVersion)
    if (from !== null && from > this.rv) throw new HttpError(504, 'Timeout', `Too large resource version: ${from}, current: ${this.rv}`)
    entry.code = 200
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' })
    const line = (type: string, object: unknown): boolean => res.write(JSON.stringify({ type, object }) + '\n')
    // A compacted start point: a 200 whose only event is an ERROR with a 410 Status, as the watch cache does.
    if (from !== null && from < this.minRv) {
      line('ERROR', statusObject(410, 'Expired', `too old resource version: ${from} (${this.minRv})`))
      return void res.end()
    }
    let last = from ?? this.rv
    const w: Watcher = {
      res,
      send: (e) => {
        if (e.rv <= last) return
        last = e.rv
        line(e.type, withKind(clone(e.object)))
      },
    }
    if (from === null) for (const n of this.nodes.values()) line('ADDED', withKind(clone(n)))
    else for (const e of this.history) w.send(e)
    this.watchers.add(w)
    const timers: NodeJS.Timeout[] = []
    if (query.allowWatchBookmarks === 'true') {
      timers.push(
        setInterval(
          () => line('BOOKMARK', { kind: 'Node', apiVersion: 'v1', metadata: { resourceVersion: String(Math.max(last, this.rv)) } }),
          this.opts.bookmarkIntervalMs ?? 1000,
        ),
      )
    }
    const timeout = Number(query.timeoutSeconds)
    if (timeout > 0) timers.push(setTimeout(() => res.end(), timeout * 1000))
    res.on('close', () => {
      timers.forEach((t) => clearTimeout(t))
      this.watchers.delete(w)
    })
  }

  private patch(e: LoggedRequest, body: unknown): KubeNode {
    const ct = (e.contentType ?? '').split(';')[0]!.trim()
    if (!PATCH_TYPES.includes(ct)) {
      const detail = ct === 'application/apply-patch+yaml' ? ' (server-side apply is not implemented by this test server)' : ''
      throw new HttpError(
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: ${PATCH_TYPES.join(', ')}${detail}`,
      )
    }
    const old = this.need(e.name ?? '')
    const apply = ct === PATCH_TYPES[0] ? jsonPatch : ct === PATCH_TYPES[1] ? mergePatch : strategicMergePatch
    const patched = apply(clone(old) as never, body as never) as KubeNode
    const sentRv = (body as KubeNode | undefined)?.metadata?.resourceVersion
    if (ct !== PATCH_TYPES[0] && sentRv !== undefined && sentRv !== old.metadata.resourceVersion) {
      throw new HttpError(409, 'Conflict', `Operation cannot be fulfilled on nodes "${e.name}": the object has been modified`)
    }
    validate(old, patched)
    // The status subresource writes only status; the main resource never writes status.
    const next = clone(old)
    if (e.resource === 'nodes/status') next.status = patched.status
    else Object.assign(next, { metadata: { ...patched.metadata, resourceVersion: old.metadata.resourceVersion }, spec: patched.spec })
    if (JSON.stringify(next) === JSON.stringify(old)) return clone(old)
    return this.write('MODIFIED', next)
  }
}

function validate(old: KubeNode, n: KubeNode): void {
  const bad = (field: string, msg: string): never => {
    throw new HttpError(422, 'Invalid', `Node "${old.metadata.name}" is invalid: ${field}: ${msg}`)
  }
  if (typeof n !== 'object' || n === null || typeof n.metadata !== 'object') bad('metadata', 'Required value')
  if (n.metadata.name !== old.metadata.name) bad('metadata.name', 'Invalid value: field is immutable')
  if (n.metadata.uid !== old.metadata.uid) bad('metadata.uid', 'Invalid value: field is immutable')
  for (const [k, v] of Object.entries(n.metadata.annotations ?? {})) {
    if (typeof v !== 'string') throw new HttpError(400, 'BadRequest', `metadata.annotations[${k}]: expected a string, got ${typeof v}`)
  }
  const oldCidr = old.spec?.podCIDR
  if (oldCidr && n.spec?.podCIDR !== oldCidr) bad('spec.podCIDR', 'Forbidden: node updates may not change podCIDR except from "" to valid')
  for (const c of n.status?.conditions ?? []) {
    if (typeof c?.type !== 'string' || !c.type) bad('status.conditions.type', 'Required value')
    if (!['True', 'False', 'Unknown'].includes(c.status))
      bad(`status.conditions[${c.type}].status`, `Unsupported value: ${JSON.stringify(c.status)}`)
    for (const t of ['lastHeartbeatTime', 'lastTransitionTime']) {
      if (c[t] !== undefined && Number.isNaN(Date.parse(c[t]))) {
        throw new HttpError(400, 'BadRequest', `status.conditions[${c.type}].${t}: cannot parse ${JSON.stringify(c[t])} as a time`)
      }
    }
  }
}

function verbOf(method: string, name: string | undefined, query: Record<string, string>): string {
  const watch = query.watch === 'true' || query.watch === '1'
  if (method === 'GET') return watch ? 'watch' : name ? 'get' : 'list'
  return ({ PATCH: 'patch', PUT: 'update', POST: 'create', DELETE: 'delete' } as Record<string, string>)[method] ?? method.toLowerCase()
}

export function allowedBy(rules: PolicyRule[], verb: string, resource: string, name?: string): boolean {
  const has = (list: string[] | undefined, v: string): boolean => !!list && (list.includes(v) || list.includes('*'))
  return rules.some(
    (r) =>
      has(r.apiGroups, '') &&
      has(r.resources, resource) &&
      has(r.verbs, verb) &&
      (!r.resourceNames?.length || (name !== undefined && r.resourceNames.includes(name))),
  )
}

function withKind(n: KubeNode): KubeNode {
  return { kind: 'Node', apiVersion: 'v1', ...n }
}

function statusObject(code: number, reason: string, message: string): unknown {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code }
}

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body)
  } catch {
    throw new HttpError(400, 'BadRequest', 'the request body is not valid JSON')
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}
