// Lab planning: names, addresses and subnets of a lab, before anything is created.
import { describe, expect, it } from 'vitest'
import { defaultRoutedNodes, planLab, planNamespaces, validateLabName } from '../../src/services/lab/plan.js'
import { AgentRequestSchema } from '../../src/services/lab/agent-request.js'

describe('planLab', () => {
  it('plans three nodes with two pods each by default, one behind the router in auto mode', () => {
    const p = planLab({})
    expect(p.nodes.map((n) => [n.name, n.ip, n.subnet, n.podCidr])).toEqual([
      ['node1', '192.168.77.1', 'a', '10.244.1.0/24'],
      ['node2', '192.168.77.2', 'a', '10.244.2.0/24'],
      ['node3', '192.168.88.3', 'b', '10.244.3.0/24'],
    ])
    expect(p.routerNs).toBe('pnlab-demo-router')
    expect(p.nodes[0]!.pods.map((x) => [x.name, x.ip, x.ns])).toEqual([
      ['node1-pod1', '10.244.1.10', 'pnlab-demo-node1-pod1'],
      ['node1-pod2', '10.244.1.11', 'pnlab-demo-node1-pod2'],
    ])
    expect(p.nodes[0]!.pinDir).toBe('/sys/fs/bpf/pnlab-demo-node1')
  })

  it('has no router in direct or vxlan mode unless asked, and refuses routed nodes in direct mode', () => {
    expect(planLab({ mode: 'vxlan', nodes: 4 }).routerNs).toBeNull()
    expect(defaultRoutedNodes('auto', 6)).toBe(2)
    expect(defaultRoutedNodes('auto', 1)).toBe(0)
    expect(() => planLab({ mode: 'direct', routedNodes: 1 })).toThrow(/direct mode cannot reach/)
  })

  it.each([
    [{ nodes: 0 }, /--nodes 0 is out of range/],
    [{ nodes: 33 }, /--nodes 33/],
    [{ podsPerNode: 51 }, /--pods-per-node 51/],
    [{ nodes: 2, routedNodes: 3 }, /--routed-nodes 3/],
    [{ name: 'a-b' }, /invalid lab name/],
  ])('refuses %j', (input, msg) => {
    expect(() => planLab(input)).toThrow(msg)
  })

  it('lists every namespace, underlay first', () => {
    const ns = planNamespaces(planLab({ name: 'x', nodes: 1, podsPerNode: 1, mode: 'vxlan' }))
    expect(ns).toEqual(['pnlab-x-underlay', 'pnlab-x-node1', 'pnlab-x-node1-pod1'])
  })

  it('takes lab names no other lab name can start with', () => {
    expect(validateLabName('lab2')).toBe('lab2')
    expect(() => validateLabName('Lab')).toThrow()
  })
})

describe('the lab node agent request', () => {
  const setup = {
    op: 'setup',
    nodeNs: 'pnlab-x-node1',
    pinDir: '/sys/fs/bpf/pnlab-x-node1',
    nodeIp: '192.168.77.1',
    podCidr: '10.244.1.0/24',
    device: 'eth0',
    mode: 'vxlan',
    podDevice: 'veth',
    pods: [{ ns: 'pnlab-x-node1-pod1', ip: '10.244.1.10' }],
    routes: [{ cidr: '10.244.2.0/24', nodeIp: '192.168.77.2' }],
  }

  it('parses what lab up sends', () => {
    expect(AgentRequestSchema.parse(setup)).toEqual(setup)
    const detach = { op: 'detach', nodeNs: 'x', pinDir: '/sys/fs/bpf/x', podDevice: 'veth', pods: setup.pods }
    expect(AgentRequestSchema.parse(detach)).toEqual(detach)
  })

  it.each([
    [{ ...setup, mode: 'tunnel' }, 'mode'],
    [{ ...setup, pods: [{ ns: 'a' }] }, 'ip'],
    [{ ...setup, nodeNs: undefined }, 'nodeNs'],
    [{ ...setup, extra: 1 }, 'extra'],
    [{ op: 'reboot', pinDir: '/x' }, 'op'],
  ])('refuses a malformed request (%#: %s)', (req, key) => {
    const r = AgentRequestSchema.safeParse(req)
    expect(r.success).toBe(false)
    expect(JSON.stringify(r.error?.issues)).toContain(key)
  })
})
