// Live events from the programs through the podnet_events ring buffer:
// drops (always emitted) and forwarding traces (emitted only while
// MONITOR_F_TRACE is set in podnet_settings, which tracing monitors set
// while they run; the last one to stop clears it).
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { MapFd, RingBuffer } from '../../datapath/introspect.js'
import { MONITOR_F_TRACE, Reason, decodeEvent, isDrop, type PodnetEvent } from '../../datapath/abi.js'
import { DatapathMaps, mapPinPath } from '../../datapath/maps.js'
import { VXLAN_DEV } from '../../datapath/netdev.js'
import { parseIPv4 } from '../../util/ipv4.js'
import { requireState } from '../node.js'
import { stateDir } from '../state.js'
import { dirLabel, ifLabel, monotonicToDate, protoLabel, reasonLabel } from './common.js'
import { z } from '../../util/zod.js'

export const EventFilterSchema = z.enum(['drop', 'trace', 'all'])
export type EventFilter = z.infer<typeof EventFilterSchema>

export interface MonitorEvent {
  time: string
  type: 'drop' | 'trace'
  reason: string
  reasonCode: number
  direction: string
  /** Where the packet was seen. */
  device: string
  ifindex: number
  proto: string
  saddr: string
  daddr: string
  sport: number | null
  dport: number | null
  /** ICMP type/code (ICMP only). */
  icmp: { type: number; code: number } | null
  len: number
  /** Where it went: the pod veth (local), the device (direct/VXLAN), the peer node. */
  to: { device: string | null; ifindex: number | null; nodeIp: string | null } | null
}

export interface MonitorOptions {
  pinDir?: string
  type: EventFilter
  ip?: string
}

/** Streams events; call stop() (idempotent) to restore tracing and release the ring buffer. */
export class Monitor {
  private readonly maps: DatapathMaps
  private readonly events: MapFd
  private readonly ring: RingBuffer
  private timer: NodeJS.Timeout | null = null
  private stopped = false
  private discarding = false
  readonly pinDir: string
  readonly tracing: boolean

  constructor(
    private readonly o: MonitorOptions,
    private readonly onEvent: (e: MonitorEvent) => void,
  ) {
    if (o.ip !== undefined) parseIPv4(o.ip, '--ip address')
    this.pinDir = requireState(o.pinDir, { mapsOnly: true }).pinDir
    this.maps = DatapathMaps.open(this.pinDir)
    try {
      this.events = MapFd.fromPin(mapPinPath(this.pinDir, 'events'))
      this.ring = new RingBuffer(this.events.fd, (b) => this.handle(decodeEvent(b)))
    } catch (e) {
      this.maps.close()
      throw e
    }
    this.tracing = o.type !== 'drop'
  }

  /** Discards what is already queued (records from before this monitor ran,
   * e.g. drops nobody consumed), turns tracing on if asked, then polls the
   * ring buffer every `intervalMs`. */
  start(intervalMs = 50): void {
    this.discarding = true
    try {
      this.ring.consume()
    } finally {
      this.discarding = false
    }
    // a tracing monitor that was SIGKILLed never ran stop(): its flag goes now
    clearOrphanedTracing(this.pinDir, this.maps)
    if (this.tracing) {
      registerTracer(this.pinDir)
      this.maps.settings.traceOwner = process.pid
      this.maps.settings.monitorFlags |= MONITOR_F_TRACE
    }
    this.timer = setInterval(() => this.poll(), intervalMs)
  }

  /** Delivers what is in the ring buffer now. */
  poll(): number {
    return this.ring.consume()
  }

  stop(): void {
    if (this.stopped) return
    this.stopped = true
    if (this.timer) clearInterval(this.timer)
    try {
      this.ring.consume()
    } catch {
      /* best effort: deliver what is left */
    }
    // tracing stays on while another tracing monitor of this node runs
    if (this.tracing && unregisterTracer(this.pinDir) === 0) {
      this.maps.settings.monitorFlags &= ~MONITOR_F_TRACE
      this.maps.settings.traceOwner = 0
    }
    this.ring.close()
    this.events.close()
    this.maps.close()
  }

  private handle(ev: PodnetEvent): void {
    if (this.discarding) return
    if (this.o.type === 'drop' && ev.type !== 'drop') return
    if (this.o.type === 'trace' && ev.type !== 'trace') return
    if (this.o.ip !== undefined && ev.saddr !== this.o.ip && ev.daddr !== this.o.ip) return
    this.onEvent(this.describe(ev))
  }

