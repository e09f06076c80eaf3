// The figures: iperf3 TCP (1 and 4 streams), sockperf TCP ping-pong RTT
// percentiles, iperf3 small-packet UDP receive rate. Servers run for the whole
// run in the server namespace; clients run per sample in the client namespace.
import { Daemon, exec, sleep } from './exec.js'
import { inNs } from './netns.js'
import { onCleanup } from './cleanup.js'
import type { Setup } from './setups.js'

export const METRICS = ['tcp1', 'tcp4', 'rtt', 'udp'] as const
export type MetricId = (typeof METRICS)[number]

export const IPERF_PORT = 5201
export const SOCKPERF_PORT = 11111
/** UDP payload for the small-packet test (iperf3's header needs ≥ 16). */
export const UDP_PAYLOAD = 64
/** sockperf's smallest message: its own 14-byte header (1 segment, like 1 byte). */
export const PINGPONG_MSG = 14

/** CPU placement: with 2 CPUs in a VM, a ping-pong whose two ends sit on
 * different CPUs pays an idle-CPU wake-up (IPI, ~50 µs here) per message,
 * which drowns the datapath; so the RTT test runs both ends on one CPU, and
 * the bulk tests put client and server on different CPUs. --no-pin turns it off. */
export interface Placement {
  rtt: { client: number; server: number } | null
  bulk: { client: number; server: number } | null
}

export function defaultPlacement(ncpu: number, pin: boolean): Placement {
  if (!pin || ncpu < 2) return { rtt: null, bulk: null }
  return { rtt: { client: ncpu - 1, server: ncpu - 1 }, bulk: { client: 0, server: 1 } }
}

let placement: Placement = { rtt: null, bulk: null }
export function setPlacement(p: Placement): void {
  placement = p
}

const pinned = (cpu: number | undefined, argv: string[]): string[] => (cpu === undefined ? argv : ['taskset', '-c', String(cpu), ...argv])

export interface Sample {
  setup: string
  metric: MetricId
  rep: number
  /** tcp1/tcp4: Gbit/s received; udp: received kpps; rtt: p50 µs */
  value: number
  /** rtt only */
  p99?: number
  extra?: Record<string, number>
  error?: string
  /** the limit moved > 20 % from its median in this repetition of this figure (report.ts) */
  disturbed?: boolean
}

export interface Servers {
  stop(): void
}

/** Start iperf3 and sockperf servers in the setup's server namespace. */
export async function startServers(s: Setup): Promise<Servers> {
  const daemons = [
    new Daemon(inNs(s.server, pinned(placement.bulk?.server, ['iperf3', '-s', '-p', String(IPERF_PORT)]))),
    new Daemon(
      inNs(s.server, pinned(placement.rtt?.server, ['sockperf', 'server', '--tcp', '-i', s.serverIp, '-p', String(SOCKPERF_PORT)])),
    ),
  ]
  const stop = (): void => daemons.forEach((d) => d.stop())
  onCleanup(`servers ${s.id}`, stop)
  await sleep(300)
  for (const d of daemons) if (!d.alive) throw new Error(`${d.argv.join(' ')} died: ${d.recentOutput}`)
  return { stop }
}

interface IperfEnd {
  end?: {
    sum_received?: { bytes: number; seconds: number; bits_per_second: number }
    sum_sent?: { bytes: number; retransmits?: number }
    cpu_utilization_percent?: { host_total: number; remote_total: number }
  }
  error?: string
}

/** CPU time of sender and receiver processes (iperf3's getrusage, % of one
 * CPU over the run) per GB received. With no IRQ time accounting the
 * softirq work a process runs inline is charged to it, so this is the cost of
 * the path, and a busy host that takes CPU away from the test does not raise
 * it the way it lowers Gbit/s. NaN when iperf3 did not report CPU. */
function cpuSecondsPerGB(d: IperfEnd, bytes: number, seconds: number): number {
  const c = d.end?.cpu_utilization_percent
  if (!c || !(seconds > 0)) return Number.NaN
  return (((c.host_total + c.remote_total) / 100) * seconds) / (bytes / 1e9)
}

export function parseIperfTcp(json: string): { gbps: number; bytes: number; retransmits: number; cpuSecPerGB: number } {
  const d = JSON.parse(json) as IperfEnd
  if (d.error) throw new Error(`iperf3: ${d.error}`)
  const r = d.end?.sum_received
  if (!r || !(r.bytes > 0)) throw new Error('iperf3: nothing received')
  return {
    gbps: r.bits_per_second / 1e9,
    bytes: r.bytes,
    retransmits: d.end?.sum_sent?.retransmits ?? 0,
    cpuSecPerGB: cpuSecondsPerGB(d, r.bytes, r.seconds),
  }
}

