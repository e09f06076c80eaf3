// SPDX-License-Identifier: Apache-2.0
// Loads the real prebuilt BPF objects (bpf/build) with a given config into a
// private pin dir, fills their maps and runs packets through them with
// BPF_PROG_TEST_RUN: in explain mode (the decision the program wrote into
// cb[]) or counted (what counters and drop events it left behind).

import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, rmdirSync, unlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BpfObject, MapFd, RingBuffer, isBpfError, progTestRun } from '../../src/libbpf/index.js'
import {
  DIR_MAX,
  Dir,
  Programs,
  Reason,
  REASON_MAX,
  decodeEvent,
  explainCodec,
  type DatapathConfig,
  type PodnetEvent,
  type ProgramKey,
} from '../../src/datapath/abi.js'
import { DatapathMaps, mapPinPath, type Counter } from '../../src/datapath/maps.js'
import { loadProgram, type LoadedProgram } from '../../src/datapath/objects.js'
import { ip4 } from './packet.js'

const here = dirname(fileURLToPath(import.meta.url))

export const ALL_PROGRAMS = Object.keys(Programs) as ProgramKey[]

/** The hook (enum podnet_dir) each program counts under. */
export const PROGRAM_DIR: Record<ProgramKey, number> = {
  fromPod: Dir.FROM_POD,
  fromOverlay: Dir.FROM_OVERLAY,
  fromNetdev: Dir.FROM_NETDEV,
  toOverlay: Dir.TO_OVERLAY,
}

/** A node with both direct and VXLAN peers. The ifindexes need not exist: test runs do not redirect. */
export const TEST_CONFIG: DatapathConfig = {
  nodeIp: '192.168.1.10',
  deviceIfindex: 1001,
  vxlanIfindex: 1002,
  vni: 4242,
  deviceMtu: 1500,
  overlayMtu: 1450,
  podCidr: '10.1.0.0/24',
}

/** TEST_CONFIG with every VXLAN setting changed: another node IP and device, the largest VNI, the IANA port. */
export const OTHER_VXLAN_CONFIG: DatapathConfig = {
  ...TEST_CONFIG,
  nodeIp: '192.168.1.11',
  deviceIfindex: 2001,
  vni: 0xffffff,
  vxlanPort: 4789,
}

/** Direct routing only: no VXLAN device. */
export const DIRECT_ONLY_CONFIG: DatapathConfig = { ...TEST_CONFIG, vxlanIfindex: 0 }

/** ctx ifindex 1 (lo) is the ingress device of every test run: "this pod's host veth". */
export const LO_IFINDEX = 1

/** tc verdicts. A live (counted) run hands a packet to the stack with
 * TC_ACT_UNSPEC (= TCX_NEXT: later programs on the hook still run); explain
 * mode reports that decision as TC_ACT_OK. */
export const TC_ACT_UNSPEC = -1
export const TC_ACT_OK = 0
export const TC_ACT_SHOT = 2
export const TC_ACT_REDIRECT = 7

const reasonNames = new Map<number, string>(Object.entries(Reason).map(([k, v]) => [v, k]))
export function reasonName(code: number): string {
  return reasonNames.get(code) ?? `reason-${code}`
}

export interface RunOptions {
  /** Ingress device (must exist in this netns; default 1 = lo). */
  ifindex?: number
  /** Makes the skb a GSO skb with this segment size. */
  gsoSize?: number
  gsoSegs?: number
  /** Explain mode only: the received tunnel key passed in the explain request (from_overlay). */
  explainTunnel?: { remote: string; vni: number }
}

function skbCtx(o: RunOptions, explain: boolean): Buffer {
  const gso = o.gsoSize !== undefined ? { size: o.gsoSize, segs: o.gsoSegs ?? 2 } : undefined
  return explainCodec.encodeCtx({ ifindex: o.ifindex ?? LO_IFINDEX, explain, tunnel: o.explainTunnel, gso })
}

