// Talking to a running BIRD over its control socket with `birdc`, and
// reading its answers (sessions from `show protocols all`); shared by the
// agent's BGP mode and the lab's top-of-rack router.
import { execFile } from 'node:child_process'
import { join } from 'node:path'

export interface BgpSession {
  /** BIRD protocol name */
  name: string
  /** "node NAME" or "router" (the description the renderer wrote) */
  description: string
  peer: string
  asn: number
  /** BGP FSM state: Idle, Connect, Active, OpenSent, OpenConfirm, Established */
  state: string
  /** ISO time of the last state change, as BIRD prints it */
  since: string
  /** seconds in the current state */
  uptimeSeconds: number
  /** BIRD's info column when the session is not up (last error) */
  info: string
  prefixes: { received: number; accepted: number; rejected: number }
}

export class BirdcError extends Error {}

/** Runs one birdc command; resolves to its output without the banner. */
export function birdc(socket: string, args: readonly string[], timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('birdc', ['-s', socket, ...args], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const out = stdout.replace(/^BIRD [^\n]* ready\.\n/, '')
      if (err) reject(new BirdcError(`birdc ${args.join(' ')}: ${(stderr || out || err.message).trim()}`))
      else if (/^Unable to connect/m.test(out)) reject(new BirdcError(out.trim()))
      else resolve(out)
    })
  })
}

/** Parses `show protocols all` and keeps the BGP protocols. */
export function parseProtocols(text: string, now = Date.now()): BgpSession[] {
  const out: BgpSession[] = []
  let cur: BgpSession | undefined
  for (const line of text.split('\n')) {
    // header: Name Proto Table State Since Info; since is "YYYY-MM-DD HH:MM:SS" (timeformat protocol iso long)
    const head = /^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?)\s*(.*)$/.exec(line)
    if (head && head[1] !== 'Name') {
      cur = undefined
      if (head[2] !== 'BGP') continue
      const since = head[5]!
      const t = Date.parse(since.replace(' ', 'T'))
      cur = {
        name: head[1]!,
        description: '',
        peer: '',
        asn: 0,
        state: head[6]!.trim().split(/\s+/)[0] ?? head[4]!,
        since,
        uptimeSeconds: Number.isNaN(t) ? 0 : Math.max(0, Math.round((now - t) / 1000)),
        info: head[6]!.trim(),
        prefixes: { received: 0, accepted: 0, rejected: 0 },
      }
      out.push(cur)
      continue
    }
    if (!cur) continue
    let m: RegExpExecArray | null
    if ((m = /^\s+Description:\s+(.*)$/.exec(line))) cur.description = m[1]!.trim()
    else if ((m = /^\s+BGP state:\s+(\S+)/.exec(line))) cur.state = m[1]!
    else if ((m = /^\s+Neighbor address:\s+(\S+)/.exec(line))) cur.peer = m[1]!
    else if ((m = /^\s+Neighbor AS:\s+(\d+)/.exec(line))) cur.asn = Number(m[1])
    else if ((m = /^\s+Routes:\s+(\d+) imported, (?:(\d+) filtered, )?/.exec(line))) {
      const accepted = Number(m[1])
      const rejected = Number(m[2] ?? 0)
      cur.prefixes = { received: accepted + rejected, accepted, rejected }
    }
  }
  return out
}

export async function showSessions(socket: string): Promise<BgpSession[]> {
  return parseProtocols(await birdc(socket, ['show', 'protocols', 'all']))
}

/** The run dir of a node agent's BIRD (config, control socket, pid file), by its pin dir. */
export function bgpRunDir(stateDir: string, pinDir: string): string {
  return join(stateDir, `bgp${pinDir.replace(/\//g, '_')}`)
}
