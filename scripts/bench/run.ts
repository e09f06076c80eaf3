// podnet-bpf benchmark: the five two-node setups side by side in one run
// (interleaved repetitions), then control-plane scale figures.
//
//   node dist/bench/run.js [--quick] [--json FILE] [--markdown FILE]
//        [--reps N] [--duration S] [--setups a,b] [--metrics tcp1,tcp4,rtt,udp]
//        [--no-control-plane | --control-plane-only] [--no-agent | --agent-only] [--cleanup-stale]
//        [--no-cni | --cni-only]   (CNI plugin ADD/DEL figures)
//
// Needs root, iperf3, sockperf, iproute2; podnet setups need `npm run build`.
import { writeFileSync } from 'node:fs'
import { cpus, loadavg, release } from 'node:os'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { execSync } from './lib/exec.js'
import { installCleanupHandlers, runCleanup } from './lib/cleanup.js'
import { deleteNs, runTag, staleNamespaces } from './lib/netns.js'
import { checkoutProblem, cleanupPodnetNode, podnetAvailable } from './lib/podnet.js'
import {
  BASELINE_IDS,
  buildSetup,
  setBaseline,
  netkitAvailable,
  setPodnetPodDevice,
  SETUP_IDS,
  SETUP_LABEL,
  type PodDevice,
  type PodnetTimings,
  type Setup,
  type SetupId,
} from './lib/setups.js'
import { defaultPlacement, measure, METRICS, setPlacement, startServers, type MetricId, type Sample, type Servers } from './lib/measure.js'
import { verifyForwarding, type ForwardCheck } from './lib/verify.js'
import {
  datapathTable,
  disturbanceReport,
  markDisturbed,
  ratios,
  ratioTable,
  REFERENCE_SETUP,
  retransmitTable,
  cpuTable,
  samplesTable,
  summarize,
} from './lib/report.js'
import { rotate } from './lib/stats.js'
import { controlPlane, controlPlaneTable, type ControlPlaneResult } from './lib/controlplane.js'
import { agentBench, agentTable, type AgentBenchResult } from './lib/agent.js'
import { cniBench, cniTable, type CniBenchResult } from './lib/cni.js'

const UNITS: Record<MetricId, string> = { tcp1: 'Gbit/s', tcp4: 'Gbit/s', rtt: 'µs p50', udp: 'kpps' }

function usage(msg?: string): never {
  if (msg) process.stderr.write(`error: ${msg}\n`)
  process.stderr.write(
    'usage: bench [--quick] [--json FILE] [--markdown FILE] [--reps N] [--duration S]\n' +
      `             [--setups ${SETUP_IDS.join(',')}] [--metrics ${METRICS.join(',')}]\n` +
      '             [--no-control-plane | --control-plane-only] [--no-agent | --agent-only] [--no-pin] [--cleanup-stale]\n' +
      '             [--no-cni | --cni-only]   (CNI plugin: ADD/DEL latency, 50 parallel ADDs, RSS)\n' +
      '             [--pod-device auto|veth|netkit]   (podnet pods; auto = netkit where the kernel has it)\n' +
      '             [--baseline DIR]   (also measure the podnet setups of another built checkout: A/B in one run)\n',
  )
  process.exit(msg ? 2 : 0)
}

function list<T extends string>(arg: string | undefined, all: readonly T[], what: string): T[] {
  if (!arg) return [...all]
  const xs = arg.split(',').map((s) => s.trim())
  for (const x of xs) if (!(all as readonly string[]).includes(x)) usage(`unknown ${what} "${x}" (one of ${all.join(', ')})`)
  return xs as T[]
}

function log(line: string): void {
  process.stderr.write(`${line}\n`)
}

