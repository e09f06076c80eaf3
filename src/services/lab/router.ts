// The lab's top-of-rack router with `lab up --routing bgp`: BIRD in the
// router namespace (the one between subnets A and B), eBGP with every
// node's agent, so it learns every pod CIDR, installs them in its own
// kernel table and forwards pod traffic between the subnets unencapsulated.
// Config, control socket, pid file and log live under the lab's directory;
// the daemon is a detached process of the router namespace, so `lab down`
// stops it with everything else in the lab's namespaces.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { UserError } from '../../errors.js'
import { CommandError, run } from '../../util/exec.js'
import { parseProtocols, type BgpSession } from '../bird.js'
import { renderRouterBird, type RouterSpec } from './bgp-router.js'
import { detached, labDir, routerLog } from './cluster.js'
import { nsenterArgs } from './netns.js'
import { NODE_ASN, ROUTER_ASN, routerIp } from './plan.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export interface RouterFiles {
  dir: string
  config: string
  socket: string
  pid: string
  log: string
}

export function routerFiles(lab: string): RouterFiles {
  const dir = join(labDir(lab), 'router')
  return {
    dir,
    config: join(dir, 'bird.conf'),
    socket: join(dir, 'bird.ctl'),
    pid: join(dir, 'bird.pid'),
    log: routerLog(lab),
  }
}

/** What the router's config is made of: the lab's nodes (a plan's or a running lab's). */
export interface RouterLab {
  name: string
  routerNs: string | null
  nodes: readonly { name: string; ip: string; subnet: 'a' | 'b' }[]
}

/** One eBGP session per node, from the router's address on the node's subnet. */
export function routerSpec(s: Pick<RouterLab, 'nodes'>): RouterSpec {
  return {
    routerId: routerIp('a'),
    asn: ROUTER_ASN,
    neighbors: s.nodes.map((n) => ({ name: n.name, address: n.ip, asn: NODE_ASN, local: routerIp(n.subnet) })),
  }
}

/** Checks the rendered config with `bird -p` before it replaces the current one. */
function writeConfig(f: RouterFiles, s: Pick<RouterLab, 'nodes'>): void {
  mkdirSync(f.dir, { recursive: true, mode: 0o700 })
  const tmp = `${f.config}.new`
  writeFileSync(tmp, renderRouterBird(routerSpec(s)), { mode: 0o600 })
  try {
    run('bird', ['-p', '-c', tmp])
  } catch (e) {
    rmSync(tmp, { force: true })
    if (e instanceof CommandError && e.status === null)
      throw new UserError('the BGP daemon (bird) is not installed', 'install BIRD 2: apt-get install bird2')
    throw new Error(`the router's BIRD configuration does not parse: ${(e as Error).message}`)
  }
  renameSync(tmp, f.config)
}

/** birdc from inside the router namespace (the lab talks to its routers from there, never from the host's) */
function birdcIn(routerNs: string, f: RouterFiles, args: string[]): string {
  const out = run('nsenter', nsenterArgs(routerNs, ['birdc', '-s', f.socket, ...args]), { timeoutMs: 5000 })
  if (/^Unable to connect/m.test(out)) throw new Error(out.trim())
  return out
}

/** Starts the router's BIRD and waits until its control socket answers. */
export async function startRouter(s: RouterLab): Promise<number> {
  const f = routerFiles(s.name)
  writeConfig(f, s)
  const pid = detached(s.routerNs!, ['bird', '-f', '-c', f.config, '-s', f.socket, '-P', f.pid], f.log)
  for (const end = Date.now() + 10_000; ; await sleep(50)) {
    try {
      if (existsSync(f.socket) && /Daemon is up/.test(birdcIn(s.routerNs!, f, ['show', 'status']))) return pid
    } catch {
      /* not listening yet */
    }
    if (Date.now() > end) throw new UserError(`the lab's router BIRD did not start: ${readTail(f.log)}`, `see ${f.log}`)
  }
}

/** The node set changed: new config, applied with `birdc configure` (sessions of other nodes stay up). */
export function reconfigureRouter(s: RouterLab): void {
  const f = routerFiles(s.name)
  writeConfig(f, s)
  const out = birdcIn(s.routerNs!, f, ['configure'])
  if (!/Reconfigur/.test(out)) throw new Error(`the router's BIRD refused the new configuration: ${out.trim()}`)
}

export interface RouterStatus {
  ns: string
  asn: number
  /** the router's address on each subnet: the nodes' BGP peer */
  addresses: string[]
  running: boolean
  pid: number | null
  socket: string
  sessions: BgpSession[]
  /** prefixes in the router's table (pod CIDRs learned) */
  routes: string[]
}

export function routerStatus(s: Pick<RouterLab, 'name' | 'routerNs'>): RouterStatus | null {
  if (!s.routerNs) return null
  const f = routerFiles(s.name)
  const pid = readPid(f.pid)
  const base = { ns: s.routerNs, asn: ROUTER_ASN, addresses: [routerIp('a'), routerIp('b')], socket: f.socket, pid }
  try {
    const sessions = parseProtocols(birdcIn(s.routerNs, f, ['show', 'protocols', 'all']))
    const routes = [...birdcIn(s.routerNs, f, ['show', 'route']).matchAll(/^(\d+\.\d+\.\d+\.\d+\/\d+)/gm)].map((m) => m[1]!).sort()
    return { ...base, running: true, sessions, routes }
  } catch {
    return { ...base, running: false, sessions: [], routes: [] }
  }
}

/** Kills the router's BIRD by its pid file, if that process is still ours (its command line names our socket). */
export function killStrayRouter(lab: string): void {
  const f = routerFiles(lab)
  const pid = readPid(f.pid)
  if (!pid) return
  try {
    if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(f.socket)) process.kill(pid, 'SIGKILL')
  } catch {
    /* gone */
  }
}

function readPid(path: string): number | null {
  try {
    const n = Number(readFileSync(path, 'utf8').trim())
    return Number.isInteger(n) && n > 0 ? n : null
  } catch {
    return null
  }
}

function readTail(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim().split('\n').slice(-2).join(' / ')
  } catch {
    return 'no log'
  }
}
