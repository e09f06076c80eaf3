// SPDX-License-Identifier: Apache-2.0
// Minimal rtnetlink client (libc socket/send/recv): links (RTM_GETLINK by
// index or name, optionally in another netns via IFLA_TARGET_NETNSID — how we
// read the MAC of a veth's pod-side peer without entering the pod's
// namespace — or a dump of all), routes and netkit devices.

import { checkLibc } from './check.js'
import { BpfError } from './errors.js'
import { libc } from './ffi.js'

export const AF_NETLINK = 16
export const SOCK_RAW = 3
export const SOCK_CLOEXEC = 0o2000000
export const NETLINK_ROUTE = 0

export const MSG_DONTWAIT = 0x40
export const NLMSG_ERROR = 2
export const NLMSG_DONE = 3
export const NLM_F_REQUEST = 1
const RTM_NEWLINK = 16
const RTM_GETLINK = 18

export const NLM_F_DUMP = 0x300
const IFF_UP = 1

const IFLA_ADDRESS = 1
const IFLA_IFNAME = 3
const IFLA_MTU = 4
const IFLA_LINK = 5
const IFLA_LINKINFO = 18
const IFLA_LINK_NETNSID = 37
const IFLA_TARGET_NETNSID = 46
const IFLA_INFO_KIND = 1
const IFLA_INFO_DATA = 2
const IFLA_VXLAN_ID = 1
const IFLA_VXLAN_LEARNING = 7
const IFLA_VXLAN_PORT = 15
const IFLA_VXLAN_COLLECT_METADATA = 25

/*
 * Request: struct nlmsghdr (16: len u32, type u16, flags u16, seq u32, pid u32)
 *        + struct ifinfomsg (16: family u8, pad u8, type u16, index s32, flags u32, change u32)
 *        + optional rtattr IFLA_TARGET_NETNSID (4 + s32).
 */
export const NLMSGHDR_LEN = 16
const IFINFOMSG_LEN = 16

export interface LinkInfo {
  ifindex: number
  name: string
  /** "aa:bb:cc:dd:ee:ff" (lower case), "" if the device has no L2 address. */
  mac: string
  mtu: number
  up: boolean
  /** IFLA_INFO_KIND ("veth", "vxlan", "netkit", …), null for devices without one */
  kind: string | null
  /** IFLA_LINK: a veth's peer (in `peerNetnsid`'s namespace when set), null when absent or the device itself */
  peerIfindex: number | null
  peerNetnsid: number | null
  /** vxlan devices: VNI, UDP port, collect_md (external), learning */
  vxlan?: { id: number | null; port: number | null; external: boolean; learning: boolean }
}

let seq = Math.floor(Math.random() * 0x7fffffff)

/** A fresh request sequence number. */
export function nextSeq(): number {
  return (seq = (seq + 1) & 0x7fffffff)
}
let recvBuf: Buffer | undefined

export function align4(n: number): number {
  return (n + 3) & ~3
}

/** An RTM_GETLINK request: by index, by name (index 0 + IFLA_IFNAME), or a dump of every link. */
function linkRequest(flags: number, ifindex: number, name?: string, netnsid?: number): { req: Buffer; mySeq: number } {
  const nameLen = name !== undefined ? align4(4 + Buffer.byteLength(name) + 1) : 0
  const len = NLMSGHDR_LEN + IFINFOMSG_LEN + (netnsid !== undefined ? 8 : 0) + nameLen
  const req = Buffer.alloc(len)
  const mySeq = nextSeq()
  req.writeUInt32LE(len, 0)
  req.writeUInt16LE(RTM_GETLINK, 4)
  req.writeUInt16LE(flags, 6)
  req.writeUInt32LE(mySeq, 8)
  req.writeInt32LE(ifindex, NLMSGHDR_LEN + 4)
  let a = NLMSGHDR_LEN + IFINFOMSG_LEN
  if (netnsid !== undefined) {
    req.writeUInt16LE(8, a)
    req.writeUInt16LE(IFLA_TARGET_NETNSID, a + 2)
    req.writeInt32LE(netnsid, a + 4)
    a += 8
  }
  if (name !== undefined) {
    req.writeUInt16LE(4 + Buffer.byteLength(name) + 1, a)
    req.writeUInt16LE(IFLA_IFNAME, a + 2)
    req.write(name, a + 4, 'utf8')
  }
  return { req, mySeq }
}

