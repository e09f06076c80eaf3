// Parsers, statistics and generators of the benchmark, on recorded tool output.
import { describe, expect, it } from 'vitest'
import { parseIperfTcp, parseIperfUdp, parseSockperf } from '../../scripts/bench/lib/measure.js'
import { disturbedReps, median, minMax, ratio, rotate, spread } from '../../scripts/bench/lib/stats.js'
import {
  cell,
  cpuTable,
  disturbanceReport,
  figure,
  markDisturbed,
  ratios,
  samplesTable,
  summarize,
  usedCount,
} from '../../scripts/bench/lib/report.js'
import type { Sample } from '../../scripts/bench/lib/measure.js'
import { parseAttachJson } from '../../scripts/bench/lib/podnet.js'
import { endpointSet, routeSpecs } from '../../scripts/bench/cp-worker.js'
import { cniTable, percentile } from '../../scripts/bench/lib/cni.js'

const SOCKPERF = `sockperf: [2;35m== version #3.7-no.git == [0m
sockperf: [Total Run] RunTime=2.000 sec; Warm up time=400 msec; SentMessages=240835; ReceivedMessages=240834
sockperf: [2;35m====> avg-rtt=7.221 (std-dev=13.715)[0m
sockperf: [2;35mTotal 213904 observations[0m; each percentile contains 2139.04 observations
sockperf: ---> percentile 99.000 =   64.577
sockperf: ---> percentile 90.000 =    6.223
sockperf: ---> percentile 50.000 =    4.262
`

describe('tool output parsing', () => {
  it('reads RTT p50/p99 and the observation count from sockperf --full-rtt', () => {
    expect(parseSockperf(SOCKPERF)).toEqual({ p50: 4.262, p99: 64.577, avg: 7.221, observations: 213904 })
  })

  it('rejects sockperf output without percentiles', () => {
    expect(() => parseSockperf('sockperf: ERROR: connection refused')).toThrow(/no percentiles/)
  })

  it('takes TCP throughput from the receiver side of iperf3 -J', () => {
    const json = JSON.stringify({
      end: {
        sum_received: { bytes: 5e9, seconds: 5, bits_per_second: 8e9 },
        sum_sent: { bytes: 5e9, retransmits: 3 },
        cpu_utilization_percent: { host_total: 80, remote_total: 40 },
      },
    })
    // 1.2 CPUs for 5 s over 5 GB
    expect(parseIperfTcp(json)).toEqual({ gbps: 8, bytes: 5e9, retransmits: 3, cpuSecPerGB: 1.2 })
  })

  it('leaves the CPU cost out (NaN) when iperf3 reports no CPU figures', () => {
    const json = JSON.stringify({ end: { sum_received: { bytes: 5e9, seconds: 5, bits_per_second: 8e9 } } })
    expect(parseIperfTcp(json).cpuSecPerGB).toBeNaN()
  })

  it('treats an iperf3 run that received nothing as an error, never as a figure', () => {
    expect(() => parseIperfTcp(JSON.stringify({ end: { sum_received: { bytes: 0, seconds: 1, bits_per_second: 0 } } }))).toThrow()
    expect(() => parseIperfTcp(JSON.stringify({ error: 'unable to connect to server' }))).toThrow(/unable to connect/)
  })

  it('counts UDP packets the receiver got, not what the sender sent', () => {
    const json = JSON.stringify({
      end: {
        sum_received: { bytes: 64 * 400_000, seconds: 1, lost_percent: 20 },
        sum_sent: { packets: 500_000, seconds: 1 },
        cpu_utilization_percent: { host_total: 50 },
      },
    })
    // half a CPU for 1 s over 500,000 packets: 1000 ns each
    expect(parseIperfUdp(json, 64)).toEqual({ kpps: 400, lossPct: 20, sentKpps: 500, senderNsPerPkt: 1000 })
  })

  it('reads podMtu from attach --json, bare or wrapped', () => {
    expect(parseAttachJson('{"podMtu":1450,"action":"attached"}').podMtu).toBe(1450)
    expect(parseAttachJson('{"status":0,"result":{"podMtu":1500}}').podMtu).toBe(1500)
    expect(() => parseAttachJson('{"action":"attached"}')).toThrow(/podMtu/)
  })
})

