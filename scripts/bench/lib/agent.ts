// Agent figures (issue 15): a single etcd member and 5 agents in namespaces on
// one bridge. (1) join latency: a new lease written → its route in each of the
// 5 agents' routes maps; (2) 1,000 leases written at once → all 1,000 routes
// in one agent's map; (3) that agent's RSS with 1,000 peers and its CPU while
// idle. Leases are written by a helper process in etcd's namespace (etcd3
// client of this checkout); the maps are read through the pins. The bench's
// leases never take an agent's own subnet (agents pick theirs at random in
// the same network: a put over one would replace that agent's key and add
// no route). The agents' logs are kept, and printed where, when it fails.
import { spawn, type ChildProcess } from 'node:child_process'
import { cpSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { onCleanup } from './cleanup.js'
import { execSync, sleep } from './exec.js'
import { addNs, ip, nsenter } from './netns.js'
import { CLI_BIN, REPO_ROOT, cleanupPodnetNode, pinDirFor, registerPodnetCleanup } from './podnet.js'
import { median } from './stats.js'

export interface AgentBenchResult {
  /** lease written → route in the map, one sample per join per agent */
  joinMs: number[]
  /** 1,000 leases: time to write them, and from the first write until all are in the map */
  bulkWriteMs: number
  bulkToMapMs: number
  /** from the last put acknowledged until all are in the map */
  bulkAfterLastWriteMs: number
  bulkCount: number
  /** 1-minute load average when the bulk was written */
  bulkLoad: number
  rssMb: number
  /** the same after the idle period (the burst's garbage collected) */
  rssIdleMb: number
  idleCpuPercent: number
  idleSeconds: number
}

const ETCD_IP = '192.168.77.250'
const ENDPOINT = `http://${ETCD_IP}:2379`

// reads "put CIDR,CIDR,…" lines; writes a lease for each at once, prints "start end" (epoch ms)
const WRITER = `
const { Etcd3 } = require(process.argv[1] + '/node_modules/etcd3');
const c = new Etcd3({ hosts: process.argv[2] });
const rl = require('readline').createInterface({ input: process.stdin });
rl.on('line', async (l) => {
  const cidrs = l.split(' ')[1].split(',');
  const t0 = Date.now();
  await Promise.all(cidrs.map((cidr, i) => {
    const o = cidr.split('.').map(Number);
    const v = { node: 'bench' + o[1] + '-' + o[2], nodeIp: '172.16.' + (i >> 8) + '.' + ((i & 255) || 1), podCidr: cidr, mode: 'auto' };
    return c.put('/podnet.io/network/subnets/' + cidr.replace('/', '-')).value(JSON.stringify(v));
  }));
  console.log(t0 + ' ' + Date.now());
});`

const cidrOf = (i: number) => `10.${1 + (i >> 8)}.${i & 255}.0/24`

interface Maps {
  routes: { get(c: string): unknown; list(): unknown[] }
  close(): void
}

function daemon(argv: string[], logFile: string | null): ChildProcess {
  const p = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', logFile ? openSync(logFile, 'a') : 'ignore'] })
  onCleanup(`kill ${argv.slice(0, 4).join(' ')}`, () => {
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
  })
  return p
}

async function waitUntil(what: string, fn: () => boolean, timeoutMs: number, everyMs = 2): Promise<void> {
  const t0 = Date.now()
  while (!fn()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`agent bench: timed out waiting for ${what}`)
    await sleep(everyMs)
  }
}

function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return Number(f[11]) + Number(f[12]) // utime + stime (fields 14, 15)
}

export async function agentBench(tag: string, o: { quick: boolean; log: (s: string) => void }): Promise<AgentBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'pnb-agent-'))
  onCleanup(`rm ${dir}`, () => rmSync(dir, { recursive: true, force: true }))
  try {
    return await runAgentBench(tag, dir, o)
  } catch (e) {
    // the run's directory goes with the cleanup: its logs (agents, etcd, writer) are copied out first
    const kept = mkdtempSync(join(tmpdir(), 'pnb-agent-logs-'))
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.log'))) cpSync(join(dir, f), join(kept, f))
    throw new Error(`${(e as Error).message}\n  logs of the agents, etcd and the lease writer kept in ${kept}`)
  }
}