/** RTM_GETLINK for `ifindex` in this netns, or in the netns with id `netnsid` (as seen from this one). */
export function getLink(ifindex: number, netnsid?: number): LinkInfo {
  const op = `RTM_GETLINK(ifindex ${ifindex}${netnsid !== undefined ? `, netnsid ${netnsid}` : ''})`
  const { req, mySeq } = linkRequest(NLM_F_REQUEST, ifindex, undefined, netnsid)
  return transact(req, mySeq, op, (buf, off, mlen, type) => {
    if (type === NLMSG_DONE) throw new BpfError(op, 19 /* ENODEV */)
    return type === RTM_NEWLINK ? parseLink(buf, off, mlen) : undefined
  })
}

/** RTM_GETLINK by name in this netns; null when there is no such device. */
export function getLinkByName(name: string): LinkInfo | null {
  if (name.length === 0 || Buffer.byteLength(name) > 15) return null // IFNAMSIZ - 1
  const op = `RTM_GETLINK(${name})`
  const { req, mySeq } = linkRequest(NLM_F_REQUEST, 0, name)
  try {
    return transact(req, mySeq, op, (buf, off, mlen, type) => {
      if (type === NLMSG_DONE) throw new BpfError(op, 19 /* ENODEV */)
      return type === RTM_NEWLINK ? parseLink(buf, off, mlen) : undefined
    })
  } catch (e) {
    if (e instanceof BpfError && e.code === 'ENODEV') return null
    throw e
  }
}

/** Every link of this netns (one RTM_GETLINK dump). */
export function listLinks(): LinkInfo[] {
  const { req, mySeq } = linkRequest(NLM_F_REQUEST | NLM_F_DUMP, 0)
  const links: LinkInfo[] = []
  return transact(req, mySeq, 'RTM_GETLINK(dump)', (buf, off, mlen, type) => {
    if (type === NLMSG_DONE) return links
    if (type === RTM_NEWLINK) links.push(parseLink(buf, off, mlen))
    return undefined
  })
}

/**
 * Sends one request and reads the replies to it (the kernel answers within
 * send(), so recv never blocks): an error reply throws BpfError; every other
 * reply goes to `onReply` until it returns a value.
 */
export function transact<T>(
  req: Buffer,
  mySeq: number,
  op: string,
  onReply: (buf: Buffer, off: number, mlen: number, type: number) => T | undefined,
): T {
  const lc = libc()
  const buf = (recvBuf ??= Buffer.alloc(64 * 1024))
  const fd = checkLibc(lc.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE), 'socket(AF_NETLINK)')
  try {
    checkLibc(lc.send(fd, req, req.length, 0), `${op} send`)
    for (;;) {
      const n = checkLibc(lc.recv(fd, buf, buf.length, MSG_DONTWAIT), `${op} recv`)
      for (let off = 0; off + NLMSGHDR_LEN <= n;) {
        const mlen = buf.readUInt32LE(off)
        const type = buf.readUInt16LE(off + 4)
        if (mlen < NLMSGHDR_LEN || off + mlen > n) throw new Error(`${op}: truncated netlink message`)
        if (buf.readUInt32LE(off + 8) === mySeq) {
          if (type === NLMSG_ERROR) {
            const err = buf.readInt32LE(off + NLMSGHDR_LEN)
            if (err !== 0) throw new BpfError(op, -err)
          }
          const r = onReply(buf, off, mlen, type)
          if (r !== undefined) return r
        }
        off += align4(mlen)
      }
    }
  } finally {
    lc.close(fd)
  }
}