/** What a program decided about one packet (explain mode). */
export interface Decision {
  verdict: number
  reason: number
  /** Reason as its enum name, for readable assertion failures. */
  reasonName: string
  /** Redirect target ifindex (local, decap: the pod's veth; direct, VXLAN: the device) or 0. */
  target: number
  /** Peer node IP ('0.0.0.0' when none). */
  nodeIp: string
  vni: number
  /** The packet after the program ran. */
  data: Buffer
  /** cb[0..4] of ctx_out, raw. */
  cb: number[]
}

export interface CountedRun {
  verdict: number
  data: Buffer
}

export interface TunnelKey {
  /** The sender (outer source IP). */
  remote: string
  vni: number
}

/** `${dir}:${reason}` → packets and bytes. */
export type CounterTable = Map<string, { dir: number; reason: number; packets: bigint; bytes: bigint }>

function counterTable(cs: Counter[]): CounterTable {
  const m: CounterTable = new Map()
  for (const c of cs) m.set(`${c.dir}:${c.reason}`, { dir: c.dir, reason: c.reason, packets: c.packets, bytes: c.bytes })
  return m
}

/** after − before, entries with no change left out. */
export function counterDelta(before: CounterTable, after: CounterTable): CounterTable {
  const d: CounterTable = new Map()
  for (const [k, a] of after) {
    const b = before.get(k)
    const packets = a.packets - (b?.packets ?? 0n)
    const bytes = a.bytes - (b?.bytes ?? 0n)
    if (packets !== 0n || bytes !== 0n) d.set(k, { dir: a.dir, reason: a.reason, packets, bytes })
  }
  return d
}

/** A private bpffs pin dir under /sys/fs/bpf. */
export function makePinDir(tag: string): string {
  const dir = `/sys/fs/bpf/pntest-${tag}-${process.pid}-${Math.random().toString(36).slice(2, 10)}`
  mkdirSync(dir, { recursive: false, mode: 0o700 })
  return dir
}

/** Unpins everything in dir (maps and programs are plain files on bpffs) and removes it. */
export function removePinDir(dir: string): void {
  if (!existsSync(dir)) return
  for (const f of readdirSync(dir)) unlinkSync(join(dir, f))
  rmdirSync(dir)
}

function multiarchInclude(): string[] {
  try {
    const triple = execFileSync('gcc', ['-print-multiarch'], { encoding: 'utf8' }).trim()
    return triple ? [`-I/usr/include/${triple}`] : []
  } catch {
    return []
  }
}

const SHIM_SLOT: Record<ProgramKey, number> = { fromOverlay: 0, toOverlay: 1, fromPod: 2, fromNetdev: 3 }

/** The test-only tunnel-key shim (test/bpf/fixtures/tunnel_shim.bpf.c), compiled on first use. */
class TunnelShim {
  private readonly obj: BpfObject
  private readonly progs: MapFd
  private readonly param: MapFd
  readonly fd: number
  private readonly tmp: string

  constructor(targets: Partial<Record<ProgramKey, LoadedProgram>>) {
    this.tmp = mkdtempSync(join(tmpdir(), 'pntest-shim-'))
    const out = join(this.tmp, 'tunnel_shim.bpf.o')
    execFileSync(
      'clang',
      ['-O2', '-g', '-target', 'bpf', ...multiarchInclude(), '-c', join(here, '..', 'bpf', 'fixtures', 'tunnel_shim.bpf.c'), '-o', out],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    )
    this.obj = BpfObject.open(out)
    try {
      this.obj.load()
      this.fd = this.obj.program('pn_test_tunnel_shim').fd()
      this.progs = MapFd.fromFd(this.obj.map('pn_shim_progs').fd(), false)
      this.param = MapFd.fromFd(this.obj.map('pn_shim_param').fd(), false)
      for (const [key, lp] of Object.entries(targets) as [ProgramKey, LoadedProgram][]) {
        const k = Buffer.alloc(4)
        const v = Buffer.alloc(4)
        k.writeUInt32LE(SHIM_SLOT[key], 0)
        v.writeUInt32LE(lp.prog.fd(), 0)
        this.progs.update(k, v)
      }
    } catch (e) {
      this.close()
      throw e
    }
  }