async function runAgentBench(tag: string, dir: string, o: { quick: boolean; log: (s: string) => void }): Promise<AgentBenchResult> {
  // the agents' status files sit next to the node state the bench's own cleanup removes
  const stateDir = process.env['PODNET_STATE_DIR'] ?? '/run/podnet-bpf'
  const { DatapathMaps } = (await import(join(REPO_ROOT, 'dist/datapath/maps.js'))) as { DatapathMaps: { open(p: string): Maps } }

  const ul = addNs(`${tag}-aul`)
  ip(ul, 'link', 'add', 'br0', 'type', 'bridge')
  ip(ul, 'link', 'set', 'br0', 'up')
  const plug = (ns: string, port: string, addr: string) => {
    ip(ul, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns)
    ip(ul, 'link', 'set', port, 'master', 'br0', 'up')
    ip(ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0')
    ip(ns, 'link', 'set', 'eth0', 'up')
  }
  const etcdNs = addNs(`${tag}-aetcd`)
  plug(etcdNs, 'ae', ETCD_IP)
  daemon(
    nsenter(etcdNs, [
      'etcd',
      '--data-dir',
      join(dir, 'etcd'),
      '--listen-client-urls',
      ENDPOINT,
      '--advertise-client-urls',
      ENDPOINT,
      '--listen-peer-urls',
      'http://127.0.0.1:2380',
    ]),
    join(dir, 'etcd.log'),
  )
  const pn = (ns: string, args: string[]) => execSync(nsenter(ns, [CLI_BIN, ...args]), { allowFail: true })
  await waitUntil(
    'etcd',
    () => pn(etcdNs, ['cluster', 'init', '--etcd-endpoints', ENDPOINT, '--network', '10.0.0.0/8']).code === 0,
    30_000,
    300,
  )

  const nodes = [1, 2, 3, 4, 5].map((i) => {
    const ns = addNs(`${tag}-a${i}`)
    plug(ns, `a${i}`, `192.168.77.${i}`)
    registerPodnetCleanup(ns)
    return ns
  })
  const agents = nodes.map((ns, i) =>
    daemon(
      nsenter(ns, [
        CLI_BIN,
        'agent',
        '--datastore',
        'etcd',
        '--etcd-endpoints',
        ENDPOINT,
        '--node-name',
        `n${i + 1}`,
        '--device',
        'eth0',
        '--pin-dir',
        pinDirFor(ns),
        '--listen',
        '127.0.0.1:9963',
        '--cni-conf-dir',
        join(dir, `cni${i}`),
        '--lease-ttl',
        '60s',
        '--resync-interval',
        '60s',
      ]),
      join(dir, `agent${i + 1}.log`),
    ),
  )
  for (const a of agents) a.stdout!.resume()
  const statusOf = (ns: string) => {
    try {
      return JSON.parse(readFileSync(join(stateDir, `agent${pinDirFor(ns).replace(/\//g, '_')}.json`), 'utf8')) as {
        ready: boolean
        podCidr: string | null
      }
    } catch {
      return null
    }
  }
  await waitUntil('5 agents ready', () => nodes.every((ns) => statusOf(ns)?.ready), 120_000, 50)
  const maps = nodes.map((ns) => DatapathMaps.open(pinDirFor(ns)))
  onCleanup('close maps', () => maps.forEach((m) => m.close()))
  const agentCidrs = new Set(nodes.map((ns) => statusOf(ns)?.podCidr))
  /** n lease CIDRs from index `from` on, skipping the agents' own subnets */
  const fresh = (from: number, n: number): string[] => {
    const out: string[] = []
    for (let i = from; out.length < n; i++) if (!agentCidrs.has(cidrOf(i))) out.push(cidrOf(i))
    return out
  }

  const writer = daemon(nsenter(etcdNs, [process.execPath, '-e', WRITER, REPO_ROOT, ENDPOINT]), join(dir, 'writer.log'))
  const lines = createInterface({ input: writer.stdout! })
  const replies: string[] = []
  lines.on('line', (l) => replies.push(l))
  const put = async (cidrs: readonly string[]): Promise<[number, number]> => {
    replies.length = 0
    writer.stdin!.write(`put ${cidrs.join(',')}\n`)
    await waitUntil('lease writer', () => replies.length > 0, 60_000, 1)
    return replies[0]!.split(' ').map(Number) as [number, number]
  }

  // (1) join latency
  const joins = o.quick ? 10 : 30
  const joinMs: number[] = []
  const joinCidrs = fresh(60_000, joins)
  for (const cidr of joinCidrs) {
    const [, written] = await put([cidr])
    const seen = new Array<number | null>(maps.length).fill(null)
    await waitUntil(
      'join route on 5 agents',
      () => {
        maps.forEach((m, i) => (seen[i] ??= m.routes.get(cidr) ? Date.now() : null))
        return seen.every((x) => x !== null)
      },
      30_000,
      1,
    )
    joinMs.push(...seen.map((t) => t! - written))
    await sleep(50)
  }
  o.log(`agent: join latency p50 ${median(joinMs)} ms over ${joinMs.length} samples`)

  // (2) 1,000 leases at once, seen by agent 1 (the others stop first: one agent, as specified)
  for (const a of agents.slice(1)) a.kill('SIGTERM')
  await sleep(500)
  const before = maps[0]!.routes.list().length
  const bulk = 1000
  const bulkCidrs = fresh(0, bulk)
  const bulkLoad = loadavg()[0]!
  const [start, end] = await put(bulkCidrs)
  try {
    await waitUntil('1,000 routes in the map', () => maps[0]!.routes.list().length >= before + bulk, 60_000, 5)
  } catch (e) {
    const missing = bulkCidrs.filter((c) => !maps[0]!.routes.get(c))
    const tail = readFileSync(join(dir, 'agent1.log'), 'utf8').trim().split('\n').slice(-5).join('\n  ')
    throw new Error(
      `${(e as Error).message} (${bulk - missing.length} of ${bulk}; missing ${missing.slice(0, 5).join(' ')}…); agent 1's log ends:\n  ${tail}`,
    )
  }
  const done = Date.now()
  const bulkToMapMs = done - start
  o.log(
    `agent: ${bulk} leases written in ${end - start} ms; all in the map ${bulkToMapMs} ms after the first write, ${done - end} ms after the last (load average ${bulkLoad.toFixed(2)})`,
  )

  // (3) RSS with 1,000 peers, CPU while idle
  const pid = agents[0]!.pid! // nsenter execs the agent: the same pid
  const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN)
  const rssKb = rss()
  const idleSeconds = o.quick ? 10 : 60
  const t0 = cpuTicks(pid)
  await sleep(idleSeconds * 1000)
  const idleCpuPercent = ((cpuTicks(pid) - t0) / 100 / idleSeconds) * 100 // USER_HZ = 100 on Linux
  const rssIdleKb = rss()
  for (const ns of nodes) {
    cleanupPodnetNode(ns)
    rmSync(join(stateDir, `agent${pinDirFor(ns).replace(/\//g, '_')}.json`), { force: true })
  }
  return {
    joinMs,
    bulkWriteMs: end - start,
    bulkToMapMs,
    bulkAfterLastWriteMs: done - end,
    bulkCount: bulk,
    bulkLoad,
    rssMb: rssKb / 1024,
    rssIdleMb: rssIdleKb / 1024,
    idleCpuPercent,
    idleSeconds,
  }
}

export function agentTable(r: AgentBenchResult): string {
  const sorted = [...r.joinMs].sort((a, b) => a - b)
  const p99 = sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)]!
  return [
    '| agent (etcd, 1 member) | figure | target |',
    '|---|---|---|',
    `| join: lease written → route in each of 5 agents' maps (${r.joinMs.length} samples) | p50 ${median(r.joinMs)} ms, p99 ${p99} ms | p50 ≤ 200 ms |`,
    `| ${r.bulkCount} leases written at once (${r.bulkWriteMs} ms to write; load average ${r.bulkLoad.toFixed(1)}) → all in one agent's map | ${r.bulkToMapMs} ms after the first write (${r.bulkAfterLastWriteMs} ms after the last) | ≤ 1 s |`,
    `| agent RSS with ${r.bulkCount} peers: right after the bulk / after ${r.idleSeconds} s idle | ${r.rssMb.toFixed(1)} / ${r.rssIdleMb.toFixed(1)} MB | ≤ 100 MB |`,
    `| agent CPU while idle (${r.idleSeconds} s) | ${r.idleCpuPercent.toFixed(2)} % of one core | |`,
  ].join('\n')
}