/** Calls `fn(type, payloadOffset, payloadLen)` for each attribute in [start, end). */
function eachAttr(buf: Buffer, start: number, end: number, fn: (type: number, p: number, plen: number) => void): void {
  for (let a = start; a + 4 <= end;) {
    const alen = buf.readUInt16LE(a)
    if (alen < 4 || a + alen > end) break
    fn(buf.readUInt16LE(a + 2) & 0x3fff /* strip NLA_F_NESTED / NLA_F_NET_BYTEORDER */, a + 4, alen - 4)
    a += align4(alen)
  }
}

function cStr(buf: Buffer, p: number, plen: number): string {
  const z = buf.indexOf(0, p)
  return buf.toString('utf8', p, z >= p && z < p + plen ? z : p + plen)
}

function parseLink(buf: Buffer, off: number, mlen: number): LinkInfo {
  const ifindex = buf.readInt32LE(off + NLMSGHDR_LEN + 4)
  const flags = buf.readUInt32LE(off + NLMSGHDR_LEN + 8)
  const info: LinkInfo = {
    ifindex,
    name: '',
    mac: '',
    mtu: 0,
    up: (flags & IFF_UP) !== 0,
    kind: null,
    peerIfindex: null,
    peerNetnsid: null,
  }
  eachAttr(buf, off + NLMSGHDR_LEN + IFINFOMSG_LEN, off + mlen, (type, p, plen) => {
    if (type === IFLA_IFNAME) info.name = cStr(buf, p, plen)
    else if (type === IFLA_ADDRESS) info.mac = Array.from(buf.subarray(p, p + plen), (b) => b.toString(16).padStart(2, '0')).join(':')
    else if (type === IFLA_MTU && plen >= 4) info.mtu = buf.readUInt32LE(p)
    else if (type === IFLA_LINK && plen >= 4) info.peerIfindex = buf.readInt32LE(p)
    else if (type === IFLA_LINK_NETNSID && plen >= 4) info.peerNetnsid = buf.readInt32LE(p)
    else if (type === IFLA_LINKINFO) parseLinkInfo(buf, p, plen, info)
  })
  if (info.peerIfindex === ifindex || info.peerIfindex === 0) info.peerIfindex = null
  return info
}

/** IFLA_LINKINFO: the kind, and for vxlan its settings from IFLA_INFO_DATA. */
function parseLinkInfo(buf: Buffer, start: number, len: number, info: LinkInfo): void {
  const data = { p: -1, len: 0 }
  eachAttr(buf, start, start + len, (type, p, plen) => {
    if (type === IFLA_INFO_KIND) info.kind = cStr(buf, p, plen)
    else if (type === IFLA_INFO_DATA) Object.assign(data, { p, len: plen })
  })
  if (info.kind !== 'vxlan') return
  const vx: NonNullable<LinkInfo['vxlan']> = { id: null, port: null, external: false, learning: false }
  if (data.p >= 0) {
    eachAttr(buf, data.p, data.p + data.len, (type, p, plen) => {
      if (type === IFLA_VXLAN_ID && plen >= 4) vx.id = buf.readUInt32LE(p)
      else if (type === IFLA_VXLAN_PORT && plen >= 2)
        vx.port = buf.readUInt16BE(p) // network order
      else if (type === IFLA_VXLAN_COLLECT_METADATA && plen >= 1) vx.external = buf[p] !== 0
      else if (type === IFLA_VXLAN_LEARNING && plen >= 1) vx.learning = buf[p] !== 0
    })
  }
  info.vxlan = vx
}

// ---- routes: RTM_NEWROUTE / RTM_DELROUTE, many per send() ----

const RTM_NEWROUTE = 24
const RTM_DELROUTE = 25
const NLM_F_ACK = 4
const NLM_F_REPLACE = 0x100
const NLM_F_CREATE = 0x400
const RTMSG_LEN = 12
const RTA_DST = 1
const RTA_OIF = 4
const RTA_GATEWAY = 5
const RTA_PREFSRC = 7
const RT_TABLE_MAIN = 254
const RTN_UNICAST = 1
const RT_SCOPE_UNIVERSE = 0
const RT_SCOPE_LINK = 253
const RT_SCOPE_NOWHERE = 255
const ESRCH = 3
const ENOENT = 2

