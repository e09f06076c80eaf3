// An independent two-node topology built with plain iproute2 (not with the
// lab code under test): node namespaces joined by a veth named eth0 on each
// side, pods per the pod contract.
import { must, sh } from './sys.js'

export interface Pod {
  name: string
  ns: string
  ip: string
  hostIf: string
  node: Node
}
export interface Node {
  name: string
  ns: string
  ip: string
  podCidr: string
  pinDir: string
}

export class TwoNodes {
  readonly nodes: Node[]
  readonly pods: Pod[] = []

  constructor(readonly id: string) {
    this.nodes = [1, 2].map((i) => ({
      name: `node${i}`,
      ns: `${id}-n${i}`,
      ip: `192.168.77.${i}`,
      podCidr: `10.244.${i}.0/24`,
      pinDir: `/sys/fs/bpf/${id}-n${i}`,
    }))
  }

  up(): void {
    for (const n of this.nodes) {
      must('ip', ['netns', 'add', n.ns])
      must('ip', ['-n', n.ns, 'link', 'set', 'lo', 'up'])
    }
    const [a, b] = this.nodes as [Node, Node]
    must('ip', ['-n', a.ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', b.ns])
    for (const n of this.nodes) {
      must('ip', ['-n', n.ns, 'addr', 'add', `${n.ip}/24`, 'dev', 'eth0'])
      must('ip', ['-n', n.ns, 'link', 'set', 'eth0', 'up'])
    }
  }

  /** A pod per the contract: netns, veth, one /32, gateway 169.254.1.1. */
  addPod(node: Node, idx: number, mtu: number): Pod {
    const nodeNum = node.ns.slice(-1)
    const p: Pod = {
      name: `pod${nodeNum}${idx}`,
      ns: `${this.id}-p${nodeNum}${idx}`,
      ip: node.podCidr.replace(/0\/24$/, String(10 + idx)),
      hostIf: `vp${nodeNum}${idx}`,
      node,
    }
    must('ip', ['netns', 'add', p.ns])
    must('ip', ['-n', p.ns, 'link', 'set', 'lo', 'up'])
    must('ip', ['netns', 'exec', p.ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1'])
    must('ip', ['-n', node.ns, 'link', 'add', p.hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', p.ns])
    must('ip', ['-n', node.ns, 'link', 'set', p.hostIf, 'up'])
    must('ip', ['-n', p.ns, 'link', 'set', 'eth0', 'mtu', String(mtu), 'up'])
    must('ip', ['-n', p.ns, 'addr', 'add', `${p.ip}/32`, 'dev', 'eth0'])
    must('ip', ['-n', p.ns, 'route', 'add', '169.254.1.1', 'dev', 'eth0', 'scope', 'link'])
    must('ip', ['-n', p.ns, 'route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0'])
    this.pods.push(p)
    return p
  }

  down(): void {
    for (const p of this.pods) sh('ip', ['netns', 'del', p.ns])
    for (const n of this.nodes) sh('ip', ['netns', 'del', n.ns])
  }
}
