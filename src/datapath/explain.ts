// Explain mode of the programs, as BPF_PROG_TEST_RUN sees it: the ctx is a
// struct __sk_buff whose cb[] carries the request in and the decision out.
// The explain service and the packet-level test harness both use this.
import { EXPLAIN_F_TUNNEL, EXPLAIN_MAGIC0, EXPLAIN_MAGIC1, ipToBuf } from './abi.js'

/** struct __sk_buff (linux/bpf.h) offsets used in a test-run ctx. */
export const SkbLayout = { size: 192, ifindex: 40, cb: 48, gsoSegs: 164, gsoSize: 176 } as const

export interface ExplainCtxOptions {
  /** the device the packet arrives on */
  ifindex: number
  /** explain mode (else a counted run: cb[] stays zero) */
  explain: boolean
  /** from_overlay: the tunnel key the VXLAN device would have received */
  tunnel?: { remote: string; vni: number }
  /** makes the skb a GSO skb with this segment size */
  gso?: { size: number; segs: number }
}

/** cb[0..1] = magic words (explain mode on); cb[2..4] = tunnel key (remote IP in network order, VNI, flag). */
export function encodeExplainCtx(o: ExplainCtxOptions): Buffer {
  const c = Buffer.alloc(SkbLayout.size)
  c.writeUInt32LE(o.ifindex, SkbLayout.ifindex)
  if (o.explain) {
    c.writeUInt32LE(EXPLAIN_MAGIC0, SkbLayout.cb)
    c.writeUInt32LE(EXPLAIN_MAGIC1, SkbLayout.cb + 4)
    if (o.tunnel) {
      c.writeUInt32LE(ipToBuf(o.tunnel.remote).readUInt32LE(0), SkbLayout.cb + 8)
      c.writeUInt32LE(o.tunnel.vni, SkbLayout.cb + 12)
      c.writeUInt32LE(EXPLAIN_F_TUNNEL, SkbLayout.cb + 16)
    }
  }
  if (o.gso) {
    c.writeUInt32LE(o.gso.segs, SkbLayout.gsoSegs)
    c.writeUInt32LE(o.gso.size, SkbLayout.gsoSize)
  }
  return c
}

/** cb[0..4] of ctx_out: cb[0] echoes the verdict, then reason, redirect target, peer node IP, VNI. */
export function explainCb(ctxOut: Buffer): number[] {
  return [0, 1, 2, 3, 4].map((i) => ctxOut.readUInt32LE(SkbLayout.cb + 4 * i))
}

export interface ExplainDecision {
  verdict: number
  reason: number
  target: number
  /** peer node IP ('0.0.0.0' when none) */
  nodeIp: string
  vni: number
  /** the program answered in explain mode (cb[0] echoes its verdict) */
  answered: boolean
}

export function decodeExplainDecision(retval: number, ctxOut: Buffer): ExplainDecision {
  const cb = explainCb(ctxOut)
  const ip = Buffer.alloc(4)
  ip.writeUInt32LE(cb[3]!)
  return {
    verdict: retval,
    reason: cb[1]!,
    target: cb[2]!,
    nodeIp: [...ip].join('.'),
    vni: cb[4]!,
    answered: cb[0] === retval >>> 0,
  }
}
