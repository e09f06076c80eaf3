// SPDX-License-Identifier: Apache-2.0
// A small packet builder and parser for BPF_PROG_TEST_RUN tests: Ethernet,
// ARP, IPv4 (options, fragments), ICMP, TCP, UDP and a VXLAN outer header.
// Checksums are computed here from scratch (RFC 1071), independently of the
// datapath, so tests can check what the programs wrote.

export const ETH_HLEN = 14
export const ETH_P_IP = 0x0800
export const ETH_P_ARP = 0x0806
export const ETH_P_IPV6 = 0x86dd
export const ETH_P_8021Q = 0x8100
export const ETH_P_8021AD = 0x88a8
export const IPPROTO_ICMP = 1
export const IPPROTO_TCP = 6
export const IPPROTO_UDP = 17
export const IPPROTO_GRE = 47
/** The IANA VXLAN port, vxlanFrame's default. podnet's own default is 8472 (DEFAULT_VXLAN_PORT, as Linux). */
export const VXLAN_PORT = 4789
export const BROADCAST_MAC = 'ff:ff:ff:ff:ff:ff'

// ---- addresses ----

export function mac(s: string): Buffer {
  const parts = s.split(':')
  if (parts.length !== 6) throw new Error(`bad MAC ${s}`)
  return Buffer.from(parts.map((p) => parseInt(p, 16)))
}

export function macStr(b: Buffer, off = 0): string {
  return [...b.subarray(off, off + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':')
}

export function ip4(s: string): Buffer {
  const parts = s.split('.').map(Number)
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`bad IPv4 ${s}`)
  return Buffer.from(parts)
}

