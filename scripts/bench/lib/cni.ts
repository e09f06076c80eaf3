// CNI plugin figures: ADD and DEL latency (p50, p99) with host-local, as a
// runtime executes the plugin (the launcher `cni install` writes, run inside
// the node's namespace, network config on stdin); 50 ADDs started at once on
// one node (wall time, all must succeed) and their 50 DELs; peak RSS of one
// ADD process.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { onCleanup } from './cleanup.js'
import { exec, execSync, type Result } from './exec.js'
import { addNs, ip, nsenter } from './netns.js'
import { CLI_BIN, parseAttachJson, pinDirFor, podnet, registerPodnetCleanup } from './podnet.js'
import { median } from './stats.js'

export interface CniBenchResult {
  addMs: number[]
  delMs: number[]
  parallel: number
  parallelAddWallMs: number
  parallelAddOk: number
  parallelDelWallMs: number
  parallelDelOk: number
  addPeakRssKb: number
  /** from the plugin's log, per sequential ADD: IPAM exec, pod device + endpoint, whole verb inside the process */
  addPhasesMs: { ipam: number[]; pod: number[]; inProcess: number[] }
}

const HOOK = join(fileURLToPath(new URL('.', import.meta.url)), 'rss-hook.js')

export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!
}

interface Ctx {
  node: string
  launcher: string
  conf: string
  env: NodeJS.ProcessEnv
}