  private describe(ev: PodnetEvent): MonitorEvent {
    const icmp = ev.proto === 1
    const ports = ev.proto === 6 || ev.proto === 17
    let to: MonitorEvent['to'] = null
    if (!isDrop(ev.reason) && ev.target !== 0) {
      switch (ev.reason) {
        case Reason.FWD_LOCAL:
        case Reason.FWD_ARP_REPLY:
          to = { device: ifLabel(ev.target), ifindex: ev.target, nodeIp: null }
          break
        case Reason.FWD_DECAP: // into the pod; nodeIp is the peer that sent it through the tunnel
        case Reason.FWD_DIRECT:
        case Reason.FWD_VXLAN:
          to = { device: ifLabel(ev.target), ifindex: ev.target, nodeIp: ev.nodeIp }
          break
        case Reason.FWD_ENCAP_STACK:
          to = { device: VXLAN_DEV, ifindex: ev.target, nodeIp: ev.nodeIp }
          break
      }
    } else if (!isDrop(ev.reason) && ev.nodeIp !== '0.0.0.0') {
      // TTL/MTU hand-offs to the stack still name the route's peer node
      to = { device: null, ifindex: null, nodeIp: ev.nodeIp }
    }
    return {
      time: monotonicToDate(ev.tsNs).toISOString(),
      type: ev.type,
      reason: reasonLabel(ev.reason),
      reasonCode: ev.reason,
      direction: dirLabel(ev.dir),
      device: ifLabel(ev.ifindex),
      ifindex: ev.ifindex,
      proto: ev.proto !== 0 ? protoLabel(ev.proto) : etherLabel(ev.ethertype),
      saddr: ev.saddr,
      daddr: ev.daddr,
      sport: ports ? ev.sport : null,
      dport: ports ? ev.dport : null,
      icmp: icmp ? { type: ev.sport, code: ev.dport } : null,
      len: ev.len,
      to,
    }
  }
}

function etherLabel(t: number): string {
  if (t === 0x0806) return 'arp'
  if (t === 0x0800) return 'ipv4'
  if (t === 0x86dd) return 'ipv6'
  return t === 0 ? '-' : `ethertype-0x${t.toString(16).padStart(4, '0')}`
}

const ICMP_TYPES: Record<number, string> = { 0: 'echo-reply', 3: 'unreachable', 8: 'echo-request', 11: 'time-exceeded' }

/** One readable line per event. */
export function formatEvent(e: MonitorEvent): string {
  const t = e.time.slice(11, 23)
  const ep = (a: string, p: number | null) => (p === null ? a : `${a}:${p}`)
  const addrs =
    e.saddr === '0.0.0.0' && e.daddr === '0.0.0.0' ? '(addresses not parsed)' : `${ep(e.saddr, e.sport)} > ${ep(e.daddr, e.dport)}`
  const what = e.icmp ? `icmp ${ICMP_TYPES[e.icmp.type] ?? `type ${e.icmp.type}/${e.icmp.code}`}` : e.proto
  let verdict: string
  if (e.type === 'drop') verdict = `DROPPED ${e.reason}`
  else {
    // a decapsulated packet goes into a pod; its node IP is where it came from
    const dest = !e.to
      ? ''
      : e.reasonCode === Reason.FWD_DECAP
        ? `${e.to.device}${e.to.nodeIp ? ` (from node ${e.to.nodeIp})` : ''}`
        : e.to.nodeIp
          ? `node ${e.to.nodeIp}${e.to.device ? ` via ${e.to.device}` : ''}`
          : `${e.to.device}`
    verdict = `${e.reason}${dest ? ` → ${dest}` : ''}`
  }
  return `${t}  ${e.type.padEnd(5)}  ${e.direction.padEnd(12)} ${e.device.padEnd(12)} ${addrs} ${what} len ${e.len}  ${verdict}`
}

/** Tracing monitors of one node register by pid (and the pid's start time,
 * so a reused pid is not taken for a live monitor), so the last one to stop
 * (not the first) turns tracing off; pids of crashed monitors are pruned. */
function tracerDir(pinDir: string): string {
  return join(stateDir(), 'tracers', pinDir.replace(/\//g, '_'))
}

/** Field 22 of /proc/PID/stat (start time in clock ticks), null if no such process. */
function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // comm (field 2) may contain spaces and parentheses: count from the last ')'
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null
  } catch {
    return null
  }
}

function registerTracer(pinDir: string): void {
  mkdirSync(tracerDir(pinDir), { recursive: true, mode: 0o700 })
  writeFileSync(join(tracerDir(pinDir), String(process.pid)), startTime(process.pid) ?? '', { mode: 0o600 })
}

function tracerAlive(dir: string, f: string): boolean {
  const now = startTime(Number(f))
  if (now === null) return false
  const recorded = readFileSync(join(dir, f), 'utf8').trim()
  return recorded === '' || recorded === now
}

/** Returns how many live tracing monitors are registered (dead ones are removed). */
function liveTracers(pinDir: string): number {
  const dir = tracerDir(pinDir)
  let live = 0
  for (const f of existsSync(dir) ? readdirSync(dir) : []) {
    if (/^\d+$/.test(f) && tracerAlive(dir, f)) live++
    else rmSync(join(dir, f), { force: true })
  }
  return live
}

/** Returns how many other live tracing monitors remain. */
function unregisterTracer(pinDir: string): number {
  rmSync(join(tracerDir(pinDir), String(process.pid)), { force: true })
  return liveTracers(pinDir)
}

/**
 * Turns tracing off when it is on but no tracing monitor is alive (one was
 * SIGKILLed, or its host rebooted the state dir away): the datapath cannot
 * tell, so every monitor start and `status` ask. The owner pid recorded in
 * podnet_settings covers a monitor registered under another state dir.
 * Returns true when it cleared the flag.
 */
export function clearOrphanedTracing(pinDir: string, maps: DatapathMaps): boolean {
  const s = maps.settings
  if (!(s.monitorFlags & MONITOR_F_TRACE)) return false
  if (liveTracers(pinDir) > 0) return false
  const owner = s.traceOwner
  if (owner !== 0 && owner !== process.pid && startTime(owner) !== null) return false
  s.monitorFlags &= ~MONITOR_F_TRACE
  s.traceOwner = 0
  return true
}
