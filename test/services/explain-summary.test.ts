// explain's one-line summary is a pure function of the deciding reason and
// where the packet goes.
import { describe, expect, it } from 'vitest'
import { summarize } from '../../src/services/inspect/explain.js'
import { Reason } from '../../src/datapath/abi.js'

const nowhere = { pod: null, device: null, ifindex: null, nodeIp: null, vni: null }

describe('summarize', () => {
  it('says where a local delivery goes, naming the device kind', () => {
    const to = { ...nowhere, pod: '10.244.1.10', device: 'veth1', ifindex: 7 }
    expect(summarize({ reason: Reason.FWD_LOCAL, to, dst: '10.244.1.10', kind: 'netkit', hostPath: false })).toBe(
      'delivered to pod 10.244.1.10 on netkit veth1 (ifindex 7)',
    )
  })

  it('names the peer node and VNI of an encapsulation', () => {
    const to = { ...nowhere, device: 'eth0', ifindex: 2, nodeIp: '192.168.88.3', vni: 1 }
    expect(summarize({ reason: Reason.FWD_VXLAN, to, dst: '10.244.3.10', kind: 'veth', hostPath: false })).toBe(
      'encapsulated to node 192.168.88.3 (VNI 1) and sent via eth0',
    )
  })

  it('reports a drop by its reason label', () => {
    const drop = Object.entries(Reason).find(([k]) => k.startsWith('DROP_'))!
    expect(summarize({ reason: drop[1], to: nowhere, dst: '10.0.0.1', kind: 'veth', hostPath: false })).toMatch(/^dropped: /)
  })

  it('tells the host stack path from a plain pass', () => {
    const to = { ...nowhere, device: 'eth0', nodeIp: '192.168.77.2' }
    expect(summarize({ reason: Reason.FWD_STACK, to, dst: '10.244.2.10', kind: 'veth', hostPath: true })).toBe(
      'routed by the host stack to node 192.168.77.2 via eth0',
    )
    expect(summarize({ reason: Reason.FWD_STACK, to: nowhere, dst: '10.244.2.10', kind: 'veth', hostPath: false })).toBe(
      'passed to the host stack',
    )
  })
})