export interface RouteOp {
  op: 'replace' | 'delete'
  /** IPv4 destination network */
  dst: string
  prefixlen: number
  protocol: number
  /** replace only: output device, gateway, preferred source, scope */
  oif?: number
  gateway?: string
  prefsrc?: string
  scope?: 'link' | 'universe'
}

export interface RouteOpError {
  index: number
  error: BpfError
}

function putAddr(b: Buffer, off: number, type: number, ip: string): number {
  b.writeUInt16LE(8, off)
  b.writeUInt16LE(type, off + 2)
  const p = ip.split('.')
  for (let i = 0; i < 4; i++) b[off + 4 + i] = Number(p[i])
  return off + 8
}

function putU32(b: Buffer, off: number, type: number, v: number): number {
  b.writeUInt16LE(8, off)
  b.writeUInt16LE(type, off + 2)
  b.writeUInt32LE(v, off + 4)
  return off + 8
}

/** Encodes one route request at `off` in `b`; returns the message length. */
function encodeRoute(b: Buffer, off: number, r: RouteOp, mySeq: number, ack: boolean): number {
  const del = r.op === 'delete'
  let p = off + NLMSGHDR_LEN
  b.fill(0, off, off + NLMSGHDR_LEN + RTMSG_LEN)
  b[p] = 2 // AF_INET
  b[p + 1] = r.prefixlen
  b[p + 4] = RT_TABLE_MAIN
  b[p + 5] = r.protocol
  b[p + 6] = del ? RT_SCOPE_NOWHERE : r.scope === 'link' ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE
  b[p + 7] = del ? 0 : RTN_UNICAST
  p += RTMSG_LEN
  p = putAddr(b, p, RTA_DST, r.dst)
  if (!del) {
    if (r.oif !== undefined) p = putU32(b, p, RTA_OIF, r.oif)
    if (r.gateway) p = putAddr(b, p, RTA_GATEWAY, r.gateway)
    if (r.prefsrc) p = putAddr(b, p, RTA_PREFSRC, r.prefsrc)
  }
  const len = p - off
  b.writeUInt32LE(len, off)
  b.writeUInt16LE(del ? RTM_DELROUTE : RTM_NEWROUTE, off + 4)
  b.writeUInt16LE(NLM_F_REQUEST | (ack ? NLM_F_ACK : 0) | (del ? 0 : NLM_F_CREATE | NLM_F_REPLACE), off + 6)
  b.writeUInt32LE(mySeq, off + 8)
  return len
}

const ROUTE_CHUNK = 1024

/**
 * Applies route operations in the caller's netns, ROUTE_CHUNK requests per
 * send(). The kernel answers failures always but successes only when asked
 * (NLM_F_ACK), and it acks one message per recv(): so only the last request
 * of a chunk asks, as a barrier, and a clean chunk costs one send and one
 * recv. Returns the failed ones (a delete of a route that is not there is not
 * a failure); the others have been applied.
 */
export function routeOps(ops: readonly RouteOp[]): RouteOpError[] {
  if (ops.length === 0) return []
  const lc = libc()
  const errors: RouteOpError[] = []
  const req = Buffer.alloc(ROUTE_CHUNK * 64) // a request is at most 56 bytes
  const buf = (recvBuf ??= Buffer.alloc(64 * 1024))
  const fd = checkLibc(lc.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE), 'socket(AF_NETLINK)')
  try {
    for (let start = 0; start < ops.length; start += ROUTE_CHUNK) {
      const end = Math.min(ops.length, start + ROUTE_CHUNK)
      const base = (seq = (seq + ROUTE_CHUNK + 1) & 0x3fffffff)
      let len = 0
      for (let i = start; i < end; i++) len += align4(encodeRoute(req, len, ops[i]!, base + (i - start), i === end - 1))
      checkLibc(lc.send(fd, req, len, 0), 'rtnetlink route send')
      // rtnetlink handles the requests within send(): every answer is queued
      let done = false
      while (!done) {
        const n = checkLibc(lc.recv(fd, buf, buf.length, MSG_DONTWAIT), 'rtnetlink route recv')
        for (let off = 0; off + NLMSGHDR_LEN <= n;) {
          const mlen = buf.readUInt32LE(off)
          if (mlen < NLMSGHDR_LEN || off + mlen > n) throw new Error('rtnetlink: truncated message')
          const i = start + (buf.readUInt32LE(off + 8) - base)
          if (buf.readUInt16LE(off + 4) === NLMSG_ERROR && i >= start && i < end) {
            if (i === end - 1) done = true
            const err = -buf.readInt32LE(off + NLMSGHDR_LEN)
            const o = ops[i]!
            if (err !== 0 && !(o.op === 'delete' && (err === ESRCH || err === ENOENT))) {
              errors.push({
                index: i,
                error: new BpfError(`${o.op === 'delete' ? 'RTM_DELROUTE' : 'RTM_NEWROUTE'} ${o.dst}/${o.prefixlen}`, err),
              })
            }
          }
          off += align4(mlen)
        }
      }
    }
    return errors
  } finally {
    lc.close(fd)
  }
}

