// The packet explain sends through a program: Ethernet + IPv4 + ICMP echo,
// TCP SYN or UDP, with valid checksums; and, for arrivals from a VXLAN peer,
// the VXLAN frame that carries it on the wire.
import { ipToBuf, macToBytes } from '../../datapath/abi.js'
import { VXLAN_OVERHEAD } from '../../datapath/netdev.js'
import { z } from '../../util/zod.js'

export const ProtoSchema = z.enum(['icmp', 'tcp', 'udp'])
export type Proto = z.infer<typeof ProtoSchema>
export const PROTO_NUMBER: Record<Proto, number> = { icmp: 1, tcp: 6, udp: 17 }
export const EXPLAIN_SPORT = 40000

export interface PacketSpec {
  srcMac: string
  dstMac: string
  src: string
  dst: string
  proto: Proto
  dport: number
  ttl: number
  /** Total IPv4 length (header + L4 + payload). */
  ipLen: number
}

function csum(b: Buffer, initial = 0): number {
  let s = initial
  for (let i = 0; i + 1 < b.length; i += 2) s += b.readUInt16BE(i)
  if (b.length % 2) s += b[b.length - 1]! << 8
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16)
  return ~s & 0xffff
}

export function l4HeaderLen(p: Proto): number {
  return p === 'tcp' ? 20 : 8
}

/** A frame of Ethernet + option-less IPv4 (DF, header checksum set) with
 * room for ipLen - 20 bytes after the IP header, left zero. */
function ethIpv4(h: { srcMac: string; dstMac: string; src: string; dst: string; ttl: number; protocol: number; ipLen: number }): Buffer {
  const pkt = Buffer.alloc(14 + h.ipLen)
  macToBytes(h.dstMac, pkt, 0)
  macToBytes(h.srcMac, pkt, 6)
  pkt.writeUInt16BE(0x0800, 12)
  const ip = pkt.subarray(14, 34)
  ip[0] = 0x45
  ip.writeUInt16BE(h.ipLen, 2)
  ip.writeUInt16BE(0x4000, 6) // DF
  ip[8] = h.ttl
  ip[9] = h.protocol
  ipToBuf(h.src, ip, 12)
  ipToBuf(h.dst, ip, 16)
  ip.writeUInt16BE(csum(ip), 10)
  return pkt
}

export function buildPacket(s: PacketSpec): Buffer {
  const l4len = s.ipLen - 20
  const pkt = ethIpv4({ ...s, protocol: PROTO_NUMBER[s.proto] })
  const l4 = pkt.subarray(34)
  if (s.proto === 'icmp') {
    l4[0] = 8 // echo request
    l4.writeUInt16BE(0x706e, 4)
    l4.writeUInt16BE(1, 6)
    l4.writeUInt16BE(csum(l4), 2)
    return pkt
  }
  l4.writeUInt16BE(EXPLAIN_SPORT, 0)
  l4.writeUInt16BE(s.dport, 2)
  if (s.proto === 'tcp') {
    l4.writeUInt32BE(1, 4)
    l4[12] = 5 << 4
    l4[13] = 0x02 // SYN
    l4.writeUInt16BE(65535, 14)
  } else {
    l4.writeUInt16BE(l4len, 4)
  }
  const pseudo = Buffer.alloc(12)
  ipToBuf(s.src, pseudo, 0)
  ipToBuf(s.dst, pseudo, 4)
  pseudo[9] = PROTO_NUMBER[s.proto]
  pseudo.writeUInt16BE(l4len, 10)
  const sum = csum(Buffer.concat([pseudo, l4]))
  l4.writeUInt16BE(s.proto === 'udp' && sum === 0 ? 0xffff : sum, s.proto === 'tcp' ? 16 : 6)
  return pkt
}

/** UDP source port of the VXLAN frames explain sends (senders put a flow hash there). */
export const EXPLAIN_VXLAN_SPORT = 50000

export interface VxlanSpec {
  /** outer Ethernet */
  srcMac: string
  dstMac: string
  /** outer IPv4: the sending node → the receiving node */
  src: string
  dst: string
  sport: number
  dport: number
  vni: number
}

/** Wraps an Ethernet frame as a peer node sends it: outer Ethernet, IPv4 (DF,
 * TTL 64, no options), UDP with checksum 0, VXLAN (I flag + VNI), then the
 * frame itself. */
export function buildVxlanFrame(o: VxlanSpec, inner: Buffer): Buffer {
  const ipLen = VXLAN_OVERHEAD - 14 + inner.length
  const pkt = ethIpv4({ ...o, ttl: 64, protocol: PROTO_NUMBER.udp, ipLen })
  const udp = pkt.subarray(34, 42)
  udp.writeUInt16BE(o.sport, 0)
  udp.writeUInt16BE(o.dport, 2)
  udp.writeUInt16BE(ipLen - 20, 4) // checksum 0, as Linux VXLAN sends over IPv4
  pkt.writeUInt32BE(0x08000000, 42) // I flag: the VNI is valid
  pkt.writeUInt32BE((o.vni << 8) >>> 0, 46)
  inner.copy(pkt, 50)
  return pkt
}