function invoke(c: Ctx, command: 'ADD' | 'DEL', pod: string, env: NodeJS.ProcessEnv = {}): Promise<Result> {
  return exec(['sh', '-c', `exec ${nsenter(c.node, [c.launcher]).join(' ')} <<'EOF'\n${c.conf}\nEOF`], {
    timeoutMs: 60_000,
    allowFail: true,
    env: {
      ...c.env,
      ...env,
      CNI_COMMAND: command,
      CNI_CONTAINERID: pod,
      CNI_NETNS: `/run/netns/${pod}`,
      CNI_IFNAME: 'eth0',
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=${pod}`,
      CNI_PATH: join(c.launcher, '..'),
    },
  })
}

function must(r: Result, what: string): Result {
  if (r.code !== 0) throw new Error(`${what}: ${(r.stdout || r.stderr).trim().slice(0, 400)}`)
  return r
}

async function setup(tag: string, work: string): Promise<Ctx> {
  const node = addNs(`${tag}-cni-n1`)
  const peer = addNs(`${tag}-cni-n2`)
  ip(node, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', peer)
  ip(node, 'addr', 'add', '192.168.77.1/24', 'dev', 'eth0')
  ip(node, 'link', 'set', 'eth0', 'up')
  registerPodnetCleanup(node)
  parseAttachJson(
    (
      await podnet(node, [
        'attach',
        '--node-ip',
        '192.168.77.1',
        '--pod-cidr',
        '10.244.0.0/22',
        '--device',
        'eth0',
        '--mode',
        'direct',
        '--json',
      ])
    ).stdout,
  )
  const bin = join(work, 'bin')
  execSync([CLI_BIN, 'cni', 'install', '--bin-dir', bin, '--conf-dir', join(work, 'net.d'), '--pin-dir', pinDirFor(node)])
  onCleanup(`cni uninstall ${work}`, () => {
    execSync([CLI_BIN, 'cni', 'uninstall', '--bin-dir', bin, '--conf-dir', join(work, 'net.d')], { allowFail: true })
    rmSync(work, { recursive: true, force: true })
    // attachment records of pods a failed run left (DEL removes them otherwise)
    rmSync(join(process.env['PODNET_STATE_DIR'] ?? '/run/podnet-bpf', 'cni', pinDirFor(node).replace(/\//g, '_')), {
      recursive: true,
      force: true,
    })
  })
  const conf = JSON.stringify({
    cniVersion: '1.1.0',
    name: `${tag}-cni`,
    type: 'podnet',
    pinDir: pinDirFor(node),
    logFile: join(work, 'cni.log'),
    ipam: { type: 'host-local', dataDir: join(work, 'ipam'), ranges: [[{ subnet: 'usePodCidr' }]] },
  })
  return { node, launcher: join(bin, 'podnet'), conf, env: { ...process.env } }
}

export async function cniBench(
  tag: string,
  opts: { sequential: number; parallel: number; log: (l: string) => void },
): Promise<CniBenchResult> {
  const work = mkdtempSync(join(tmpdir(), 'pnb-cni-'))
  const c = await setup(tag, work)
  const res: CniBenchResult = {
    addMs: [],
    delMs: [],
    parallel: opts.parallel,
    parallelAddWallMs: 0,
    parallelAddOk: 0,
    parallelDelWallMs: 0,
    parallelDelOk: 0,
    addPeakRssKb: 0,
    addPhasesMs: { ipam: [], pod: [], inProcess: [] },
  }
  const pods = Array.from({ length: Math.max(opts.sequential, opts.parallel) }, (_, i) => addNs(`${tag}-cp${i}`))
  // one at a time: ADD then DEL of each pod
  for (const pod of pods.slice(0, opts.sequential)) {
    res.addMs.push(must(await invoke(c, 'ADD', pod), `ADD ${pod}`).ms)
    res.delMs.push(must(await invoke(c, 'DEL', pod), `DEL ${pod}`).ms)
  }
  for (const line of readFileSync(join(work, 'cni.log'), 'utf8').split('\n')) {
    if (!line.includes('"msg":"pod added"')) continue
    const l = JSON.parse(line) as { ipamMs: number; podMs: number; ms: number }
    res.addPhasesMs.ipam.push(l.ipamMs)
    res.addPhasesMs.pod.push(l.podMs)
    res.addPhasesMs.inProcess.push(l.ms)
  }
  opts.log(`cni: ${opts.sequential} ADD/DEL pairs, ADD p50 ${median(res.addMs).toFixed(0)} ms, DEL p50 ${median(res.delMs).toFixed(0)} ms`)
  // peak RSS of one ADD (the hook appends "<pid> <maxRSS KiB>")
  const rssFile = join(work, 'rss')
  must(await invoke(c, 'ADD', pods[0]!, { NODE_OPTIONS: `--import=${HOOK}`, PNB_RSS_FILE: rssFile }), 'ADD (RSS)')
  res.addPeakRssKb = Number(execSync(['cat', rssFile]).stdout.trim().split(' ')[1])
  must(await invoke(c, 'DEL', pods[0]!), 'DEL (RSS)')
  // all at once
  const batch = pods.slice(0, opts.parallel)
  let t0 = performance.now()
  const adds = await Promise.all(batch.map((p) => invoke(c, 'ADD', p)))
  res.parallelAddWallMs = performance.now() - t0
  res.parallelAddOk = adds.filter((r) => r.code === 0).length
  t0 = performance.now()
  const dels = await Promise.all(batch.map((p) => invoke(c, 'DEL', p)))
  res.parallelDelWallMs = performance.now() - t0
  res.parallelDelOk = dels.filter((r) => r.code === 0).length
  opts.log(
    `cni: ${opts.parallel} parallel ADDs ${res.parallelAddOk}/${opts.parallel} ok in ${res.parallelAddWallMs.toFixed(0)} ms, DELs ${res.parallelDelOk}/${opts.parallel} ok in ${res.parallelDelWallMs.toFixed(0)} ms`,
  )
  const bad = adds.find((r) => r.code !== 0) ?? dels.find((r) => r.code !== 0)
  if (bad) throw new Error(`parallel CNI call failed: ${(bad.stdout || bad.stderr).trim().slice(0, 400)}`)
  return res
}

export function cniTable(r: CniBenchResult): string {
  const f = (x: number) => `${x.toFixed(0)} ms`
  return [
    'CNI plugin (podnet-cni via the installed launcher, host-local IPAM, veth pods, run inside the node namespace):',
    '',
    '| figure | value |',
    '|---|---|',
    `| ADD latency, one at a time (${r.addMs.length}) | p50 ${f(median(r.addMs))}, p99 ${f(percentile(r.addMs, 99))} |`,
    `| DEL latency, one at a time (${r.delMs.length}) | p50 ${f(median(r.delMs))}, p99 ${f(percentile(r.delMs, 99))} |`,
    `| ${r.parallel} ADDs started at once on one node | ${f(r.parallelAddWallMs)} wall, ${r.parallelAddOk}/${r.parallel} succeeded |`,
    `| their ${r.parallel} DELs at once | ${f(r.parallelDelWallMs)} wall, ${r.parallelDelOk}/${r.parallel} succeeded |`,
    `| peak RSS of one ADD process | ${(r.addPeakRssKb / 1024).toFixed(1)} MiB |`,
    `| ADD inside the plugin process (p50): IPAM host-local / pod device + endpoint / whole verb | ${f(median(r.addPhasesMs.ipam))} / ${f(median(r.addPhasesMs.pod))} / ${f(median(r.addPhasesMs.inProcess))} (the rest of the ADD latency is process start and module loading) |`,
  ].join('\n')
}
