// The lab on etcd + agents (the default): a 3-member etcd cluster in
// namespaces on the lab's underlay bridge, `cluster init`, and one
// `podnet-bpf agent --datastore etcd` per node, each a detached process
// whose log is kept under the lab's directory. Pod CIDRs come from the
// agents' leases; the lab only reads them back.
import { spawn } from 'node:child_process'
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { UserError } from '../../errors.js'
import { readAgentStatus } from '../agent-status.js'
import { DatapathMaps } from '../../datapath/maps.js'
import { stateDir } from '../state.js'
import { ipBatch, nsenterArgs, nsSysctl, spawnAsync } from './netns.js'
import { NODE_ASN, ROUTER_ASN, SUBNETS, routerIp, type LabRouting } from './plan.js'
import type { LabState } from './state.js'
import { pidAlive } from '../../util/process.js'

export const ETCD_MEMBERS = 3
export const CLUSTER_NETWORK = '10.244.0.0/16'
export const ETCD_PREFIX = '/podnet.io/network'
export const LAB_LEASE_TTL = '15s'
export const etcdMemberIp = (k: number) => `${SUBNETS.a}.${200 + k}`
export const etcdEndpoints = (members = ETCD_MEMBERS) =>
  Array.from({ length: members }, (_, i) => `http://${etcdMemberIp(i + 1)}:2379`).join(',')

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The CLI entry (bin/run.js) of this checkout, also under vitest. */
export function cliPath(): string {
  const here = fileURLToPath(import.meta.url)
  return resolve(dirname(here), here.endsWith('.js') ? '../../../bin/run.js' : '../../../bin/run.js')
}

export function labDir(name: string): string {
  return join(stateDir(), 'labs', name)
}

export const agentLog = (lab: string, node: string) => join(labDir(lab), `${node}.log`)
export const etcdLog = (lab: string, k: number) => join(labDir(lab), `etcd${k}.log`)
/** the top-of-rack router's BIRD (`lab up --routing bgp`) */
export const routerLog = (lab: string) => join(labDir(lab), 'router.log')

/** A process that outlives `lab up`, in a namespace, output to a file. */
export function detached(ns: string, cmd: string[], logFile: string): number {
  mkdirSync(dirname(logFile), { recursive: true })
  const out = openSync(logFile, 'a')
  try {
    const p = spawn('nsenter', nsenterArgs(ns, cmd), { detached: true, stdio: ['ignore', out, out], env: process.env })
    p.unref()
    if (p.pid === undefined) throw new Error(`cannot start ${cmd[0]} in ${ns}`)
    return p.pid
  } finally {
    closeSync(out)
  }
}

