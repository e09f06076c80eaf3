// Proof that a setup forwards traffic the way it claims to, so a broken
// reference can never look fast: reachability, full-MTU packets without
// fragmentation, packet and byte counters on the underlay, and
// whether the nodes' kernels routed the packets (kernel setups) or not
// (limit and podnet, where BPF redirects bypass IP forwarding).
import { exec, sleep, type Result } from './exec.js'
import { forwardedDatagrams, inNs, link } from './netns.js'
import type { Setup } from './setups.js'

export interface ForwardCheck {
  problems: string[]
  /** deltas over a burst of `burst` pings */
  burst: number
  underlayTx: number
  /** underlay bytes per echo request sent: ≥ ENCAP_PING_BYTES when encapsulated */
  underlayBytesPerPing: number
  kernelForwarded: [number, number]
}

const BURST = 50
/** a default ping on the wire: Ethernet 14 + IPv4 20 + ICMP 8 + 56 payload */
const PING_FRAME = 98
/** the same inside VXLAN: + outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14 */
export const ENCAP_PING_BYTES = PING_FRAME + 50

async function ping(ns: string, dst: string, args: string[]): Promise<Result> {
  return exec(inNs(ns, ['ping', '-n', '-q', '-W', '1', ...args, dst]), { allowFail: true, timeoutMs: 20_000 })
}

const received = (r: Result): number => Number(/(\d+) (?:packets )?received/.exec(r.stdout)?.[1] ?? 0)

export async function verifyForwarding(s: Setup): Promise<ForwardCheck> {
  const problems: string[] = []
  // first packets may wait for ARP / neighbour resolution: a few tries
  let up = false
  for (let i = 0; i < 10 && !up; i++) {
    up = received(await ping(s.client, s.serverIp, ['-c', '1'])) === 1
    if (!up) await sleep(200)
  }
  if (!up) {
    problems.push(`${s.clientIp} cannot ping ${s.serverIp}`)
    return { problems, burst: BURST, underlayTx: 0, underlayBytesPerPing: 0, kernelForwarded: [0, 0] }
  }

  const [n1, n2] = s.nodes
  const l0 = link(n1, 'eth0')
  const f0 = [forwardedDatagrams(n1), forwardedDatagrams(n2)]
  const burst = await ping(s.client, s.serverIp, ['-c', String(BURST), '-i', '0.002'])
  const l1 = link(n1, 'eth0')
  const f1 = [forwardedDatagrams(n1), forwardedDatagrams(n2)]

  const got = received(burst)
  if (got < BURST) problems.push(`only ${got}/${BURST} echo replies`)
  const underlayTx = l1.txPackets - l0.txPackets
  if (underlayTx < BURST)
    problems.push(`underlay eth0 on ${n1} sent ${underlayTx} packets for ${BURST} pings: traffic does not cross the underlay`)
  // podnet encapsulates in BPF, so no device counter proves VXLAN: the
  // bytes on the wire do (each echo grows by the 50-byte VXLAN overhead)
  const underlayBytesPerPing = (l1.txBytes - l0.txBytes) / BURST
  if (s.encapsulated && underlayBytesPerPing < ENCAP_PING_BYTES)
    problems.push(
      `underlay eth0 on ${n1} sent ${underlayBytesPerPing.toFixed(0)} bytes per ping, under the ${ENCAP_PING_BYTES} of a VXLAN-encapsulated one: traffic is not encapsulated`,
    )
  if (!s.encapsulated && underlayBytesPerPing >= ENCAP_PING_BYTES)
    problems.push(
      `underlay eth0 on ${n1} sent ${underlayBytesPerPing.toFixed(0)} bytes per ping: traffic looks encapsulated in a direct setup`,
    )
  const fwd: [number, number] = [f1[0]! - f0[0]!, f1[1]! - f0[1]!]
  if (s.kernelForwards && (fwd[0] < BURST || fwd[1] < BURST))
    problems.push(`kernel forwarded ${fwd.join('/')} datagrams on the nodes for ${BURST} pings: expected the kernel router path`)
  if (!s.kernelForwards && (fwd[0] >= BURST / 2 || fwd[1] >= BURST / 2))
    problems.push(`kernel forwarded ${fwd.join('/')} datagrams on the nodes: traffic bypassed the BPF datapath`)

  // a full-MTU packet with DF set must pass unfragmented
  const big = await ping(s.client, s.serverIp, ['-c', '2', '-M', 'do', '-s', String(s.mtu - 28)])
  if (received(big) < 1) problems.push(`a ${s.mtu}-byte DF packet (the client MTU) does not get through`)

  return { problems, burst: BURST, underlayTx, underlayBytesPerPing, kernelForwarded: fwd }
}

/** Capture up to `count` packets matching `filter` on node1's underlay while
 * `trigger` runs; returns tcpdump's one-line summaries. */
export async function captureUnderlay(
  s: Setup,
  filter: string,
  count: number,
  trigger: () => Promise<unknown>,
  timeoutMs = 8_000,
): Promise<string[]> {
  const cap = exec(inNs(s.nodes[0], ['tcpdump', '-i', 'eth0', '-nn', '-l', '-c', String(count), filter]), {
    allowFail: true,
    timeoutMs,
  })
  await sleep(700) // tcpdump attaching
  await trigger()
  const r = await cap
  return r.stdout.split('\n').filter((l) => l.trim() !== '')
}
