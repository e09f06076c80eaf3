// SPDX-License-Identifier: Apache-2.0
// The test packet builder (test/support/packet.ts) against known vectors:
// the BPF tests' checksum assertions are only as good as these.

import { describe, expect, it } from 'vitest'
import {
  ETH_HLEN,
  IPPROTO_UDP,
  arpFrame,
  headerBoundaries,
  inetChecksum,
  ipv4,
  ipv4Frame,
  ipv4HeaderChecksum,
  l4ChecksumValid,
  parseArp,
  parseEth,
  parseIpv4Frame,
  parseUdp,
  parseVxlanFrame,
  udp,
  vxlanFrame,
} from '../support/packet.js'

describe('test packet builder', () => {
  it('computes the IPv4 header checksum of a textbook header (0xb861)', () => {
    const h = Buffer.from('450000730000400040110000c0a80001c0a800c7', 'hex')
    expect(inetChecksum(h)).toBe(0xb861)
    expect(ipv4HeaderChecksum(Buffer.from('45000073000040004011b861c0a80001c0a800c7', 'hex'))).toBe(0xb861)
  })

  it('computes the RFC 1071 example sum', () => {
    // RFC 1071 §3: 0001 f203 f4f5 f6f7 sums to 0xddf2 → checksum 0x220d.
    expect(inetChecksum(Buffer.from('0001f203f4f5f6f7', 'hex'))).toBe(0x220d)
  })

  it('checksums an odd-length buffer as if padded with a zero byte', () => {
    expect(inetChecksum(Buffer.from([0x12, 0x34, 0x56]))).toBe(inetChecksum(Buffer.from([0x12, 0x34, 0x56, 0])))
  })

  it('builds an IPv4 header with options, fragment fields and a valid checksum', () => {
    const p = ipv4(
      {
        src: '10.0.0.1',
        dst: '10.0.0.2',
        proto: IPPROTO_UDP,
        ttl: 9,
        mf: true,
        fragOffset: 100,
        df: true,
        options: Buffer.from([1, 1, 1]),
      },
      Buffer.alloc(8),
    )
    const f = parseIpv4Frame(Buffer.concat([Buffer.alloc(12), Buffer.from([8, 0]), p]))
    expect(f.ip).toMatchObject({ version: 4, ihl: 6, ttl: 9, mf: true, df: true, fragOffset: 100, totLen: 32, checksumValid: true })
  })

  it('builds UDP and TCP segments whose checksums verify, and UDP without addresses has none', () => {
    for (const l4 of ['udp', 'tcp', 'icmp'] as const) {
      const { ip } = parseIpv4Frame(ipv4Frame({ src: '10.0.0.1', dst: '10.0.0.2', l4, payloadLen: 33 }))
      expect(l4ChecksumValid(ip), l4).toBe(true)
    }
    expect(parseUdp(udp({ sport: 1, dport: 2 }, Buffer.alloc(3))).checksum).toBe(0)
  })

  it('pads a frame to an exact length', () => {
    expect(ipv4Frame({ src: '10.0.0.1', dst: '10.0.0.2', l4: 'tcp', frameLen: 1514 }).length).toBe(1514)
  })

  it('builds an ARP request and parses it back', () => {
    const f = arpFrame({ sha: '02:00:00:00:00:01', spa: '10.0.0.1', tpa: '10.0.0.254' })
    expect(parseEth(f)).toMatchObject({ dst: 'ff:ff:ff:ff:ff:ff', src: '02:00:00:00:00:01', type: 0x0806 })
    expect(parseArp(parseEth(f).payload)).toEqual({
      hrd: 1,
      pro: 0x0800,
      hln: 6,
      pln: 4,
      op: 1,
      sha: '02:00:00:00:00:01',
      spa: '10.0.0.1',
      tha: '00:00:00:00:00:00',
      tpa: '10.0.0.254',
    })
  })

  it('wraps an inner frame in outer IPv4/UDP 4789/VXLAN with the VNI', () => {
    const inner = ipv4Frame({ src: '10.1.0.1', dst: '10.2.0.1' })
    const f = vxlanFrame({ src: '192.168.0.1', dst: '192.168.0.2', vni: 0x123456 }, inner)
    const { ip } = parseIpv4Frame(f)
    const u = parseUdp(ip.payload)
    expect(u.dport).toBe(4789)
    expect(u.payload.readUIntBE(4, 3)).toBe(0x123456)
    expect(u.payload.subarray(8).equals(inner)).toBe(true)
    expect(f.length).toBe(inner.length + 50)
  })

  it('builds a VXLAN frame with outer header, port and flag overrides and parses it back', () => {
    const inner = ipv4Frame({ src: '10.1.0.1', dst: '10.2.0.1' })
    const f = vxlanFrame(
      {
        src: '192.168.0.1',
        dst: '192.168.0.2',
        vni: 0xabcdef,
        sport: 1234,
        dport: 8472,
        vxlanFlags: 0x0c,
        tos: 3,
        ttl: 5,
        df: false,
        mf: true,
        fragOffset: 7,
      },
      inner,
    )
    expect(f.subarray(ETH_HLEN + 28, ETH_HLEN + 36).toString('hex')).toBe('0c000000abcdef00')
    const v = parseVxlanFrame(f)
    expect(v.ip).toMatchObject({
      version: 4,
      ihl: 5,
      tos: 3,
      ttl: 5,
      df: false,
      mf: true,
      fragOffset: 7,
      proto: IPPROTO_UDP,
      totLen: f.length - ETH_HLEN,
      checksumValid: true,
    })
    expect(v.udp).toMatchObject({ sport: 1234, dport: 8472, len: f.length - ETH_HLEN - 20, checksum: 0 })
    expect(v.vxlan).toEqual({ flags: 0x0c, reserved1: 0, vni: 0xabcdef, reserved2: 0 })
    expect(v.inner.equals(inner)).toBe(true)
  })

  it('keeps the VXLAN defaults without overrides: TTL 64, DF, ID 0x1234, the I flag alone', () => {
    const v = parseVxlanFrame(
      vxlanFrame({ src: '192.168.0.1', dst: '192.168.0.2', vni: 1 }, ipv4Frame({ src: '10.1.0.1', dst: '10.2.0.1' })),
    )
    expect(v.ip).toMatchObject({ tos: 0, ttl: 64, df: true, mf: false, fragOffset: 0, id: 0x1234, ihl: 5 })
    expect(v.vxlan).toEqual({ flags: 0x08, reserved1: 0, vni: 1, reserved2: 0 })
  })

  it('lists header boundaries inside the frame', () => {
    const f = ipv4Frame({ src: '10.0.0.1', dst: '10.0.0.2', l4: 'tcp', options: Buffer.alloc(4, 1) })
    const b = headerBoundaries(f)
    expect(b[0]).toEqual({ name: 'the Ethernet header', at: ETH_HLEN })
    expect(b.every((x) => x.at < f.length)).toBe(true)
  })
})