export function ip4Str(b: Buffer, off = 0): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`
}

/** A network-byte-order IPv4 address as the u32 a little-endian host reads from memory. */
export function ip4ToLeU32(s: string): number {
  return ip4(s).readUInt32LE(0)
}

export function leU32ToIp4(n: number): string {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n >>> 0, 0)
  return ip4Str(b)
}

// ---- checksums ----

/** RFC 1071 one's complement sum of 16-bit big-endian words (not inverted), folded to 16 bits. */
export function onesSum(buf: Buffer, off = 0, len = buf.length - off, initial = 0): number {
  let sum = initial
  let i = off
  const end = off + len
  for (; i + 1 < end; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!
  if (i < end) sum += buf[i]! << 8
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16)
  return sum
}

/** The Internet checksum of buf[off, off+len): ~sum, as stored in a header. */
export function inetChecksum(buf: Buffer, off = 0, len = buf.length - off, initial = 0): number {
  return ~onesSum(buf, off, len, initial) & 0xffff
}

/** IPv4 header checksum of the header at `off` (its checksum field counted as zero). */
export function ipv4HeaderChecksum(buf: Buffer, off = 0): number {
  const hlen = (buf[off]! & 0x0f) * 4
  const h = Buffer.from(buf.subarray(off, off + hlen))
  h.writeUInt16BE(0, 10)
  return inetChecksum(h)
}

/** True when the IPv4 header at `off` verifies (sum over the header, checksum included, is 0xffff). */
export function ipv4HeaderValid(buf: Buffer, off = 0): boolean {
  const hlen = (buf[off]! & 0x0f) * 4
  return onesSum(buf, off, hlen) === 0xffff
}

function pseudoHeaderSum(src: Buffer, dst: Buffer, proto: number, len: number): number {
  const p = Buffer.alloc(12)
  src.copy(p, 0)
  dst.copy(p, 4)
  p[9] = proto
  p.writeUInt16BE(len, 10)
  return onesSum(p)
}

/** TCP/UDP checksum over pseudo-header + segment (segment's checksum field counted as zero). */
export function l4Checksum(src: string, dst: string, proto: number, segment: Buffer): number {
  const seg = Buffer.from(segment)
  seg.writeUInt16BE(0, proto === IPPROTO_UDP ? 6 : 16)
  const c = inetChecksum(seg, 0, seg.length, pseudoHeaderSum(ip4(src), ip4(dst), proto, seg.length))
  return proto === IPPROTO_UDP && c === 0 ? 0xffff : c
}

// ---- builders ----

export interface EthOpts {
  dst?: string
  src?: string
  type: number
  /** VLAN tag (802.1Q) inserted before `type`. */
  vlan?: number
}

export function eth(o: EthOpts, payload: Buffer = Buffer.alloc(0)): Buffer {
  const tag = o.vlan !== undefined ? 4 : 0
  const b = Buffer.alloc(ETH_HLEN + tag)
  mac(o.dst ?? '02:00:00:00:00:02').copy(b, 0)
  mac(o.src ?? '02:00:00:00:00:01').copy(b, 6)
  if (o.vlan !== undefined) {
    b.writeUInt16BE(ETH_P_8021Q, 12)
    b.writeUInt16BE(o.vlan & 0x0fff, 14)
  }
  b.writeUInt16BE(o.type, 12 + tag)
  return Buffer.concat([b, payload])
}

export interface ArpOpts {
  op: number
  sha: string
  spa: string
  tha?: string
  tpa: string
  hrd?: number
  pro?: number
  hln?: number
  pln?: number
}

/** Ethernet/IPv4 ARP body (28 bytes). */
export function arp(o: ArpOpts): Buffer {
  const b = Buffer.alloc(28)
  b.writeUInt16BE(o.hrd ?? 1, 0)
  b.writeUInt16BE(o.pro ?? ETH_P_IP, 2)
  b[4] = o.hln ?? 6
  b[5] = o.pln ?? 4
  b.writeUInt16BE(o.op, 6)
  mac(o.sha).copy(b, 8)
  ip4(o.spa).copy(b, 14)
  mac(o.tha ?? '00:00:00:00:00:00').copy(b, 18)
  ip4(o.tpa).copy(b, 24)
  return b
}

export interface Ipv4Opts {
  src: string
  dst: string
  proto: number
  ttl?: number
  tos?: number
  id?: number
  df?: boolean
  mf?: boolean
  /** Fragment offset in 8-byte units. */
  fragOffset?: number
  /** Raw option bytes, padded with EOL (0) to a multiple of 4. */
  options?: Buffer
  /** Overrides for malformed headers. */
  version?: number
  ihl?: number
  totLen?: number
  checksum?: number
}

export function ipv4(o: Ipv4Opts, payload: Buffer = Buffer.alloc(0)): Buffer {
  const optLen = o.options ? Math.ceil(o.options.length / 4) * 4 : 0
  const hlen = 20 + optLen
  const h = Buffer.alloc(hlen)
  h[0] = ((o.version ?? 4) << 4) | ((o.ihl ?? hlen / 4) & 0x0f)
  h[1] = o.tos ?? 0
  h.writeUInt16BE(o.totLen ?? hlen + payload.length, 2)
  h.writeUInt16BE(o.id ?? 0x1234, 4)
  h.writeUInt16BE((o.df ? 0x4000 : 0) | (o.mf ? 0x2000 : 0) | ((o.fragOffset ?? 0) & 0x1fff), 6)
  h[8] = o.ttl ?? 64
  h[9] = o.proto
  ip4(o.src).copy(h, 12)
  ip4(o.dst).copy(h, 16)
  o.options?.copy(h, 20)
  // Checksum over the header as built (ihl override or not: the real bytes).
  h.writeUInt16BE(o.checksum ?? inetChecksum(h), 10)
  return Buffer.concat([h, payload])
}

export interface UdpOpts {
  sport: number
  dport: number
  /** For the checksum's pseudo-header; without them the checksum is 0 (none). */
  src?: string
  dst?: string
}

export function udp(o: UdpOpts, payload: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(8 + payload.length)
  b.writeUInt16BE(o.sport, 0)
  b.writeUInt16BE(o.dport, 2)
  b.writeUInt16BE(b.length, 4)
  payload.copy(b, 8)
  if (o.src && o.dst) b.writeUInt16BE(l4Checksum(o.src, o.dst, IPPROTO_UDP, b), 6)
  return b
}

export interface TcpOpts {
  sport: number
  dport: number
  seq?: number
  ack?: number
  /** Flag bits: FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10. */
  flags?: number
  window?: number
  /** Raw TCP options, padded to a multiple of 4. */
  options?: Buffer
  src?: string
  dst?: string
}

export function tcp(o: TcpOpts, payload: Buffer = Buffer.alloc(0)): Buffer {
  const optLen = o.options ? Math.ceil(o.options.length / 4) * 4 : 0
  const hlen = 20 + optLen
  const b = Buffer.alloc(hlen + payload.length)
  b.writeUInt16BE(o.sport, 0)
  b.writeUInt16BE(o.dport, 2)
  b.writeUInt32BE(o.seq ?? 1, 4)
  b.writeUInt32BE(o.ack ?? 0, 8)
  b[12] = (hlen / 4) << 4
  b[13] = o.flags ?? 0x02
  b.writeUInt16BE(o.window ?? 65535, 14)
  o.options?.copy(b, 20)
  payload.copy(b, hlen)
  if (o.src && o.dst) b.writeUInt16BE(l4Checksum(o.src, o.dst, IPPROTO_TCP, b), 16)
  return b
}

export interface IcmpOpts {
  type: number
  code?: number
  /** Echo identifier/sequence (the 4 "rest of header" bytes). */
  id?: number
  seq?: number
}

export function icmp(o: IcmpOpts, payload: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(8 + payload.length)
  b[0] = o.type
  b[1] = o.code ?? 0
  b.writeUInt16BE(o.id ?? 1, 4)
  b.writeUInt16BE(o.seq ?? 1, 6)
  payload.copy(b, 8)
  b.writeUInt16BE(inetChecksum(b), 2)
  return b
}

/** The I flag (first byte of the VXLAN header): the VNI is valid. */
export const VXLAN_F_I = 0x08
/** VXLAN header length. */
export const VXLAN_HLEN = 8
/** What VXLAN adds in front of an inner Ethernet frame: outer IPv4 (no options) + UDP + VXLAN + inner Ethernet. */
export const VXLAN_ENCAP_LEN = 20 + 8 + VXLAN_HLEN + ETH_HLEN

/** flags (first byte; default the I flag), 3 reserved bytes, VNI (3 bytes), 1 reserved byte. */
export function vxlanHeader(vni: number, flags = VXLAN_F_I): Buffer {
  const b = Buffer.alloc(VXLAN_HLEN)
  b[0] = flags
  b.writeUIntBE(vni & 0xffffff, 4, 3)
  return b
}

export interface VxlanOuterOpts {
  ethSrc?: string
  ethDst?: string
  src: string
  dst: string
  vni: number
  sport?: number
  dport?: number
  /** First byte of the VXLAN header (default the I flag alone). */
  vxlanFlags?: number
  /** Outer IPv4 fields (defaults: TTL 64, DF, tos 0, no options, UDP). */
  tos?: number
  ttl?: number
  id?: number
  df?: boolean
  mf?: boolean
  fragOffset?: number
  options?: Buffer
  proto?: number
  version?: number
  totLen?: number
  checksum?: number
}

/** Outer Ethernet + IPv4 + UDP (checksum 0, as the kernel sends) + VXLAN around an inner Ethernet frame. */
export function vxlanFrame(o: VxlanOuterOpts, inner: Buffer): Buffer {
  const u = udp({ sport: o.sport ?? 49152, dport: o.dport ?? VXLAN_PORT }, Buffer.concat([vxlanHeader(o.vni, o.vxlanFlags), inner]))
  return eth(
    { src: o.ethSrc, dst: o.ethDst, type: ETH_P_IP },
    ipv4(
      {
        src: o.src,
        dst: o.dst,
        proto: o.proto ?? IPPROTO_UDP,
        ttl: o.ttl ?? 64,
        df: o.df ?? true,
        tos: o.tos,
        id: o.id,
        mf: o.mf,
        fragOffset: o.fragOffset,
        options: o.options,
        version: o.version,
        totLen: o.totLen,
        checksum: o.checksum,
      },
      u,
    ),
  )
}

export function payloadBytes(n: number, seed = 0): Buffer {
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed) & 0xff
  return b
}

export type L4Kind = 'udp' | 'tcp' | 'icmp'

export interface Ipv4FrameOpts extends Omit<Ipv4Opts, 'proto'> {
  ethSrc?: string
  ethDst?: string
  /** Default udp. */
  l4?: L4Kind
  sport?: number
  dport?: number
  icmpType?: number
  /** L4 payload length (default 32). */
  payloadLen?: number
  /** Total frame length: pads the L4 payload so the frame is exactly this long. */
  frameLen?: number
  proto?: number
}

/** A complete Ethernet/IPv4/{UDP,TCP,ICMP} frame with valid checksums. */
export function ipv4Frame(o: Ipv4FrameOpts): Buffer {
  const l4 = o.l4 ?? 'udp'
  const optLen = o.options ? Math.ceil(o.options.length / 4) * 4 : 0
  const l4h = l4 === 'tcp' ? 20 : 8
  const plen = o.frameLen !== undefined ? o.frameLen - ETH_HLEN - 20 - optLen - l4h : (o.payloadLen ?? 32)
  if (plen < 0) throw new Error(`frameLen ${o.frameLen} too small`)
  const pl = payloadBytes(plen)
  let seg: Buffer
  let proto: number
  if (l4 === 'udp') {
    seg = udp({ sport: o.sport ?? 40000, dport: o.dport ?? 53, src: o.src, dst: o.dst }, pl)
    proto = IPPROTO_UDP
  } else if (l4 === 'tcp') {
    seg = tcp({ sport: o.sport ?? 40000, dport: o.dport ?? 80, src: o.src, dst: o.dst }, pl)
    proto = IPPROTO_TCP
  } else {
    seg = icmp({ type: o.icmpType ?? 8 }, pl)
    proto = IPPROTO_ICMP
  }
  return eth({ src: o.ethSrc, dst: o.ethDst, type: ETH_P_IP }, ipv4({ ...o, proto: o.proto ?? proto }, seg))
}

/** Ethernet/ARP frame. Default: a request, broadcast. */
export function arpFrame(o: Partial<ArpOpts> & { spa: string; tpa: string; sha: string; ethSrc?: string; ethDst?: string }): Buffer {
  return eth({ src: o.ethSrc ?? o.sha, dst: o.ethDst ?? BROADCAST_MAC, type: ETH_P_ARP }, arp({ op: 1, ...o }))
}

// ---- parsers ----

export interface EthHeader {
  dst: string
  src: string
  type: number
  payload: Buffer
}

export function parseEth(b: Buffer): EthHeader {
  if (b.length < ETH_HLEN) throw new Error(`frame of ${b.length} bytes has no Ethernet header`)
  return { dst: macStr(b, 0), src: macStr(b, 6), type: b.readUInt16BE(12), payload: b.subarray(ETH_HLEN) }
}

export interface ArpPacket {
  hrd: number
  pro: number
  hln: number
  pln: number
  op: number
  sha: string
  spa: string
  tha: string
  tpa: string
}

export function parseArp(b: Buffer): ArpPacket {
  if (b.length < 28) throw new Error(`ARP body of ${b.length} bytes`)
  return {
    hrd: b.readUInt16BE(0),
    pro: b.readUInt16BE(2),
    hln: b[4]!,
    pln: b[5]!,
    op: b.readUInt16BE(6),
    sha: macStr(b, 8),
    spa: ip4Str(b, 14),
    tha: macStr(b, 18),
    tpa: ip4Str(b, 24),
  }
}

export interface Ipv4Packet {
  version: number
  ihl: number
  tos: number
  totLen: number
  id: number
  df: boolean
  mf: boolean
  fragOffset: number
  ttl: number
  proto: number
  checksum: number
  src: string
  dst: string
  options: Buffer
  /** Bytes after the header, up to totLen. */
  payload: Buffer
  /** The stored checksum verifies. */
  checksumValid: boolean
}

export function parseIpv4(b: Buffer): Ipv4Packet {
  if (b.length < 20) throw new Error(`IPv4 header of ${b.length} bytes`)
  const ihl = b[0]! & 0x0f
  const hlen = ihl * 4
  const totLen = b.readUInt16BE(2)
  const frag = b.readUInt16BE(6)
  return {
    version: b[0]! >> 4,
    ihl,
    tos: b[1]!,
    totLen,
    id: b.readUInt16BE(4),
    df: (frag & 0x4000) !== 0,
    mf: (frag & 0x2000) !== 0,
    fragOffset: frag & 0x1fff,
    ttl: b[8]!,
    proto: b[9]!,
    checksum: b.readUInt16BE(10),
    src: ip4Str(b, 12),
    dst: ip4Str(b, 16),
    options: b.subarray(20, hlen),
    payload: b.subarray(hlen, Math.min(totLen, b.length)),
    checksumValid: hlen >= 20 && hlen <= b.length && ipv4HeaderValid(b),
  }
}

export interface UdpDatagram {
  sport: number
  dport: number
  len: number
  checksum: number
  payload: Buffer
}

export function parseUdp(b: Buffer): UdpDatagram {
  return { sport: b.readUInt16BE(0), dport: b.readUInt16BE(2), len: b.readUInt16BE(4), checksum: b.readUInt16BE(6), payload: b.subarray(8) }
}

export interface TcpSegment {
  sport: number
  dport: number
  seq: number
  ack: number
  doff: number
  flags: number
  checksum: number
  payload: Buffer
}

export function parseTcp(b: Buffer): TcpSegment {
  const doff = b[12]! >> 4
  return {
    sport: b.readUInt16BE(0),
    dport: b.readUInt16BE(2),
    seq: b.readUInt32BE(4),
    ack: b.readUInt32BE(8),
    doff,
    flags: b[13]!,
    checksum: b.readUInt16BE(16),
    payload: b.subarray(doff * 4),
  }
}

/** Parses an Ethernet/IPv4 frame; throws if it is not one. */
export function parseIpv4Frame(frame: Buffer): { eth: EthHeader; ip: Ipv4Packet } {
  const e = parseEth(frame)
  if (e.type !== ETH_P_IP) throw new Error(`ethertype 0x${e.type.toString(16)} is not IPv4`)
  return { eth: e, ip: parseIpv4(e.payload) }
}

/** Verifies the L4 checksum of a parsed IPv4 packet (UDP 0 = none). */
export function l4ChecksumValid(ip: Ipv4Packet): boolean {
  if (ip.proto === IPPROTO_ICMP) return onesSum(ip.payload) === 0xffff
  if (ip.proto === IPPROTO_UDP && ip.payload.readUInt16BE(6) === 0) return true
  if (ip.proto !== IPPROTO_UDP && ip.proto !== IPPROTO_TCP) throw new Error(`no L4 checksum for protocol ${ip.proto}`)
  return onesSum(ip.payload, 0, ip.payload.length, pseudoHeaderSum(ip4(ip.src), ip4(ip.dst), ip.proto, ip.payload.length)) === 0xffff
}

export interface VxlanHeader {
  /** First byte: flags (I = 0x08). */
  flags: number
  /** The three reserved bytes after the flags. */
  reserved1: number
  vni: number
  /** The reserved byte after the VNI. */
  reserved2: number
}

export function parseVxlan(b: Buffer): VxlanHeader {
  if (b.length < VXLAN_HLEN) throw new Error(`VXLAN header of ${b.length} bytes`)
  return { flags: b[0]!, reserved1: b.readUIntBE(1, 3), vni: b.readUIntBE(4, 3), reserved2: b[7]! }
}

/** Parses Ethernet/IPv4/UDP/VXLAN; `inner` is the encapsulated Ethernet frame (to the end of the buffer). */
export function parseVxlanFrame(frame: Buffer): { eth: EthHeader; ip: Ipv4Packet; udp: UdpDatagram; vxlan: VxlanHeader; inner: Buffer } {
  const { eth: e, ip } = parseIpv4Frame(frame)
  if (ip.proto !== IPPROTO_UDP) throw new Error(`outer protocol ${ip.proto} is not UDP`)
  const l4 = ETH_HLEN + ip.ihl * 4
  const u = parseUdp(frame.subarray(l4))
  return { eth: e, ip, udp: u, vxlan: parseVxlan(u.payload), inner: frame.subarray(l4 + 8 + VXLAN_HLEN) }
}

/** Offsets of the header boundaries of an Ethernet/IPv4/L4 frame: where truncation tests cut. */
export function headerBoundaries(frame: Buffer): { name: string; at: number }[] {
  const { ip } = parseIpv4Frame(frame)
  const l3 = ETH_HLEN
  const l4 = l3 + ip.ihl * 4
  const l4len = ip.proto === IPPROTO_TCP ? 20 : 8
  return [
    { name: 'the Ethernet header', at: l3 },
    { name: 'the first IPv4 byte', at: l3 + 1 },
    { name: 'the fixed IPv4 header', at: l3 + 19 },
    ...(ip.ihl > 5 ? [{ name: 'the IPv4 options', at: l4 - 1 }] : []),
    { name: 'the IPv4 header', at: l4 },
    { name: 'the L4 ports', at: l4 + 3 },
    { name: 'the L4 header', at: l4 + l4len - 1 },
  ]
}
