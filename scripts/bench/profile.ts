// Where the datapath's time goes: builds the podnet setups, enables
// kernel.bpf_stats_enabled for the duration (restoring the old value), runs
// TCP and small-UDP load, and prints run time per packet for every podnet
// program attached in those namespaces (status --json of each node: tcx links
// or tc filters on hv0, eth0, podnet_vxlan).
//
//   node scripts/bench/dist/profile.js [--duration S] [--setups podnet-direct,podnet-vxlan]
import { readFileSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { execSync } from './lib/exec.js'
import { installCleanupHandlers, onCleanup, runCleanup } from './lib/cleanup.js'
import { runTag } from './lib/netns.js'
import { cliArgv, podnetAvailable } from './lib/podnet.js'
import { buildSetup, SETUP_IDS, type Setup, type SetupId } from './lib/setups.js'
import { measure, startServers, type MetricId } from './lib/measure.js'

interface ProgStat {
  where: string
  id: number
  name: string
  runCnt: number
  runTimeNs: number
}

const STATS = '/proc/sys/kernel/bpf_stats_enabled'

/** podnet programs live in the setup's node namespaces, as `status --json`
 * reports them (tcx links or tc filters on hv0, eth0, podnet_vxlan). */
function attachedProgs(s: Setup): Array<{ where: string; id: number }> {
  const out: Array<{ where: string; id: number }> = []
  for (const node of s.nodes) {
    const st = JSON.parse(execSync(cliArgv(node, ['status', '--json'])).stdout) as {
      programs: Array<{ device: string; hook: string; id: number | null; attach?: string | null }>
    }
    for (const p of st.programs) {
      if (p.id !== null) out.push({ where: `${node.replace(/^.*-(n\d)$/, '$1')} ${p.device} ${p.hook} (${p.attach ?? 'tc'})`, id: p.id })
    }
  }
  return out
}

function progStats(progs: Array<{ where: string; id: number }>): ProgStat[] {
  return progs.map(({ where, id }) => {
    const p = JSON.parse(execSync(['bpftool', '-j', 'prog', 'show', 'id', String(id)]).stdout) as {
      name: string
      run_cnt?: number
      run_time_ns?: number
    }
    return { where, id, name: p.name, runCnt: p.run_cnt ?? 0, runTimeNs: p.run_time_ns ?? 0 }
  })
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { duration: { type: 'string', default: '3' }, setups: { type: 'string' } } })
  if (!podnetAvailable()) throw new Error('podnet-bpf is not built (npm run build)')
  const ids = (values.setups?.split(',') ?? ['podnet-direct', 'podnet-vxlan']) as SetupId[]
  for (const id of ids) if (!SETUP_IDS.includes(id)) throw new Error(`unknown setup ${id}`)
  installCleanupHandlers()
  const old = readFileSync(STATS, 'utf8').trim()
  writeFileSync(STATS, '1')
  onCleanup('bpf_stats_enabled', () => writeFileSync(STATS, old))
  try {
    for (const id of ids) {
      const s = await buildSetup(id, runTag('prof'))
      await startServers(s)
      const progs = attachedProgs(s)
      for (const metric of ['tcp1', 'udp', 'rtt'] as MetricId[]) {
        const before = progStats(progs)
        const sample = await measure(s, metric, 0, Number(values.duration))
        const after = progStats(progs)
        console.log(`\n${id} ${metric}: ${sample.error ?? sample.value.toFixed(2)}`)
        console.log('  where                     prog             packets      ns/pkt   total ms')
        for (const [i, a] of after.entries()) {
          const b = before[i]!
          const n = a.runCnt - b.runCnt
          const t = a.runTimeNs - b.runTimeNs
          console.log(
            `  ${a.where.padEnd(24)}  ${a.name.padEnd(15)} ${String(n).padStart(9)}  ${(n ? t / n : 0).toFixed(0).padStart(9)}  ${(t / 1e6).toFixed(1).padStart(8)}`,
          )
        }
      }
    }
  } finally {
    for (const f of runCleanup()) console.error(`cleanup: ${f}`)
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e)
  runCleanup()
  process.exit(1)
})
