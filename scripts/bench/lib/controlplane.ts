// Control-plane figures: CLI start-up, `attach` cold (a fresh pin dir, so the
// objects go through the verifier) up to the first forwarded packet, bulk
// route/endpoint syncs through the services' batch map writes, `routes list`
// over 5,000 routes, and the CLI's peak RSS.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { exec, sleep } from './exec.js'
import { addNs, deleteNs, inNs, ip, link, nsenter } from './netns.js'
import { CLI_BIN, cliArgv, cleanupPodnetNode, parseAttachJson, podnet, registerPodnetCleanup } from './podnet.js'
import { NODE_IP, POD_CIDR, POD_GW, POD_IP } from './setups.js'
import { median } from './stats.js'
import type { WorkerResult } from '../cp-worker.js'

export interface ControlPlaneResult {
  /** `podnet-bpf --version`: Node + oclif start-up alone */
  startupMs: number[]
  /** `attach` process, start to exit, fresh pin dir */
  attachMs: number[]
  /** attach + endpoints add + routes add on node 1, then until the first echo reply */
  firstPacketMs: number[]
  endpointAddMs: number[]
  routeAddMs: number[]
  detachMs: number[]
  routesListMs: number[]
  routesListCount: number
  worker: WorkerResult | null
  workerError?: string
  /** peak RSS (KiB) per CLI command */
  cliPeakRssKb: Record<string, number>
}

const HOOK = join(fileURLToPath(new URL('.', import.meta.url)), 'rss-hook.js')

/** Environment that makes each CLI process append its peak RSS to `file`. */
function rssEnv(file: string): NodeJS.ProcessEnv {
  const prev = process.env['NODE_OPTIONS'] ?? ''
  return { ...process.env, NODE_OPTIONS: `${prev} --import=${HOOK}`.trim(), PNB_RSS_FILE: file }
}

function readRss(file: string): number {
  if (!existsSync(file)) return Number.NaN
  const kb = readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => Number(l.split(' ')[1]))
    .filter((x) => Number.isFinite(x) && x > 0)
  rmSync(file, { force: true })
  return kb.length ? Math.max(...kb) : Number.NaN
}

