// SPDX-License-Identifier: Apache-2.0
// IPv4 routes of one kernel table over rtnetlink: a dump (RTM_GETROUTE with
// NLM_F_DUMP) and a monitor (a socket bound to RTNLGRP_IPV4_ROUTE). The BGP
// mode mirrors the table its daemon writes into the BPF routes map with them.

import { checkLibc } from './check.js'
import { BpfError } from './errors.js'
import { libc, pollAsync } from './ffi.js'
import {
  AF_NETLINK,
  MSG_DONTWAIT,
  NETLINK_ROUTE,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSGHDR_LEN,
  SOCK_CLOEXEC,
  SOCK_RAW,
  align4,
  nextSeq,
  transact,
} from './netlink.js'

const AF_INET = 2
const NLMSG_OVERRUN = 4
const RTM_NEWROUTE = 24
const RTM_DELROUTE = 25
const RTM_GETROUTE = 26
const RTA_DST = 1
const RTA_OIF = 4
const RTA_GATEWAY = 5
const RTA_PREFSRC = 7
const RTA_TABLE = 15
const RTMGRP_IPV4_ROUTE = 0x40
const SOL_SOCKET = 1
const SO_RCVBUFFORCE = 33
const POLLIN = 1
const EAGAIN = 11
const ENOBUFS = 105
const RTMSG_LEN = 12

export interface TableRoute {
  /** "10.244.2.0/24" */
  cidr: string
  table: number
  protocol: number
  /** RTN_* (1 unicast, 6 blackhole, 7 unreachable, …) */
  type: number
  gateway?: string
  oif?: number
  /** RT_SCOPE_* (0 universe, 253 link) */
  scope?: number
  /** preferred source address */
  prefsrc?: string
}

export type RouteEvent = { kind: 'add' | 'del'; route: TableRoute } | { kind: 'overrun' }

function ipAt(buf: Buffer, p: number): string {
  return `${buf[p]}.${buf[p + 1]}.${buf[p + 2]}.${buf[p + 3]}`
}

/** Decodes one RTM_NEWROUTE/RTM_DELROUTE message (struct rtmsg + attributes); IPv4 only. */
export function parseRouteMessage(buf: Buffer, off: number, mlen: number): TableRoute | undefined {
  const r = off + NLMSGHDR_LEN
  if (buf[r] !== AF_INET) return undefined
  const len = buf[r + 1]!
  let table = buf[r + 4]!
  let dst = '0.0.0.0'
  let gateway: string | undefined
  let oif: number | undefined
  let prefsrc: string | undefined
  const end = off + mlen
  for (let a = r + RTMSG_LEN; a + 4 <= end;) {
    const alen = buf.readUInt16LE(a)
    const atype = buf.readUInt16LE(a + 2) & 0x3fff
    if (alen < 4) break
    if (atype === RTA_DST && alen >= 8) dst = ipAt(buf, a + 4)
    else if (atype === RTA_GATEWAY && alen >= 8) gateway = ipAt(buf, a + 4)
    else if (atype === RTA_OIF && alen >= 8) oif = buf.readUInt32LE(a + 4)
    else if (atype === RTA_PREFSRC && alen >= 8) prefsrc = ipAt(buf, a + 4)
    else if (atype === RTA_TABLE && alen >= 8) table = buf.readUInt32LE(a + 4)
    a += align4(alen)
  }
  return { cidr: `${dst}/${len}`, table, protocol: buf[r + 5]!, scope: buf[r + 6]!, type: buf[r + 7]!, gateway, oif, prefsrc }
}

