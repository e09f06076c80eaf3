// /healthz (the process and its event loop answer), /readyz (the node is
// attached, synced and its datastore is usable; otherwise 503 with why) and
// /metrics (datapath counters + agent series) on --listen.
import { createServer, type Server } from 'node:http'
import type { Registry } from 'prom-client'
import { UserError } from '../errors.js'

export interface Probe {
  ready(): { ready: boolean; reason: string | null }
  registries(): Registry[]
}

export interface HttpServer {
  url: string
  close(): Promise<void>
}

export async function serveAgentHttp(listen: string, probe: Probe): Promise<HttpServer> {
  const i = listen.lastIndexOf(':')
  const host = listen.slice(0, i)
  const port = Number(listen.slice(i + 1))
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    const text = (code: number, body: string) => res.writeHead(code, { 'Content-Type': 'text/plain; charset=utf-8' }).end(body)
    if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, { Allow: 'GET, HEAD' }).end()
    if (path === '/healthz') return void text(200, 'ok\n')
    if (path === '/readyz') {
      const r = probe.ready()
      return void text(r.ready ? 200 : 503, r.ready ? 'ready\n' : `not ready: ${r.reason ?? 'starting'}\n`)
    }
    if (path === '/metrics') {
      probe.ready() // brings podnet_agent_ready up to date with /readyz
      Promise.all(probe.registries().map((r) => r.metrics()))
        .then((parts) => res.writeHead(200, { 'Content-Type': probe.registries()[0]!.contentType }).end(parts.join('\n')))
        .catch((e: unknown) => text(500, `${(e as Error).message}\n`))
      return
    }
    text(404, 'not found: /healthz, /readyz, /metrics\n')
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'EADDRINUSE' || e.code === 'EADDRNOTAVAIL' || e.code === 'EACCES'
          ? new UserError(`cannot listen on ${listen} (${e.code})`, 'pass a free --listen ADDRESS:PORT (port 0 picks one)')
          : e,
      ),
    )
    server.listen(port, host, () => resolve())
  })
  const addr = server.address()
  const url = typeof addr === 'object' && addr ? `http://${addr.address}:${addr.port}` : `http://${listen}`
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