function fmtDuration(ms: number): string {
  const s = Math.round(ms / 1000)
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`
}

function version(argv: string[]): string {
  const r = execSync(argv, { allowFail: true })
  const line =
    (r.stdout + r.stderr)
      .replace(/\x1b\[[0-9;]*m/g, '')
      .split('\n')
      .find((l) => /\d+\.\d+/.test(l)) ?? ''
  return `${argv[0]} ${/(\d+\.\d+(?:\.\d+)?)/.exec(line)?.[1] ?? 'unknown'}`
}

function gitHead(dir: string): string {
  const r = execSync(['git', '-C', dir, 'log', '-1', '--format=%h %s'], { allowFail: true })
  const dirty = execSync(['git', '-C', dir, 'status', '--porcelain', '--untracked-files=no'], { allowFail: true }).stdout.trim()
  return r.code === 0 ? `${r.stdout.trim().slice(0, 72)}${dirty ? ' (+ uncommitted changes)' : ''}` : 'unknown'
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'string' },
      markdown: { type: 'string' },
      reps: { type: 'string' },
      duration: { type: 'string' },
      setups: { type: 'string' },
      metrics: { type: 'string' },
      'no-control-plane': { type: 'boolean', default: false },
      'control-plane-only': { type: 'boolean', default: false },
      'no-agent': { type: 'boolean', default: false },
      'agent-only': { type: 'boolean', default: false },
      'no-cni': { type: 'boolean', default: false },
      'cni-only': { type: 'boolean', default: false },
      'cleanup-stale': { type: 'boolean', default: false },
      'no-pin': { type: 'boolean', default: false },
      'pod-device': { type: 'string', default: 'auto' },
      baseline: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  })
  if (values.help) usage()
  if (process.getuid?.() !== 0) usage('run as root (network namespaces, BPF)')

  if (values['cleanup-stale']) {
    for (const ns of staleNamespaces()) {
      if (/-n[12]$/.test(ns)) cleanupPodnetNode(ns)
      deleteNs(ns)
      log(`removed stale namespace ${ns}`)
    }
    return 0
  }

  const quick = values.quick
  const reps = Number(values.reps ?? (quick ? 2 : 5))
  const duration = Number(values.duration ?? (quick ? 1 : 5))
  if (!(reps >= 1 && duration >= 1)) usage('--reps and --duration must be ≥ 1')
  const metrics = list(values.metrics, METRICS, 'metric')
  let setupIds = list(values.setups, SETUP_IDS, 'setup')
  // A/B in one run: the podnet setups again, driven by another built checkout
  if (values.baseline) {
    const problem = checkoutProblem(resolve(values.baseline))
    if (problem) usage(`--baseline: ${problem}`)
    setBaseline(resolve(values.baseline))
  } else {
    if (values.setups && setupIds.some((s) => BASELINE_IDS.includes(s))) usage('the *-base setups need --baseline DIR')
    setupIds = setupIds.filter((s) => !BASELINE_IDS.includes(s))
  }
  const cniOnly = values['cni-only']
  const agentOnly = values['agent-only']
  const datapath = !values['control-plane-only'] && !cniOnly && !agentOnly
  const wantCp = (!values['no-control-plane'] && !cniOnly) || agentOnly
  const wantCni = !values['no-cni'] && !values['control-plane-only'] && !agentOnly

  for (const tool of ['iperf3', 'sockperf', 'ip', 'nsenter', 'ping']) {
    if (execSync(['sh', '-c', `command -v ${tool}`], { allowFail: true }).code !== 0)
      usage(`${tool} not found (apt-get install iperf3 sockperf iproute2 util-linux iputils-ping)`)
  }
  const havePodnet = podnetAvailable()
  if (!havePodnet) {
    const dropped = setupIds.filter((s) => s.startsWith('podnet'))
    if (dropped.length) log(`! podnet-bpf is not built (no dist/commands/attach.js; run npm run build): skipping ${dropped.join(', ')}`)
    setupIds = setupIds.filter((s) => !s.startsWith('podnet'))
  }

  const podDeviceReq = values['pod-device']
  if (!['auto', 'veth', 'netkit'].includes(podDeviceReq)) usage(`--pod-device ${podDeviceReq}: use auto, veth or netkit`)
  let podDevice: PodDevice = 'veth'
  if (havePodnet && podDeviceReq !== 'veth' && setupIds.some((s) => s.startsWith('podnet'))) {
    const nk = await netkitAvailable(runTag('probe'))
    if (podDeviceReq === 'netkit' && !nk)
      usage('--pod-device netkit: this kernel cannot create netkit pairs (Linux >= 6.7 with CONFIG_NETKIT); use --pod-device veth')
    podDevice = nk ? 'netkit' : 'veth'
    if (!nk)
      log("podnet pods are veth pairs: this kernel has no netkit (CONFIG_NETKIT), which would run from-pod in the pod's own transmit")
  }
  setPodnetPodDevice(podDevice)

  const placement = defaultPlacement(cpus().length, !values['no-pin'])
  setPlacement(placement)
  installCleanupHandlers()
  const tag = runTag()
  const started = Date.now()
  const env = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    kernel: release(),
    node: process.version,
    iperf3: version(['iperf3', '--version']),
    sockperf: version(['sockperf', '--version']),
    loadavgStart: loadavg(),
    loadavgEnd: [] as number[],
    startedAt: new Date(started).toISOString(),
    reps,
    durationS: duration,
    quick,
    placement,
    podDevice,
    baseline: values.baseline ? `${resolve(values.baseline)} @ ${gitHead(resolve(values.baseline))}` : null,
    build: gitHead('.'),
  }
  log(
    `podnet-bpf bench: ${env.cpus} CPUs, kernel ${env.kernel}, load ${env.loadavgStart.map((x) => x.toFixed(2)).join(' ')}; ${reps} reps × ${duration}s, ${quick ? 'quick' : 'full'}`,
  )

  const samples: Sample[] = []
  const checks: Partial<Record<SetupId, ForwardCheck>> = {}
  const failed: Partial<Record<SetupId, string>> = {}
  const setupTimings: PodnetTimings = { attachMs: [], endpointMs: [], routeMs: [] }
  let cp: ControlPlaneResult | null = null
  let agent: AgentBenchResult | null = null
  let cni: CniBenchResult | null = null

  try {
    if (datapath && setupIds.length > 0) {
      const built: Setup[] = []
      const servers: Servers[] = []
      for (const id of setupIds) {
        const t0 = Date.now()
        try {
          const s = await buildSetup(id, tag, id.startsWith('podnet') ? setupTimings : undefined)
          const check = await verifyForwarding(s)
          checks[id] = check
          if (check.problems.length) throw new Error(check.problems.join('; '))
          servers.push(await startServers(s))
          built.push(s)
          log(
            `✓ ${SETUP_LABEL[id]}: built and verified in ${Date.now() - t0} ms (MTU ${s.mtu}, underlay +${check.underlayTx} pkts, kernel-forwarded ${check.kernelForwarded.join('/')})`,
          )
        } catch (e) {
          failed[id] = (e as Error).message
          log(`✗ ${SETUP_LABEL[id]}: ${(e as Error).message}`)
        }
      }

      const total = reps * metrics.length * built.length
      let done = 0
      const t0 = Date.now()
      for (let rep = 1; rep <= reps; rep++) {
        for (const [mi, metric] of metrics.entries()) {
          // rotate the start so no setup always runs first (or right after another)
          for (const s of rotate(built, rep + mi)) {
            const sample = await measure(s, metric, rep, duration)
            samples.push(sample)
            done++
            const eta = ((Date.now() - t0) / done) * (total - done)
            const shown = sample.error
              ? `ERROR ${sample.error}`
              : `${sample.value.toFixed(metric === 'udp' ? 0 : 2)} ${UNITS[metric]}${sample.p99 !== undefined ? ` (p99 ${sample.p99.toFixed(1)})` : ''}`
            log(
              `[${String(done).padStart(String(total).length)}/${total}] rep ${rep}/${reps} ${metric.padEnd(4)} ${s.id.padEnd(14)} ${shown}   eta ${fmtDuration(eta)}`,
            )
          }
        }
      }
      servers.forEach((s) => s.stop())
    }

    if (wantCp) {
      if (!havePodnet) log('! skipping control-plane figures: podnet-bpf is not built')
      else if (!values['agent-only']) cp = await controlPlane(tag, { reps: quick ? 2 : 5, quick, log })
      if (havePodnet && !values['no-agent']) {
        try {
          agent = await agentBench(tag, { quick, log })
        } catch (e) {
          log(`! agent figures failed: ${(e as Error).message}`)
        }
      }
    }
    if (wantCni) {
      if (!havePodnet) log('! skipping CNI figures: podnet-bpf is not built')
      else cni = await cniBench(tag, { sequential: quick ? 20 : 100, parallel: 50, log })
    }
  } finally {
    const failures = runCleanup()
    for (const f of failures) log(`cleanup: ${f}`)
  }

  env.loadavgEnd = loadavg()
  const reported = setupIds.filter((id) => !failed[id] && samples.some((s) => s.setup === id))
  const marked = markDisturbed(samples)
  const rows = summarize(reported, marked.samples)
  const ratioRows = ratios(rows)
  let md = ''
  if (rows.length) {
    md += `${datapathTable(rows)}\n\n${ratioRows.length ? `${ratioTable(ratioRows)}\n\n` : ''}`
    md += `${disturbanceReport(marked.disturbances, reported.includes(REFERENCE_SETUP))}\n\n`
    if (metrics.includes('tcp1') || metrics.includes('tcp4')) md += `${retransmitTable(rows, duration)}\n\n`
    if (metrics.some((m) => m !== 'rtt'))
      md += `CPU time charged to the iperf3 processes (inline softirq work included) per unit of work, lower is better:\n\n${cpuTable(rows)}\n\n`
    md += `Every sample in run order ([disturbed]):\n\n${samplesTable(reported, marked.samples)}\n\n`
  }
  if (cp) md += `${controlPlaneTable(cp)}\n\n`
  if (agent) md += `${agentTable(agent)}\n\n`
  if (cni) md += `${cniTable(cni)}\n\n`
  md +=
    `_${env.cpus} × ${env.cpuModel}, kernel ${env.kernel}, Node ${env.node}, ${env.iperf3}, ${env.sockperf}; ` +
    `podnet pods: ${podDevice} pairs; ${env.baseline ? `baseline: ${env.baseline}; ` : ''}${reps} reps × ${duration}s per figure (medians of undisturbed reps, min–max in brackets); load average ${env.loadavgStart[0]!.toFixed(2)} at start, ${env.loadavgEnd[0]!.toFixed(2)} at end; ` +
    `run took ${fmtDuration(Date.now() - started)}._\n`

  process.stdout.write(`\n${md}`)
  for (const [id, why] of Object.entries(failed)) process.stdout.write(`\nFAILED ${id}: ${why}\n`)
  for (const r of rows) for (const e of r.errors) process.stdout.write(`sample error ${r.setup} ${e}\n`)

  if (values.markdown) writeFileSync(values.markdown, md)
  if (values.json) {
    writeFileSync(
      values.json,
      `${JSON.stringify({ env, samples: marked.samples, disturbed: marked.disturbances, summary: rows, ratios: ratioRows, checks, failed, podnetSetupTimings: setupTimings, controlPlane: cp, agent, cni }, null, 2)}\n`,
    )
    log(`raw samples written to ${values.json}`)
  }
  return Object.keys(failed).length > 0 || samples.some((s) => s.error) ? 1 : 0
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`)
    for (const f of runCleanup()) process.stderr.write(`cleanup: ${f}\n`)
    process.exit(1)
  },
)