describe('statistics', () => {
  it('takes medians of the finite samples only', () => {
    expect(median([3, 1, 2])).toBe(2)
    expect(median([4, 1, 3, 2])).toBe(2.5)
    expect(median([Number.NaN, 5])).toBe(5)
    expect(median([])).toBeNaN()
  })

  it('rotates the setup order so each repetition starts elsewhere', () => {
    expect(rotate(['a', 'b', 'c'], 1)).toEqual(['b', 'c', 'a'])
    expect(rotate(['a', 'b', 'c'], 4)).toEqual(['b', 'c', 'a'])
    expect(spread([9, 10, 11])).toBeCloseTo(0.2)
    expect(ratio(1, 0)).toBeNaN()
  })

  it('computes the three ratios the issue asks for from the medians', () => {
    const mk = (setup: string, v: number, rtt: number) =>
      (['tcp1', 'tcp4', 'udp', 'rtt'] as const).map((metric) => ({
        setup,
        metric,
        rep: 1,
        value: metric === 'rtt' ? rtt : v,
        p99: rtt * 2,
      }))
    const samples = [
      ...mk('limit', 10, 4),
      ...mk('kernel-routing', 8, 6),
      ...mk('kernel-vxlan', 5, 8),
      ...mk('podnet-direct', 9, 5),
      ...mk('podnet-vxlan', 6, 6),
    ]
    const rows = summarize(['limit', 'kernel-routing', 'kernel-vxlan', 'podnet-direct', 'podnet-vxlan'], samples)
    const r = ratios(rows)
    expect(r.map((x) => x.name)).toEqual([
      'podnet-direct / kernel-routing',
      'podnet-direct / limit',
      'podnet-vxlan / podnet-direct',
      'podnet-vxlan / kernel-vxlan',
    ])
    expect(r[1]!.tcp1).toBeCloseTo(0.9)
    expect(r[1]!.rttP50).toBeCloseTo(1.25)
    expect(r[0]!.udp).toBeCloseTo(9 / 8)
    expect(r[2]!.tcp4).toBeCloseTo(6 / 9)
    expect(r[3]!.tcp4).toBeCloseTo(1.2)
    expect(r[3]!.n).toEqual([1, 1, 1, 1])
  })
})

// limit, podnet-direct and kernel-routing over 5 repetitions of one figure; in
// rep 4 the host was busy and everything, the limit included, fell by half.
function busyRun(): Sample[] {
  const limit = [100, 98, 102, 50, 101]
  const direct = [90, 91, 89, 44, 92]
  const kernel = [80, 82, 81, 41, 79]
  const mk = (setup: string, vs: number[]): Sample[] =>
    vs.map((value, i) => ({ setup, metric: 'tcp4', rep: i + 1, value, extra: { retransmits: 10 * (i + 1), cpuSecPerGB: value / 100 } }))
  return [...mk('limit', limit), ...mk('podnet-direct', direct), ...mk('kernel-routing', kernel)]
}