  private armed: Buffer | null = null

  arm(key: ProgramKey, tunnel: TunnelKey | null): void {
    const v = Buffer.alloc(16)
    if (tunnel) {
      v.writeUInt32LE(1, 0)
      v.writeUInt32LE(ip4(tunnel.remote).readUInt32BE(0), 4)
      v.writeUInt32LE(tunnel.vni >>> 0, 8)
    }
    v.writeUInt32LE(SHIM_SLOT[key], 12)
    if (this.armed?.equals(v)) return
    this.param.update(Buffer.alloc(4), v)
    this.armed = v
  }

  close(): void {
    this.obj.close()
    rmSync(this.tmp, { recursive: true, force: true })
  }
}

export interface HarnessOptions {
  /** Programs to load (default all four). */
  programs?: ProgramKey[]
  /** Tag in the pin dir name. */
  tag?: string
}

/** The four programs of one node, loaded with one config, sharing maps in a private pin dir. */
export class BpfHarness {
  readonly pinDir: string
  readonly cfg: DatapathConfig
  readonly maps: DatapathMaps
  private readonly loaded = new Map<ProgramKey, LoadedProgram>()
  private readonly fds = new Map<ProgramKey, number>()
  private readonly eventsMap: MapFd
  private readonly ring: RingBuffer
  private readonly pending: PodnetEvent[] = []
  private shim: TunnelShim | null = null
  private closed = false

  private constructor(cfg: DatapathConfig, o: HarnessOptions) {
    this.cfg = cfg
    this.pinDir = makePinDir(o.tag ?? 'h')
    try {
      for (const key of o.programs ?? ALL_PROGRAMS) this.loaded.set(key, loadProgram(key, cfg, this.pinDir))
      this.maps = DatapathMaps.open(this.pinDir)
      this.eventsMap = MapFd.fromPin(mapPinPath(this.pinDir, 'events'))
      this.ring = new RingBuffer(this.eventsMap.fd, (b) => this.pending.push(decodeEvent(b)))
    } catch (e) {
      for (const lp of this.loaded.values()) lp.obj.close()
      removePinDir(this.pinDir)
      throw e
    }
  }

  static open(cfg: DatapathConfig = TEST_CONFIG, o: HarnessOptions = {}): BpfHarness {
    return new BpfHarness(cfg, o)
  }

  program(key: ProgramKey): LoadedProgram {
    const lp = this.loaded.get(key)
    if (!lp) throw new Error(`program ${key} is not loaded in this harness`)
    return lp
  }

  /** Program fd (cached: each libbpf call through FFI costs tens of µs). */
  progFd(key: ProgramKey): number {
    let fd = this.fds.get(key)
    if (fd === undefined) {
      fd = this.program(key).prog.fd()
      this.fds.set(key, fd)
    }
    return fd
  }

  // ---- map setup ----

  /** A local pod. ifindex 1 (lo) = the pod behind the veth the test packet arrives on. */
  addEndpoint(ip: string, ifindex: number, podMac: string, hostMac: string): void {
    this.maps.endpoints.set({ ip, ifindex, flags: 0, podMac, hostMac })
  }

  addRoute(cidr: string, nodeIp: string, vxlan: boolean): void {
    this.maps.routes.set({ cidr, nodeIp, vxlan })
  }

  /** Empties endpoints and routes, turns tracing off and drops pending events. */
  reset(): void {
    for (const e of this.maps.endpoints.list()) this.maps.endpoints.delete(e.ip)
    for (const r of this.maps.routes.list()) this.maps.routes.delete(r.cidr)
    this.maps.settings.monitorFlags = 0
    this.drainEvents()
  }

  // ---- running packets ----

  private runRaw(fd: number, data: Buffer, o: RunOptions, explain: boolean) {
    return progTestRun(fd, { data, ctx: skbCtx(o, explain), repeat: 1, dataSizeOut: data.length + 256 })
  }