// ---- netkit pairs: RTM_NEWLINK (iproute2 before 6.7 cannot create them) ----

const NLM_F_EXCL = 0x200
const NLA_F_NESTED = 0x8000
const IFLA_NET_NS_FD = 28
const IFLA_NETKIT_PEER_INFO = 1
const IFLA_NETKIT_MODE = 5
const NETKIT_L2 = 0
const NETKIT_L3 = 1

export interface NetkitSpec {
  /** primary (host-side) device, created in the caller's netns */
  name: string
  /** the other end */
  peerName: string
  /** fd of the netns the peer is created in (an open /run/netns/NAME); caller's netns if absent */
  peerNetnsFd?: number
  mtu?: number
  /** l3 (default): no L2 addresses, no ARP; l2: random MACs, ARP as on a veth */
  mode?: 'l2' | 'l3'
}

/** Creates a netkit pair; fails (EEXIST) rather than touching an existing device. */
export function createNetkit(s: NetkitSpec): void {
  const b = Buffer.alloc(512)
  let p = NLMSGHDR_LEN + IFINFOMSG_LEN
  const str = (type: number, v: string) => {
    const n = Buffer.byteLength(v) + 1
    b.writeUInt16LE(4 + n, p)
    b.writeUInt16LE(type, p + 2)
    b.write(v, p + 4)
    b[p + 4 + n - 1] = 0
    p += align4(4 + n)
  }
  const u32 = (type: number, v: number) => {
    p = putU32(b, p, type, v)
  }
  const nest = (type: number, body: () => void) => {
    const start = p
    p += 4
    body()
    b.writeUInt16LE(p - start, start)
    b.writeUInt16LE(type | NLA_F_NESTED, start + 2)
  }
  str(IFLA_IFNAME, s.name)
  if (s.mtu !== undefined) u32(IFLA_MTU, s.mtu)
  nest(IFLA_LINKINFO, () => {
    str(IFLA_INFO_KIND, 'netkit')
    nest(IFLA_INFO_DATA, () => {
      u32(IFLA_NETKIT_MODE, s.mode === 'l2' ? NETKIT_L2 : NETKIT_L3)
      // the peer's own ifinfomsg, then its attributes
      nest(IFLA_NETKIT_PEER_INFO, () => {
        p += IFINFOMSG_LEN
        str(IFLA_IFNAME, s.peerName)
        if (s.mtu !== undefined) u32(IFLA_MTU, s.mtu)
        if (s.peerNetnsFd !== undefined) u32(IFLA_NET_NS_FD, s.peerNetnsFd)
      })
    })
  })
  const mySeq = (seq = (seq + 1) & 0x7fffffff)
  b.writeUInt32LE(p, 0)
  b.writeUInt16LE(RTM_NEWLINK, 4)
  b.writeUInt16LE(NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, 6)
  b.writeUInt32LE(mySeq, 8)
  // NLM_F_ACK: success is an error reply with errno 0
  transact(b.subarray(0, p), mySeq, `RTM_NEWLINK netkit ${s.name} (peer ${s.peerName})`, (_b, _o, _l, type) =>
    type === NLMSG_ERROR ? true : undefined,
  )
}