describe('disturbed repetitions', () => {
  it('flags a repetition whose limit moved more than 20 % from the median, either way', () => {
    const ds = disturbedReps([
      { metric: 'tcp1', rep: 1, value: 10 },
      { metric: 'tcp1', rep: 2, value: 10.5 },
      { metric: 'tcp1', rep: 3, value: 12.6 },
      { metric: 'tcp1', rep: 4, value: 7.9 },
      { metric: 'tcp1', rep: 5, value: 10.2 },
    ])
    expect(ds.map((d) => d.rep)).toEqual([3, 4])
    expect(ds[0]!.median).toBe(10.2)
    expect(ds[0]!.deviation).toBeCloseTo(12.6 / 10.2 - 1)
    expect(ds[1]!.deviation).toBeLessThan(-0.2)
  })

  it('keeps a repetition at exactly the threshold and judges each figure against its own median', () => {
    const ds = disturbedReps([
      { metric: 'tcp1', rep: 1, value: 10 },
      { metric: 'tcp1', rep: 2, value: 12 },
      { metric: 'tcp1', rep: 3, value: 8 },
      { metric: 'rtt', rep: 1, value: 4 },
      { metric: 'rtt', rep: 2, value: 4.1 },
      { metric: 'rtt', rep: 3, value: 6 },
    ])
    expect(ds.map((d) => `${d.metric}/${d.rep}`)).toEqual(['rtt/3'])
  })

  it('never blames an errored sample (no value)', () => {
    expect(
      disturbedReps([
        { metric: 'udp', rep: 1, value: Number.NaN },
        { metric: 'udp', rep: 2, value: 500 },
      ]),
    ).toEqual([])
  })

  it('flags every setup of a disturbed repetition and leaves it out of medians and ratios', () => {
    const { samples, disturbances } = markDisturbed(busyRun())
    expect(disturbances).toHaveLength(1)
    expect(disturbances[0]).toMatchObject({ metric: 'tcp4', rep: 4, value: 50, median: 100 })
    expect(samples.filter((s) => s.disturbed).map((s) => `${s.setup}/${s.rep}`)).toEqual(['limit/4', 'podnet-direct/4', 'kernel-routing/4'])
    expect(samples.every((s) => s.disturbed !== undefined)).toBe(true)

    const rows = summarize(['limit', 'podnet-direct', 'kernel-routing'], samples)
    const direct = rows[1]!
    // median of 90 91 89 92, not of all five (which would be 90)
    expect(direct.tcp4).toMatchObject({ median: 90.5, min: 89, max: 92, n: 4, of: 5, allDisturbed: false })
    expect(direct.retr4).toMatchObject({ median: 25, min: 10, max: 50, n: 4 })
    expect(cpuTable(rows)).toContain('| podnet-bpf direct | — | 0.905 (0.890–0.920) | — |')
    expect(usedCount(direct)).toBe('4 of 5')
    const none = figure([])
    expect(usedCount({ ...direct, tcp1: figure([{ value: 1 }, { value: 2, disturbed: true }]), rttP50: none, udp: none })).toBe(
      '1·4·—·— of 5',
    )
    const r = ratios(rows).find((x) => x.name === 'podnet-direct / kernel-routing')!
    expect(r.tcp4).toBeCloseTo(90.5 / 80.5)
    expect(r.n[1]).toBe(4)
  })

  it('with every repetition disturbed, takes all of them and says so', () => {
    const f = figure([
      { value: 10, disturbed: true },
      { value: 20, disturbed: true },
    ])
    expect(f).toEqual({ median: 15, min: 10, max: 20, n: 0, of: 2, allDisturbed: true })
    expect(cell(f)).toBe('15.00 (10.00–20.00) !')
  })

  it('shows the spread beside the median, and nothing when there is one sample or none', () => {
    expect(cell(figure([{ value: 3 }, { value: 1 }, { value: 2 }]))).toBe('2.00 (1.00–3.00)')
    expect(cell(figure([{ value: 5 }]), 1)).toBe('5.0')
    expect(cell(figure([{ value: Number.NaN }]))).toBe('—')
    expect(minMax([Number.NaN, 4, 2])).toEqual([2, 4])
    expect(minMax([])).toEqual([Number.NaN, Number.NaN])
  })

  it('reports the disturbed repetitions, and marks them in the sample table', () => {
    const { samples, disturbances } = markDisturbed(busyRun())
    expect(disturbanceReport(disturbances, true)).toMatch(/tcp4 rep 4: limit 50\.00 vs median 100\.00 \(−50 %\)/)
    expect(disturbanceReport([], true)).toMatch(/No disturbed repetition/)
    expect(disturbanceReport([], false)).toMatch(/cannot be checked/)
    expect(samplesTable(['podnet-direct'], samples)).toContain('| podnet-bpf direct | 90.00 91.00 89.00 [44.00] 92.00 |')
  })
})

describe('control-plane inputs', () => {
  it('generates 5,000 distinct /24 routes outside the pod CIDRs, via on-link peer IPs', () => {
    const specs = routeSpecs(5000)
    expect(new Set(specs.map((s) => s.cidr)).size).toBe(5000)
    expect(specs.every((s) => /^10\.1(0\d|1\d)\.\d+\.0\/24$/.test(s.cidr))).toBe(true)
    expect(specs.every((s) => /^192\.168\.77\.(\d+)$/.test(s.nodeIp) && s.nodeIp !== '192.168.77.1')).toBe(true)
  })

  it('generates 100,000 distinct endpoints inside 10.128.0.0/14', () => {
    const eps = endpointSet(100_000, 7)
    expect(new Set(eps.map((e) => e.ip)).size).toBe(100_000)
    expect(new Set(eps.map((e) => e.podMac)).size).toBe(100_000)
    const second = (ip: string) => Number(ip.split('.')[1])
    expect(eps.every((e) => e.ip.startsWith('10.') && second(e.ip) >= 128 && second(e.ip) <= 131)).toBe(true)
  })
})

describe('CNI figures', () => {
  it('takes nearest-rank percentiles, so p99 of 100 samples is the 99th smallest', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i)
    expect(percentile(xs, 99)).toBe(99)
    expect(percentile(xs, 50)).toBe(50)
    expect(percentile([7], 99)).toBe(7)
  })

  it('renders every CNI figure with its count and success ratio', () => {
    const md = cniTable({
      addMs: [100, 120, 900],
      delMs: [80, 90, 95],
      parallel: 50,
      parallelAddWallMs: 4200,
      parallelAddOk: 49,
      parallelDelWallMs: 3000,
      parallelDelOk: 50,
      addPeakRssKb: 60 * 1024,
      addPhasesMs: { ipam: [10], pod: [50], inProcess: [70] },
    })
    expect(md).toContain('| ADD latency, one at a time (3) | p50 120 ms, p99 900 ms |')
    expect(md).toContain('| 50 ADDs started at once on one node | 4200 ms wall, 49/50 succeeded |')
    expect(md).toContain('| peak RSS of one ADD process | 60.0 MiB |')
    expect(md).toContain('10 ms / 50 ms / 70 ms')
  })
})