/** Every IPv4 route in `table` of the caller's netns. */
export function dumpRouteTable(table: number): TableRoute[] {
  const req = Buffer.alloc(NLMSGHDR_LEN + RTMSG_LEN)
  const mySeq = nextSeq()
  req.writeUInt32LE(req.length, 0)
  req.writeUInt16LE(RTM_GETROUTE, 4)
  req.writeUInt16LE(NLM_F_REQUEST | NLM_F_DUMP, 6)
  req.writeUInt32LE(mySeq, 8)
  req[NLMSGHDR_LEN] = AF_INET
  const out: TableRoute[] = []
  transact(req, mySeq, `RTM_GETROUTE dump (table ${table})`, (buf, off, mlen, type) => {
    if (type === NLMSG_DONE) return true
    if (type === RTM_NEWROUTE) {
      const rt = parseRouteMessage(buf, off, mlen)
      if (rt && rt.table === table) out.push(rt)
    }
    return undefined
  })
  return out
}

/**
 * Route changes in the caller's netns (the netns at open(); the socket keeps
 * it), filtered to one table. Waits on a worker thread (poll), reads on the
 * main thread. On a receive-buffer overrun (ENOBUFS: events were lost) it
 * emits `overrun`, after which the caller must dump the table again.
 */
export class RouteMonitor {
  private fd: number
  private closed = false
  private readonly buf = Buffer.alloc(256 * 1024)

  private constructor(
    fd: number,
    private readonly table: number,
    private readonly onEvent: (events: RouteEvent[]) => void,
  ) {
    this.fd = fd
  }

  static open(table: number, onEvent: (events: RouteEvent[]) => void): RouteMonitor {
    const lc = libc()
    const fd = checkLibc(lc.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE), 'socket(AF_NETLINK)')
    try {
      const sa = Buffer.alloc(12) // sockaddr_nl { u16 family; u16 pad; u32 pid; u32 groups }
      sa.writeUInt16LE(AF_NETLINK, 0)
      sa.writeUInt32LE(RTMGRP_IPV4_ROUTE, 8)
      checkLibc(lc.bind(fd, sa, sa.length), 'bind(RTMGRP_IPV4_ROUTE)')
      // 1,000 routes arriving at once must not overrun the default buffer
      const sz = Buffer.alloc(4)
      sz.writeInt32LE(4 * 1024 * 1024, 0)
      lc.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, sz, 4)
    } catch (e) {
      lc.close(fd)
      throw e
    }
    const m = new RouteMonitor(fd, table, onEvent)
    void m.loop()
    return m
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      try {
        const ready = await pollAsync(this.fd, POLLIN, 200)
        if (this.closed) break
        if (ready > 0) this.drain()
      } catch {
        // an unexpected socket error: the caller resyncs from a dump; the loop goes on
        if (!this.closed) this.onEvent([{ kind: 'overrun' }])
        await new Promise((r) => setTimeout(r, 200))
      }
    }
    libc().close(this.fd)
  }

  /** Reads every queued message without blocking. */
  private drain(): void {
    const lc = libc()
    const events: RouteEvent[] = []
    for (;;) {
      let n: number
      try {
        n = checkLibc(lc.recv(this.fd, this.buf, this.buf.length, MSG_DONTWAIT), 'route monitor recv')
      } catch (e) {
        if (e instanceof BpfError && e.errno === EAGAIN) break
        if (e instanceof BpfError && e.errno === ENOBUFS) {
          events.push({ kind: 'overrun' })
          continue
        }
        throw e
      }
      for (let off = 0; off + NLMSGHDR_LEN <= n;) {
        const mlen = this.buf.readUInt32LE(off)
        const type = this.buf.readUInt16LE(off + 4)
        if (mlen < NLMSGHDR_LEN || off + mlen > n) break
        if (type === NLMSG_OVERRUN) events.push({ kind: 'overrun' })
        else if (type === RTM_NEWROUTE || type === RTM_DELROUTE) {
          const rt = parseRouteMessage(this.buf, off, mlen)
          if (rt && rt.table === this.table) events.push({ kind: type === RTM_NEWROUTE ? 'add' : 'del', route: rt })
        } else if (type === NLMSG_ERROR) events.push({ kind: 'overrun' })
        off += align4(mlen)
      }
    }
    if (events.length) this.onEvent(events)
  }

  /** Stops within one poll timeout (200 ms); the socket is closed by the loop. */
  close(): void {
    this.closed = true
  }
}