  private decision(r: { retval: number; data: Buffer; ctx: Buffer | null }): Decision {
    if (!r.ctx) throw new Error('no ctx_out')
    const d = explainCodec.decodeDecision(r.retval, r.ctx)
    return {
      verdict: d.verdict,
      reason: d.reason,
      reasonName: reasonName(d.reason),
      target: d.target,
      nodeIp: d.nodeIp,
      vni: d.vni,
      data: Buffer.from(r.data),
      cb: explainCodec.cbWords(r.ctx),
    }
  }

  /** Runs a packet in explain mode: the program's decision, no counters, no events. */
  explain(key: ProgramKey, data: Buffer, o: RunOptions = {}): Decision {
    const r = this.runRaw(this.progFd(key), data, o, true)
    const d = this.decision(r)
    if (d.verdict !== d.cb[0]) throw new Error(`${key}: retval ${d.verdict} but cb[0] says ${d.cb[0]}`)
    return d
  }

  /** Runs a packet without the explain magic: counters and events are written. */
  /**
   * Like explain(), but returns null when the kernel refuses the test run
   * with EINVAL: BPF_PROG_TEST_RUN needs ≥ 14 bytes, and (6.x) a whole IPv4
   * header for ethertype IPv4 and a whole IPv6 header for IPv6.
   */
  explainOrRefused(key: ProgramKey, data: Buffer, o: RunOptions = {}): Decision | null {
    try {
      return this.explain(key, data, o)
    } catch (e) {
      if (isBpfError(e, 'EINVAL') && kernelMayRefuse(data)) return null
      throw e
    }
  }

  runCounted(key: ProgramKey, data: Buffer, o: RunOptions = {}): CountedRun {
    const r = this.runRaw(this.progFd(key), data, o, false)
    return { verdict: r.retval, data: Buffer.from(r.data) }
  }

  /**
   * Runs a packet through the test shim, which first sets `tunnel` as the
   * skb's tunnel key (as a collect_md VXLAN device does on receive) and then
   * tail-calls the program. Returns the raw verdict and cb[] (explain mode).
   */
  explainWithTunnel(key: ProgramKey, data: Buffer, tunnel: TunnelKey | null, o: RunOptions = {}): Decision {
    this.shim ??= new TunnelShim(Object.fromEntries(this.loaded))
    this.shim.arm(key, tunnel)
    return this.decision(this.runRaw(this.shim.fd, data, o, true))
  }

  runCountedWithTunnel(key: ProgramKey, data: Buffer, tunnel: TunnelKey | null, o: RunOptions = {}): CountedRun {
    this.shim ??= new TunnelShim(Object.fromEntries(this.loaded))
    this.shim.arm(key, tunnel)
    const r = this.runRaw(this.shim.fd, data, o, false)
    return { verdict: r.retval, data: Buffer.from(r.data) }
  }

  // ---- counters and events ----

  counters(): CounterTable {
    return counterTable(this.maps.metrics.read())
  }

  /** Runs fn and returns the counter changes it caused. */
  countersDuring(fn: () => void): CounterTable {
    const before = this.counters()
    fn()
    return counterDelta(before, this.counters())
  }

  /** Every event the programs emitted since the last drain. */
  drainEvents(): PodnetEvent[] {
    this.ring.consume()
    return this.pending.splice(0)
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.shim?.close()
    this.ring.close()
    this.eventsMap.close()
    this.maps.close()
    for (const lp of this.loaded.values()) lp.obj.close()
    removePinDir(this.pinDir)
  }
}

/** Frames BPF_PROG_TEST_RUN may refuse (EINVAL) before the program runs. */
export function kernelMayRefuse(data: Buffer): boolean {
  if (data.length < 14) return true
  const type = data.readUInt16BE(12)
  return (type === 0x0800 && data.length < 14 + 20) || (type === 0x86dd && data.length < 14 + 40)
}

/** Index of a metrics counter. */
export function metricIndex(dir: number, reason: number): number {
  if (dir >= DIR_MAX || reason >= REASON_MAX) throw new RangeError('dir/reason out of range')
  return dir * REASON_MAX + reason
}