/** The etcd members' namespaces, plugged into the underlay bridge br-a. */
export async function buildEtcdNamespaces(s: Pick<LabState, 'underlayNs'>, nsOf: (k: number) => string): Promise<void> {
  const ul: string[][] = []
  for (let k = 1; k <= ETCD_MEMBERS; k++) {
    ul.push(
      ['link', 'add', `etcd${k}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', nsOf(k)],
      ['link', 'set', `etcd${k}`, 'master', 'br-a', 'up'],
    )
  }
  ipBatch(s.underlayNs, ul)
  for (let k = 1; k <= ETCD_MEMBERS; k++) {
    await nsSysctl(nsOf(k), ['net.ipv6.conf.all.disable_ipv6=1'])
    ipBatch(nsOf(k), [
      ['link', 'set', 'lo', 'up'],
      ['addr', 'add', `${etcdMemberIp(k)}/24`, 'dev', 'eth0'],
      ['link', 'set', 'eth0', 'up'],
      ['route', 'add', `${SUBNETS.b}.0/24`, 'via', `${SUBNETS.a}.254`, 'dev', 'eth0'],
    ])
  }
}

export interface EtcdMember {
  name: string
  ip: string
  dataDir: string
  /** `name=http://ip:2380,…` for every member */
  initialCluster: string
  state: 'new' | 'existing'
  token: string
}

/** The etcd command line of one member of a namespace cluster (the lab's, and the tests'). */
export function etcdArgs(m: EtcdMember): string[] {
  const peer = `http://${m.ip}:2380`
  const client = `http://${m.ip}:2379`
  // short heartbeats: a LAN of namespaces, and quick elections after a member restarts
  return [
    'etcd',
    ...['--name', m.name, '--data-dir', m.dataDir],
    ...['--listen-client-urls', client, '--advertise-client-urls', client],
    ...['--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer],
    ...['--initial-cluster', m.initialCluster, '--initial-cluster-state', m.state, '--initial-cluster-token', m.token],
    ...['--heartbeat-interval', '50', '--election-timeout', '500'],
  ]
}

export function startEtcd(lab: string, nsOf: (k: number) => string): number[] {
  const initialCluster = Array.from({ length: ETCD_MEMBERS }, (_, i) => `etcd${i + 1}=http://${etcdMemberIp(i + 1)}:2380`).join(',')
  const pids: number[] = []
  for (let k = 1; k <= ETCD_MEMBERS; k++) {
    const dataDir = join(labDir(lab), `etcd${k}.data`)
    mkdirSync(dataDir, { recursive: true, mode: 0o700 })
    const args = etcdArgs({ name: `etcd${k}`, ip: etcdMemberIp(k), dataDir, initialCluster, state: 'new', token: `pnlab-${lab}` })
    pids.push(detached(nsOf(k), args, etcdLog(lab, k)))
  }
  return pids
}

/** `podnet-bpf …` run in a namespace of the lab (the host has no route to the underlay). */
export async function labCli(ns: string, args: string[], timeoutMs = 60_000): Promise<string> {
  const r = await spawnAsync('nsenter', nsenterArgs(ns, [process.execPath, cliPath(), ...args]), { timeoutMs })
  if (r.status !== 0) throw new Error(`podnet-bpf ${args.slice(0, 2).join(' ')} in ${ns}: ${(r.stderr || r.stdout).trim().split('\n')[0]}`)
  return r.stdout
}

/** cluster init, retried while the members elect a leader. */
export async function initCluster(ns: string, mode: string): Promise<void> {
  const deadline = Date.now() + 30_000
  for (;;) {
    try {
      await labCli(ns, ['cluster', 'init', '--etcd-endpoints', etcdEndpoints(), '--network', CLUSTER_NETWORK, '--mode', mode], 15_000)
      return
    } catch (e) {
      if (Date.now() > deadline)
        throw new UserError(`the lab's etcd did not come up: ${(e as Error).message}`, 'see the etcd logs with `podnet-bpf lab logs etcd1`')
      await sleep(300)
    }
  }
}

/** BGP: the agent runs BIRD and peers with the router's address on its own
 * subnet only (eBGP); no node-to-node mesh, since the router passes every
 * node's route on, keeping the owner as next hop within a subnet. */
function bgpArgs(node: { subnet: 'a' | 'b' }): string[] {
  return ['--routing', 'bgp', '--bgp-asn', String(NODE_ASN), '--bgp-peer', `${routerIp(node.subnet)}:${ROUTER_ASN}`, '--no-bgp-mesh']
}

export function startAgent(
  lab: string,
  node: { name: string; ns: string; pinDir: string; subnet: 'a' | 'b' },
  mode: string,
  routing: LabRouting = 'datastore',
): number {
  return detached(
    node.ns,
    [
      process.execPath,
      cliPath(),
      'agent',
      '--datastore',
      'etcd',
      '--etcd-endpoints',
      etcdEndpoints(),
      '--node-name',
      node.name,
      '--device',
      'eth0',
      '--mode',
      mode,
      '--pin-dir',
      node.pinDir,
      '--listen',
      '127.0.0.1:9963',
      '--cni-conf-dir',
      join(labDir(lab), `${node.name}.cni`),
      '--lease-ttl',
      LAB_LEASE_TTL,
      '--resync-interval',
      '10s',
      ...(routing === 'bgp' ? bgpArgs(node) : []),
    ],
    agentLog(lab, node.name),
  )
}

/** Waits until the agent says ready; its pod CIDR and the time it was first seen with one. */
export async function waitAgentReady(
  lab: string,
  node: { name: string; pinDir: string },
  timeoutMs = 90_000,
  /** return once the lease is known, before the agent is ready */
  leaseOnly = false,
): Promise<{ podCidr: string; leasedAt: number }> {
  const t0 = Date.now()
  let leasedAt = 0
  for (;;) {
    const s = readAgentStatus(node.pinDir)
    // the agent says when it wrote its lease; else the first time the lab saw it
    const written = s?.running ? s.datastoreDetail.leasedAt : undefined
    if (typeof written === 'string') leasedAt = Date.parse(written)
    else if (s?.podCidr && !leasedAt) leasedAt = Date.now()
    if (s?.running && (s.ready || (leaseOnly && leasedAt)) && s.podCidr) return { podCidr: s.podCidr, leasedAt: leasedAt || Date.now() }
    if (Date.now() - t0 > timeoutMs) {
      const tail = readLog(agentLog(lab, node.name)).trim().split('\n').slice(-3).join(' / ')
      throw new UserError(
        `the agent on ${node.name} did not become ready: ${s?.reason ?? 'no status'} (${tail})`,
        `see podnet-bpf lab logs ${node.name}`,
      )
    }
    await sleep(20)
  }
}

export function readLog(path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return ''
  }
}

/** A lab node's routes, read through its pins from the lab's own namespace
 * (read-only: the map, not the node's devices, so no namespace switch). */
export function readRoutes(pinDir: string): { cidr: string; nodeIp: string; vxlan: boolean }[] {
  const maps = DatapathMaps.open(pinDir)
  try {
    return maps.routes.list()
  } finally {
    maps.close()
  }
}

/** Milliseconds until `pred` holds for each peer's routes (polled every 5 ms). */
export async function timeUntil(
  peers: { name: string; pinDir: string }[],
  pred: (cidrs: Set<string>) => boolean,
  t0: number,
  timeoutMs = 60_000,
): Promise<Record<string, number | null>> {
  const out: Record<string, number | null> = {}
  const left = new Set(peers)
  while (left.size && Date.now() - t0 < timeoutMs) {
    for (const p of [...left]) {
      let cidrs: Set<string>
      try {
        cidrs = new Set(readRoutes(p.pinDir).map((r) => r.cidr))
      } catch {
        continue
      }
      if (pred(cidrs)) {
        out[p.name] = Date.now() - t0
        left.delete(p)
      }
    }
    await sleep(5)
  }
  for (const p of left) out[p.name] = null
  return out
}

/** Every process (by pid) whose network namespace is one of `namespaces`:
 * agents, etcd members, stray node agents. SIGTERM first (agents exit 0 and
 * keep the datapath), SIGKILL after `graceMs`. */
export async function stopProcessesIn(namespaces: string[], graceMs = 3000): Promise<number> {
  const inodes = new Set<number>()
  for (const ns of namespaces) {
    try {
      inodes.add(statSync(`/run/netns/${ns}`).ino)
    } catch {
      /* gone */
    }
  }
  if (!inodes.size) return 0
  const pids: number[] = []
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue
    try {
      if (inodes.has(statSync(`/proc/${d}/ns/net`).ino)) pids.push(Number(d))
    } catch {
      /* exited meanwhile */
    }
  }
  const signal = (sig: NodeJS.Signals) => {
    for (const p of pids.filter(pidAlive)) {
      try {
        process.kill(p, sig)
      } catch {
        /* exited meanwhile */
      }
    }
  }
  signal('SIGTERM')
  for (let t = 0; t < graceMs && pids.some(pidAlive); t += 20) await sleep(20)
  signal('SIGKILL')
  for (let t = 0; t < 2000 && pids.some(pidAlive); t += 20) await sleep(20)
  return pids.length
}

export function removeLabDir(name: string): void {
  rmSync(labDir(name), { recursive: true, force: true })
}

/** The log of a lab node's agent, of etcd member etcdN, or of the router's BIRD. */
export function labLogs(lab: string, what: string): string {
  const m = /^etcd(\d)$/.exec(what)
  const path = m ? etcdLog(lab, Number(m[1])) : what === 'router' ? routerLog(lab) : agentLog(lab, what)
  try {
    return readFileSync(path, 'utf8')
  } catch {
    throw new UserError(
      `no log for "${what}" in lab "${lab}"`,
      'name a node of a lab on etcd (see podnet-bpf lab status), etcd1..etcd3, or router (--routing bgp)',
    )
  }
}