/** Received packets per second, from the receiver's byte count. */
export function parseIperfUdp(
  json: string,
  payload = UDP_PAYLOAD,
): { kpps: number; lossPct: number; sentKpps: number; senderNsPerPkt: number } {
  const d = JSON.parse(json) as {
    error?: string
    end?: {
      sum_received?: { bytes: number; seconds: number; lost_percent: number }
      sum_sent?: { packets: number; seconds: number }
      cpu_utilization_percent?: { host_total: number }
    }
  }
  if (d.error) throw new Error(`iperf3: ${d.error}`)
  const r = d.end?.sum_received
  const s = d.end?.sum_sent
  if (!r || !(r.bytes > 0) || !(r.seconds > 0)) throw new Error('iperf3 udp: nothing received')
  const cpu = d.end?.cpu_utilization_percent?.host_total
  return {
    kpps: r.bytes / payload / r.seconds / 1e3,
    lossPct: r.lost_percent,
    sentKpps: s && s.seconds > 0 ? s.packets / s.seconds / 1e3 : Number.NaN,
    // the sender's CPU carries each packet through the whole path (inline softirqs)
    senderNsPerPkt: s && s.packets > 0 && cpu !== undefined ? ((cpu / 100) * s.seconds * 1e9) / s.packets : Number.NaN,
  }
}

/** sockperf ping-pong --full-rtt summary → RTT percentiles in µs. */
export function parseSockperf(out: string): { p50: number; p99: number; avg: number; observations: number } {
  const clean = out.replace(/\x1b\[[0-9;]*m/g, '')
  const pct = (p: string): number => {
    const m = new RegExp(`percentile ${p.replace('.', '\\.')}\\s*=\\s*([0-9.]+)`).exec(clean)
    return m ? Number(m[1]) : Number.NaN
  }
  const avg = /avg-rtt=\s*([0-9.]+)/.exec(clean)
  const obs = /Total (\d+) observations/.exec(clean)
  const r = { p50: pct('50.000'), p99: pct('99.000'), avg: avg ? Number(avg[1]) : Number.NaN, observations: obs ? Number(obs[1]) : 0 }
  if (!Number.isFinite(r.p50) || r.observations === 0) throw new Error(`sockperf: no percentiles in output: ${clean.slice(-400)}`)
  return r
}

async function iperfClient(s: Setup, args: string[], durationS: number): Promise<string> {
  // a busy server (previous client not yet gone) answers "server is busy": retry briefly
  for (let attempt = 0; ; attempt++) {
    const r = await exec(
      inNs(
        s.client,
        pinned(placement.bulk?.client, [
          'iperf3',
          '-c',
          s.serverIp,
          '-p',
          String(IPERF_PORT),
          '-t',
          String(durationS),
          '-J',
          '--connect-timeout',
          '3000',
          ...args,
        ]),
      ),
      { timeoutMs: (durationS + 20) * 1000, allowFail: true },
    )
    if (r.code === 0) return r.stdout
    if (attempt >= 3 || !/busy/i.test(r.stdout + r.stderr)) {
      let msg = r.stderr.trim()
      try {
        msg = (JSON.parse(r.stdout) as { error?: string }).error ?? msg
      } catch {
        /* not json */
      }
      throw new Error(`iperf3 ${args.join(' ')} → ${msg || `exit ${r.code}`}`)
    }
    await sleep(500)
  }
}

export async function measure(s: Setup, metric: MetricId, rep: number, durationS: number): Promise<Sample> {
  const base = { setup: s.id, metric, rep }
  try {
    switch (metric) {
      case 'tcp1':
      case 'tcp4': {
        const r = parseIperfTcp(await iperfClient(s, ['-P', metric === 'tcp1' ? '1' : '4'], durationS))
        return { ...base, value: r.gbps, extra: { bytes: r.bytes, retransmits: r.retransmits, cpuSecPerGB: r.cpuSecPerGB } }
      }
      case 'udp': {
        const r = parseIperfUdp(await iperfClient(s, ['-u', '-b', '0', '-l', String(UDP_PAYLOAD)], durationS))
        return { ...base, value: r.kpps, extra: { lossPct: r.lossPct, sentKpps: r.sentKpps, senderNsPerPkt: r.senderNsPerPkt } }
      }
      case 'rtt': {
        const out = await exec(
          inNs(
            s.client,
            pinned(placement.rtt?.client, [
              'sockperf',
              'ping-pong',
              '--tcp',
              '-i',
              s.serverIp,
              '-p',
              String(SOCKPERF_PORT),
              '-m',
              String(PINGPONG_MSG),
              '-t',
              String(durationS),
              '--full-rtt',
            ]),
          ),
          { timeoutMs: (durationS + 20) * 1000 },
        )
        const r = parseSockperf(out.stdout + out.stderr)
        return { ...base, value: r.p50, p99: r.p99, extra: { avg: r.avg, observations: r.observations } }
      }
    }
  } catch (e) {
    return { ...base, value: Number.NaN, error: (e as Error).message }
  }
}
