// --datastore file: this node's pod CIDR from the config (--pod-cidr), peers
// from an optional YAML file (--peers-file) that is watched. A file that
// stops parsing keeps the last good peer set (datapath unchanged) and makes
// the node not ready until it is fixed.
import { watch as fsWatch, type FSWatcher } from 'node:fs'
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

export class FileDatastore implements Datastore {
  readonly kind = 'file'
  private current: PeerNode[] = []
  private error: string | null = null
  private loadedAt: string | null = null
  private watcher: FSWatcher | null = null
  private poll: NodeJS.Timeout | null = null

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

  private reload(): boolean {
    if (!this.peersFile) return false
    try {
      const next = readPeersFile(this.peersFile, this.ctx.nodeName)
      const was = this.error
      this.error = null
      this.loadedAt = new Date().toISOString()
      if (was) this.ctx.log.info('peers file is valid again', { file: this.peersFile, peers: next.length })
      const changed = JSON.stringify(next) !== JSON.stringify(this.current)
      this.current = next
      return changed || was !== null
    } catch (e) {
      const msg = e instanceof UserError ? e.message.replace(/\n\s*/g, '; ') : String(e)
      if (msg !== this.error) this.ctx.log.error('peers file rejected; keeping the previous peers', { file: this.peersFile, error: msg })
      this.error = msg
      return false
    }
  }

  watch(onChange: () => void, signal: AbortSignal): void {
    if (!this.peersFile) return
    const file = this.peersFile
    const check = () => {
      if (this.reload()) onChange()
    }
    // watch the directory: editors and `mv` replace the file, which ends a file watch
    try {
      this.watcher = fsWatch(dirname(file), (_ev, name) => {
        if (!name || name === basename(file)) check()
      })
      this.watcher.on('error', () => {})
    } catch (e) {
      this.ctx.log.warn('cannot watch the peers file directory; polling only', { error: (e as Error).message })
    }
    // a slow poll as well: some filesystems send no events
    this.poll = setInterval(check, 2000)
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
      detail: { peersFile: this.peersFile ?? null, loadedAt: this.loadedAt, peers: this.current.length },
    }
  }

  async stop(): Promise<void> {
    this.watcher?.close()
    if (this.poll) clearInterval(this.poll)
    this.watcher = null
    this.poll = null
  }
}
