// The input checks on their own: pure functions over addresses, routes,
// links and files (no root, no namespaces).
import { execFileSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { UserError } from '../../src/errors.js'
import { parseCidr } from '../../src/util/ipv4.js'
import {
  checkCapacity,
  checkEndpointDevice,
  checkEndpointIp,
  checkNodeAddressing,
  checkNodeIpNotPod,
  checkNoForeignRoute,
  checkPeerRoute,
  checkPodCidrFree,
  foreignRoutes,
  jsonDuplicateKey,
  networkAndBroadcast,
  parseDataText,
  readBoundedFile,
  specialAddress,
} from '../../src/services/validate.js'

function refuses(fn: () => unknown, ...fragments: string[]): void {
  let err: unknown
  try {
    fn()
  } catch (e) {
    err = e
  }
  expect(err, 'expected a UserError').toBeInstanceOf(UserError)
  const e = err as UserError
  expect(e.hint, 'a fix').toBeTruthy()
  expect(e.message).not.toContain('\n')
  for (const f of fragments) expect(e.message).toContain(f)
}

const node = { nodeIp: '192.168.77.1', podCidr: '10.244.1.0/24', device: 'eth0' }

describe('addresses that cannot be a node', () => {
  it.each([
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['224.0.0.1', 'multicast'],
    ['239.1.1.1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['250.1.1.1', 'reserved'],
  ])('refuses --node-ip %s', (ip, what) => {
    expect(specialAddress(ip)).toContain(what)
    refuses(() => checkNodeAddressing({ ...node, nodeIp: ip }, 'podnet_vxlan'), ip, what)
  })

  it('accepts ordinary unicast addresses', () => {
    for (const ip of ['192.168.77.1', '10.0.0.1', '1.1.1.1', '169.254.3.3', '223.255.255.254']) expect(specialAddress(ip)).toBeNull()
    expect(() => checkNodeAddressing(node, 'podnet_vxlan')).not.toThrow()
  })

  it('refuses a node IP inside its own pod CIDR', () => {
    refuses(() => checkNodeAddressing({ ...node, nodeIp: '10.244.1.5' }, 'podnet_vxlan'), 'inside the pod CIDR')
  })

  it('refuses pod CIDRs over special blocks or without room for pods', () => {
    refuses(() => checkNodeAddressing({ ...node, podCidr: '127.0.0.0/24' }, 'podnet_vxlan'), '127.0.0.0/8')
    refuses(() => checkNodeAddressing({ ...node, podCidr: '224.0.0.0/24' }, 'podnet_vxlan'), '224.0.0.0/4')
    refuses(() => checkNodeAddressing({ ...node, podCidr: '0.0.0.0/0' }, 'podnet_vxlan'))
    refuses(() => checkNodeAddressing({ ...node, podCidr: '10.244.1.0/31' }, 'podnet_vxlan'), 'no room')
  })

  it('refuses --device lo and our own VXLAN device', () => {
    refuses(() => checkNodeAddressing({ ...node, device: 'lo' }, 'podnet_vxlan'), 'loopback')
    refuses(() => checkNodeAddressing({ ...node, device: 'podnet_vxlan' }, 'podnet_vxlan'), 'VXLAN')
  })

  it("refuses a node IP that is a peer's pod address", () => {
    refuses(() => checkNodeIpNotPod('10.244.2.7', [{ cidr: '10.244.2.0/24' }]), '10.244.2.0/24')
    expect(() => checkNodeIpNotPod('192.168.77.1', [{ cidr: '10.244.2.0/24' }])).not.toThrow()
  })
})

describe('pod CIDR against the routes a node already has', () => {
  const routes = [
    { dst: 'default', gateway: '192.168.77.254', dev: 'eth0' },
    { dst: '192.168.77.0/24', dev: 'eth0', protocol: '2' },
    { dst: '10.50.0.0/24', dev: 'eth0', gateway: '192.168.77.254', protocol: '4' },
    { dst: '10.244.1.10', dev: 'vp1', protocol: '112' },
  ]
  it('ignores routes podnet installed and the default route', () => {
    expect(foreignRoutes(routes, 112).map((r) => r.dst)).toEqual(['default', '192.168.77.0/24', '10.50.0.0/24'])
    expect(() => checkPodCidrFree('10.244.1.0/24', foreignRoutes(routes, 112), [])).not.toThrow()
  })
  it.each([
    ['10.50.0.0/16', '10.50.0.0/24'],
    ['10.50.0.128/25', '10.50.0.0/24'],
    ['192.168.0.0/16', '192.168.77.0/24'],
  ])('refuses %s (overlaps %s)', (pod, route) => {
    refuses(() => checkPodCidrFree(pod, foreignRoutes(routes, 112), []), route)
  })
  it('refuses a pod CIDR overlapping a peer route', () => {
    refuses(() => checkPodCidrFree('10.244.0.0/16', [], [{ cidr: '10.244.2.0/24', nodeIp: '192.168.77.2' }]), 'peer route 10.244.2.0/24')
  })
})

describe("peer routes may not cover the node's own network", () => {
  const me = { nodeIp: '192.168.77.1', subnets: [parseCidr('192.168.77.0/24')] }
  it.each([
    ['192.168.77.0/24', '192.168.77.2', "this node's IP"],
    ['192.168.0.0/16', '10.0.0.2', "this node's IP"],
    ['192.168.77.128/25', '192.168.77.2', 'subnet 192.168.77.0/24'],
    ['10.244.2.0/24', '10.244.2.3', 'its own node IP'],
    ['10.244.2.0/24', '127.0.0.1', 'loopback'],
    ['10.244.2.0/24', '0.0.0.0', 'unspecified'],
    ['10.244.2.0/24', '255.255.255.255', 'broadcast'],
    ['10.244.2.0/24', '224.0.0.5', 'multicast'],
    ['127.0.0.0/24', '192.168.77.2', '127.0.0.0/8'],
    ['0.0.0.0/0', '192.168.77.2', "this node's IP"],
  ])('refuses %s via %s', (cidr, peer, what) => {
    refuses(() => checkPeerRoute(parseCidr(cidr), peer, me), what)
  })
  it('accepts a peer pod CIDR', () => {
    expect(() => checkPeerRoute(parseCidr('10.244.2.0/24'), '192.168.77.2', me)).not.toThrow()
  })
})

describe('kernel routes of other owners are never replaced', () => {
  const foreign = [{ dst: '10.50.0.0/24', dev: 'eth0' }, { dst: '10.244.1.10' }]
  it('refuses the same destination, whatever its spelling', () => {
    refuses(() => checkNoForeignRoute(['10.50.0.0/24'], foreign), '10.50.0.0/24', 'did not install')
    refuses(() => checkNoForeignRoute(['10.244.1.10/32'], foreign), '10.244.1.10/32')
  })
  it('accepts other destinations (more or less specific routes coexist)', () => {
    expect(() => checkNoForeignRoute(['10.50.0.0/25', '10.50.0.0/16', '10.244.1.11/32'], foreign)).not.toThrow()
  })
})

describe('endpoints', () => {
  const nd = { device: 'eth0', deviceIfindex: 2, vxlanIfindex: 5, vxlanName: 'podnet_vxlan' }
  it.each([
    [{ name: 'lo', ifindex: 1, kind: null }, 'loopback'],
    [{ name: 'eth0', ifindex: 2, kind: 'veth' }, 'node device'],
    [{ name: 'podnet_vxlan', ifindex: 5, kind: 'vxlan' }, 'VXLAN'],
    [{ name: 'br0', ifindex: 7, kind: 'bridge' }, 'a bridge'],
    [{ name: 'ens3', ifindex: 8, kind: null }, 'not a veth or netkit'],
  ])('refuses %j', (link, what) => refuses(() => checkEndpointDevice(link, nd), link.name, what))
  it('accepts veth and netkit devices', () => {
    expect(() => checkEndpointDevice({ name: 'vp1', ifindex: 9, kind: 'veth' }, nd)).not.toThrow()
    expect(() => checkEndpointDevice({ name: 'nk1', ifindex: 10, kind: 'netkit' }, nd)).not.toThrow()
  })
  it.each([
    ['10.244.1.0', 'network address'],
    ['10.244.1.255', 'broadcast address'],
    ['10.244.2.5', 'outside'],
  ])('refuses endpoint IP %s', (ip, what) => refuses(() => checkEndpointIp(ip, '10.244.1.0/24'), what))
  it('accepts host addresses, and every address of a /31 or /32', () => {
    expect(() => checkEndpointIp('10.244.1.1', '10.244.1.0/24')).not.toThrow()
    expect(() => checkEndpointIp('10.244.1.254', '10.244.1.0/24')).not.toThrow()
    expect(networkAndBroadcast(parseCidr('10.0.0.0/31'))).toEqual([])
  })
})

describe('capacity', () => {
  it('refuses more entries than the map holds, before any write', () => {
    refuses(() => checkCapacity('routes', 16385, 16384), '16385 routes', '16384')
    expect(() => checkCapacity('routes', 16384, 16384)).not.toThrow()
  })
})

describe('input files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pngd-files-'))
  const f = (name: string, text: string) => {
    const p = join(dir, name)
    writeFileSync(p, text)
    return p
  }
  it('reads a regular file', () => {
    expect(readBoundedFile(f('ok.json', '{"a":1}'), 100, 'config file', 'fix')).toBe('{"a":1}')
  })
  it.each([
    ['/dev/zero', 'not a regular file'],
    ['/dev/null', 'not a regular file'],
    [tmpdir(), 'not a regular file'],
    ['/nonexistent/pngd', 'no such file'],
  ])('refuses %s', (p, what) => refuses(() => readBoundedFile(p, 100, 'config file', 'fix'), what))
  it('refuses a FIFO without blocking on it', () => {
    const p = join(dir, 'fifo')
    execFileSync('mkfifo', [p])
    refuses(() => readBoundedFile(p, 100, 'config file', 'fix'), 'not a regular file')
  })
  it('refuses a file over the size cap', () => {
    refuses(() => readBoundedFile(f('big.json', 'x'.repeat(101)), 100, 'routes file', 'fix'), '101 bytes', '100-byte limit')
  })
  it('refuses binary content', () => {
    refuses(() => readBoundedFile(f('bin', '\0\x01\x02'), 100, 'config file', 'fix'), 'not UTF-8 text')
  })
})

