// Parsers, statistics and generators of the benchmark, on recorded tool output.
import { describe, expect, it } from 'vitest'
import { parseIperfTcp, parseIperfUdp, parseSockperf } from '../../scripts/bench/lib/measure.js'
import { median, ratio, rotate, spread } from '../../scripts/bench/lib/stats.js'
import { ratios, summarize } from '../../scripts/bench/lib/report.js'
import { parseAttachJson } from '../../scripts/bench/lib/podnet.js'
import { endpointSet, routeSpecs } from '../../scripts/bench/cp-worker.js'

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
      end: { sum_received: { bytes: 5e9, seconds: 5, bits_per_second: 8e9 }, sum_sent: { bytes: 5e9, retransmits: 3 } },
    })
    expect(parseIperfTcp(json)).toEqual({ gbps: 8, bytes: 5e9, retransmits: 3 })
  })

  it('treats an iperf3 run that received nothing as an error, never as a figure', () => {
    expect(() => parseIperfTcp(JSON.stringify({ end: { sum_received: { bytes: 0, seconds: 1, bits_per_second: 0 } } }))).toThrow()
    expect(() => parseIperfTcp(JSON.stringify({ error: 'unable to connect to server' }))).toThrow(/unable to connect/)
  })

  it('counts UDP packets the receiver got, not what the sender sent', () => {
    const json = JSON.stringify({
      end: { sum_received: { bytes: 64 * 400_000, seconds: 1, lost_percent: 20 }, sum_sent: { packets: 500_000, seconds: 1 } },
    })
    expect(parseIperfUdp(json, 64)).toEqual({ kpps: 400, lossPct: 20, sentKpps: 500 })
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
    expect(r.map((x) => x.name)).toEqual(['podnet-direct / limit', 'podnet-direct / kernel-routing', 'podnet-vxlan / kernel-vxlan'])
    expect(r[0]!.tcp1).toBeCloseTo(0.9)
    expect(r[0]!.rttP50).toBeCloseTo(1.25)
    expect(r[2]!.tcp4).toBeCloseTo(1.2)
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
