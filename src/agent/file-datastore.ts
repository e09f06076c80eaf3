// --datastore file: this node's pod CIDR from the config (--pod-cidr), peers
// from an optional YAML file (--peers-file) that is watched. A file that
// stops parsing keeps the last good peer set (datapath unchanged) and makes
// the node not ready until it is fixed. A file written in place (truncated,
// then written) is read once it has been quiet for SETTLE_MS, and a read
// that may have caught it mid-write (no parse, emptied, changed while read)
// is retried before it counts, so peers never drop for a half-written file.
// Writing a temp file and renaming it over the peers file is still best: it
// is the only way no reader can see a prefix that happens to parse.
import { statSync, watch as fsWatch, type FSWatcher } from 'node:fs'
import { basename, dirname } from 'node:path'
import { z } from '../util/zod.js'
import { UserError } from '../errors.js'
import { formatZodError } from '../services/config.js'
import { isIPv4, parseCidr, cidrString } from '../util/ipv4.js'
import { readYamlFile } from './config.js'
import type { Datastore, DatastoreContext, DatastoreStatus, OwnNode, PeerNode } from './datastore.js'

const PeerSchema = z
  .object({
    name: z.string().min(1),
    nodeIp: z.string().refine(isIPv4, { message: 'must be an IPv4 address like 192.168.77.2' }),
    podCidr: z.string().superRefine((s, ctx) => {
      try {
        parseCidr(s)
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: e instanceof UserError ? e.toString() : String(e) })
      }
    }),
    mode: z.enum(['direct', 'vxlan', 'auto']).optional(),
  })
  .strict()

/** `peers:` list (or a bare list) of {name, nodeIp, podCidr, mode?}. */
export const PeersFileSchema = z.union([z.array(PeerSchema), z.object({ peers: z.array(PeerSchema) }).strict()])

export function readPeersFile(path: string, self: string): PeerNode[] {
  const raw = readYamlFile(path, 'peers file') ?? []
  const r = PeersFileSchema.safeParse(raw)
  if (!r.success) throw formatZodError(r.error, `peers file ${path}`)
  const list = Array.isArray(r.data) ? r.data : r.data.peers
  return list.filter((p) => p.name !== self).map((p) => ({ ...p, podCidr: cidrString(parseCidr(p.podCidr)) }))
}

/** A change is read once the file has been quiet this long (a write in place is a truncate, then writes). */
const SETTLE_MS = 100
/** A read that may have caught a write in progress is repeated after RETRY_MS, … */
const RETRY_MS = 100
/** … at most this many times; then it counts (rejected keeping the peers, or taken when it parses). */
const RETRIES = 5

interface Read {
  peers?: PeerNode[]
  error?: string
  /** may be a write in progress: read again before acting on it */
  suspect: boolean
}

const statOf = (path: string): { key: string; size: number } | null => {
  try {
    const st = statSync(path)
    return { key: `${st.ino}:${st.size}:${st.mtimeMs}`, size: st.size }
  } catch {
    return null
  }
}

export class FileDatastore implements Datastore {
  readonly kind = 'file'
  private current: PeerNode[] = []
  private error: string | null = null
  private loadedAt: string | null = null
  /** reads that looked half-written and were repeated */
  private halfWrittenReads = 0
  private watcher: FSWatcher | null = null
  private poll: NodeJS.Timeout | null = null
  private timer: NodeJS.Timeout | null = null
  private onChange: () => void = () => {}

  constructor(
    private readonly ctx: DatastoreContext,
    private readonly podCidr: string,
    private readonly peersFile?: string,
  ) {}

  async start(): Promise<OwnNode> {
    // a bad file at start is an operator error: refuse before attaching anything
    if (this.peersFile) this.current = readPeersFile(this.peersFile, this.ctx.nodeName)
    this.loadedAt = new Date().toISOString()
    return { name: this.ctx.nodeName, nodeIp: this.ctx.nodeIp, podCidr: cidrString(parseCidr(this.podCidr, 'pod CIDR')) }
  }

  /** One read, and whether it may have caught the file mid-write. */
  private read(file: string): Read {
    const before = statOf(file)
    let peers: PeerNode[]
    try {
      peers = readPeersFile(file, this.ctx.nodeName)
    } catch (e) {
      return { error: e instanceof UserError ? e.message.replace(/\n\s*/g, '; ') : String(e), suspect: true }
    }
    const after = statOf(file)
    const emptied = after?.size === 0 && this.current.length > 0
    return { peers, suspect: before?.key !== after?.key || emptied }
  }

  /** Reads the file `delay` ms from now (again), replacing a read already scheduled. */
  private schedule(delay: number, attempt = 0): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.timer = null
      this.load(attempt)
    }, delay)
  }

  private load(attempt: number): void {
    const file = this.peersFile!
    const r = this.read(file)
    if (r.suspect && attempt < RETRIES) {
      this.halfWrittenReads++
      this.ctx.events.error()
      if (attempt === 0) this.ctx.log.info('peers file looks half-written; reading it again shortly', { file, error: r.error ?? null })
      return this.schedule(RETRY_MS, attempt + 1)
    }
    if (r.peers ? this.accept(r.peers) : this.reject(r.error!)) this.onChange()
  }

  /** True when the peers (or the readiness) changed. */
  private accept(next: PeerNode[]): boolean {
    const was = this.error
    this.error = null
    this.loadedAt = new Date().toISOString()
    if (was) this.ctx.log.info('peers file is valid again', { file: this.peersFile, peers: next.length })
    const changed = JSON.stringify(next) !== JSON.stringify(this.current)
    this.current = next
    return changed || was !== null
  }

  private reject(error: string): boolean {
    if (error !== this.error) this.ctx.log.error('peers file rejected; keeping the previous peers', { file: this.peersFile, error })
    this.error = error
    return false
  }

  watch(onChange: () => void, signal: AbortSignal): void {
    if (!this.peersFile) return
    const file = this.peersFile
    this.onChange = onChange
    // watch the directory: editors and `mv` replace the file, which ends a file watch
    try {
      this.watcher = fsWatch(dirname(file), (_ev, name) => {
        if (!name || name === basename(file)) this.schedule(SETTLE_MS)
      })
      this.watcher.on('error', () => {})
    } catch (e) {
      this.ctx.log.warn('cannot watch the peers file directory; polling only', { error: (e as Error).message })
    }
    // a slow poll as well: some filesystems send no events
    this.poll = setInterval(() => {
      if (!this.timer) this.schedule(0)
    }, 2000)
    this.poll.unref()
    signal.addEventListener('abort', () => void this.stop(), { once: true })
  }

  peers(): PeerNode[] {
    return this.current
  }

  status(): DatastoreStatus {
    return {
      ready: this.error === null,
      ...(this.error ? { reason: `peers file ${this.peersFile}: ${this.error}` } : {}),
      detail: {
        peersFile: this.peersFile ?? null,
        loadedAt: this.loadedAt,
        peers: this.current.length,
        halfWrittenReads: this.halfWrittenReads,
      },
    }
  }

  async stop(): Promise<void> {
    this.watcher?.close()
    if (this.poll) clearInterval(this.poll)
    if (this.timer) clearTimeout(this.timer)
    this.watcher = null
    this.poll = null
    this.timer = null
  }
}