/** Node pair + one pod per node, nothing attached yet. */
function bareNodes(tag: string): { nodes: [string, string]; pods: [string, string]; podMacs: [string, string] } {
  const n1 = addNs(`${tag}-n1`)
  const n2 = addNs(`${tag}-n2`)
  ip(n1, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', n2)
  const pods: string[] = []
  const macs: string[] = []
  for (const [i, n] of [n1, n2].entries()) {
    ip(n, 'addr', 'add', `${NODE_IP[i]}/24`, 'dev', 'eth0')
    ip(n, 'link', 'set', 'eth0', 'up')
    registerPodnetCleanup(n)
    const pod = addNs(`${tag}-p${i + 1}`)
    ip(n, 'link', 'add', 'hv0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod)
    ip(n, 'link', 'set', 'hv0', 'up')
    pods.push(pod)
    macs.push(link(pod, 'eth0').address)
  }
  return { nodes: [n1, n2], pods: [pods[0]!, pods[1]!], podMacs: [macs[0]!, macs[1]!] }
}

function podAddress(pod: string, i: number, mtu: number): void {
  ip(pod, 'link', 'set', 'eth0', 'mtu', String(mtu), 'up')
  ip(pod, 'addr', 'add', `${POD_IP[i]}/32`, 'dev', 'eth0')
  ip(pod, 'route', 'add', POD_GW, 'dev', 'eth0', 'scope', 'link')
  ip(pod, 'route', 'add', 'default', 'via', POD_GW, 'dev', 'eth0')
}

const attachArgs = (i: number, podCidr: string = POD_CIDR[i]!): string[] => [
  'attach',
  '--node-ip',
  NODE_IP[i]!,
  '--pod-cidr',
  podCidr,
  '--device',
  'eth0',
  '--mode',
  'direct',
]

export async function controlPlane(
  tagBase: string,
  opts: { reps: number; quick: boolean; log: (l: string) => void },
): Promise<ControlPlaneResult> {
  const { log } = opts
  const tmp = mkdtempSync(join(tmpdir(), 'pnb-rss-'))
  const rss: Record<string, number> = {}
  const noteRss = (cmd: string, file: string): void => {
    const kb = readRss(file)
    if (Number.isFinite(kb)) rss[cmd] = Math.max(rss[cmd] ?? 0, kb)
  }
  const res: ControlPlaneResult = {
    startupMs: [],
    attachMs: [],
    firstPacketMs: [],
    endpointAddMs: [],
    routeAddMs: [],
    detachMs: [],
    routesListMs: [],
    routesListCount: 0,
    worker: null,
    cliPeakRssKb: rss,
  }
  try {
    for (let r = 0; r < opts.reps; r++) {
      const t = `${tagBase}-ca${r}`
      const { nodes, pods, podMacs } = bareNodes(t)
      // node 2 fully set up; node 1 gets the timed sequence
      const a2 = parseAttachJson((await podnet(nodes[1], [...attachArgs(1), '--json'])).stdout)
      podAddress(pods[1], 1, a2.podMtu)
      await podnet(nodes[1], ['endpoints', 'add', '--ip', POD_IP[1], '--ifname', 'hv0', '--mac', podMacs[1]])
      await podnet(nodes[1], ['routes', 'add', POD_CIDR[0], '--node-ip', NODE_IP[0], '--encap', 'none'])
      podAddress(pods[0], 0, a2.podMtu)

      const f = join(tmp, `rss-${r}`)
      const st = await exec(nsenter(nodes[0], [CLI_BIN, '--version']), { env: rssEnv(f) })
      res.startupMs.push(st.ms)
      noteRss('--version', f)

      const t0 = performance.now()
      const att = await podnet(nodes[0], attachArgs(0), { env: rssEnv(f) })
      res.attachMs.push(att.ms)
      noteRss('attach', f)
      const ep = await podnet(nodes[0], ['endpoints', 'add', '--ip', POD_IP[0], '--ifname', 'hv0', '--mac', podMacs[0]], { env: rssEnv(f) })
      res.endpointAddMs.push(ep.ms)
      noteRss('endpoints add', f)
      const rt = await podnet(nodes[0], ['routes', 'add', POD_CIDR[1], '--node-ip', NODE_IP[1], '--encap', 'none'], { env: rssEnv(f) })
      res.routeAddMs.push(rt.ms)
      noteRss('routes add', f)
      let ok = false
      for (let k = 0; k < 50 && !ok; k++) {
        const p = await exec(inNs(pods[0], ['ping', '-n', '-c', '1', '-W', '1', POD_IP[1]]), { allowFail: true })
        ok = p.code === 0
        if (!ok) await sleep(20)
      }
      if (!ok) throw new Error('attach cold: pod 1 never reached pod 2 after attach + endpoints add + routes add')
      res.firstPacketMs.push(performance.now() - t0)

      const det = await podnet(nodes[0], ['detach'], { env: rssEnv(f) })
      res.detachMs.push(det.ms)
      noteRss('detach', f)
      for (const n of nodes) cleanupPodnetNode(n)
      for (const n of [...pods, ...nodes]) deleteNs(n)
      log(
        `control plane: attach ${att.ms.toFixed(0)} ms, first packet after ${res.firstPacketMs.at(-1)!.toFixed(0)} ms (rep ${r + 1}/${opts.reps})`,
      )
    }

    // bulk: one node attached with a /14 pod CIDR (room for 100,000 endpoints)
    const t = `${tagBase}-cs`
    const { nodes } = bareNodes(t)
    await podnet(nodes[0], attachArgs(0, '10.128.0.0/14'))
    const nRoutes = 5000
    const nEps = 100_000
    try {
      const w = await exec(
        nsenter(nodes[0], [
          process.execPath,
          join(fileURLToPath(new URL('..', import.meta.url)), 'cp-worker.js'),
          '--pin-dir',
          `/sys/fs/bpf/${nodes[0]}`,
          '--routes',
          String(nRoutes),
          '--endpoints',
          String(nEps),
          '--reps',
          String(opts.reps),
          '--ifindex',
          String(1),
          '--keep-routes',
          '--budget-ms',
          String(opts.quick ? 15_000 : 90_000),
        ]),
        { timeoutMs: 600_000 },
      )
      res.worker = JSON.parse(w.stdout.trim().split('\n').at(-1)!) as WorkerResult
      if (res.worker.routesSkipped) log(`! control plane: syncRoutes × ${nRoutes} not run: ${res.worker.routesSkipped}`)
      log(
        `control plane: sync ${nRoutes} routes ${median(res.worker.routesSyncMs).toFixed(0)} ms, ${nEps} endpoints ${median(res.worker.endpointsSyncMs).toFixed(0)} ms`,
      )

      for (let r = 0; r < opts.reps; r++) {
        const f = join(tmp, `rss-list-${r}`)
        const l = await exec(cliArgv(nodes[0], ['routes', 'list', '--json']), { env: rssEnv(f), timeoutMs: 120_000 })
        res.routesListMs.push(l.ms)
        noteRss('routes list (5,000)', f)
        const parsed = JSON.parse(l.stdout) as unknown
        const arr = Array.isArray(parsed) ? parsed : ((parsed as { result?: unknown }).result ?? parsed)
        res.routesListCount = Array.isArray(arr) ? arr.length : Number.NaN
      }
      log(`control plane: routes list over ${res.routesListCount} routes ${median(res.routesListMs).toFixed(0)} ms`)
    } catch (e) {
      res.workerError = (e as Error).message
      log(`! control plane bulk figures failed: ${res.workerError}`)
    }
    cleanupPodnetNode(nodes[0])
    cleanupPodnetNode(nodes[1])
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
  return res
}

const f0 = (xs: number[]): string => (xs.length && Number.isFinite(median(xs)) ? median(xs).toFixed(0) : '—')

export function controlPlaneTable(cp: ControlPlaneResult): string {
  const w = cp.worker
  const maxRss = Math.max(0, ...Object.values(cp.cliPeakRssKb))
  const rows: Array<[string, string, string]> = [
    ['CLI start-up (`--version`)', `${f0(cp.startupMs)} ms`, '—'],
    ['`attach` cold (process start → exit, fresh pins)', `${f0(cp.attachMs)} ms`, '≤ 300 ms'],
    ['attach + endpoints add + routes add → first reply', `${f0(cp.firstPacketMs)} ms`, '—'],
    ['`endpoints add` / `routes add` / `detach`', `${f0(cp.endpointAddMs)} / ${f0(cp.routeAddMs)} / ${f0(cp.detachMs)} ms`, '—'],
    [
      'syncRoutes 5,000 new (map + kernel routes + state)',
      w ? (w.routesSkipped ? `not run (500 routes: ${w.probe500Ms?.toFixed(0)} ms; see note)` : `${f0(w.routesSyncMs)} ms`) : '—',
      '≤ 100 ms',
    ],
    ['… of which routes map writes only', w ? `${f0(w.routesMapOnlyMs)} ms` : '—', '—'],
    ['syncRoutes 5,000 unchanged / remove all', w ? `${f0(w.routesResyncMs)} / ${f0(w.routesRemoveMs)} ms` : '—', '—'],
    ['syncEndpointMap 100,000 (batch update)', w ? `${f0(w.endpointsSyncMs)} ms` : '—', '≤ 1 s'],
    [`\`routes list --json\` over ${cp.routesListCount || 5000} routes`, `${f0(cp.routesListMs)} ms`, '—'],
    ['peak RSS of the CLI (max over commands)', maxRss ? `${(maxRss / 1024).toFixed(0)} MB` : '—', '≤ 80 MB'],
    ['peak RSS of the sync worker (services in-process)', w ? `${(w.maxRssKb / 1024).toFixed(0)} MB` : '—', '—'],
  ]
  const table = ['| control plane | median | target |', '|---|---:|---|', ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n')
  return w?.routesSkipped ? `${table}\n\nNote: ${w.routesSkipped}.` : table
}