describe('duplicate keys and malformed data', () => {
  it('finds duplicate keys per object, with the line', () => {
    expect(jsonDuplicateKey('{"a":1,\n"b":{"a":2},\n"a":3}')).toEqual({ key: 'a', line: 3 })
    expect(jsonDuplicateKey('[{"cidr":"x"},{"cidr":"y"}]')).toBeNull()
    expect(jsonDuplicateKey('{"a":"\\"a\\":","b":1}')).toBeNull()
    expect(jsonDuplicateKey('{"\\u0061":1,"a":2}')).toEqual({ key: 'a', line: 1 })
  })
  it('refuses duplicate keys in JSON and YAML', () => {
    refuses(() => parseDataText('{"nodeIp":"1.1.1.1","nodeIp":"2.2.2.2"}', 'config file x', 'fix'), 'line 1', 'duplicate key "nodeIp"')
    refuses(() => parseDataText('nodeIp: 1.1.1.1\nnodeIp: 2.2.2.2\n', 'config file x', 'fix'), 'duplicate key')
  })
  it('refuses malformed text with a line number', () => {
    refuses(() => parseDataText('{"nodeIp": "1.1.1.1",\n  "podCidr": [}', 'config file x', 'fix'), 'config file x, line')
  })
  it('parses JSON and YAML to the same value', () => {
    expect(parseDataText('{"a":[1,"b"]}', 's', 'h')).toEqual({ a: [1, 'b'] })
    expect(parseDataText('a:\n  - 1\n  - b\n', 's', 'h')).toEqual({ a: [1, 'b'] })
  })
})
