// The CNI plugin executed directly, as a runtime does: every verb and the
// error paths of the spec (codes), against real nodes in namespaces.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { podHostIfName } from '../../src/datapath/pod.js'
import { cliJson, kernelHasNetkit, must, runId, sh } from '../support/sys.js'
import { removeHookProgram } from '../support/hooks.js'
import { ping } from '../support/traffic.js'
import { CniLab, linksIn, type CniNode } from './harness.js'

const lab = new CniLab(runId('pncni-'), 2)
let n1: CniNode
let n2: CniNode

beforeAll(() => {
  lab.up()
  ;[n1, n2] = lab.nodes as [CniNode, CniNode]
})
afterAll(() => lab.down())

function endpoints(n: CniNode): { ip: string; ifname: string | null; ifindex: number }[] {
  return cliJson(n.ns, ['endpoints', 'list', '--pin-dir', n.pinDir], lab.env)
}

function records(): string[] {
  return sh('find', [join(lab.stateDir, 'cni'), '-name', '*.json'])
    .stdout.split('\n')
    .filter(Boolean)
}

describe('environment and network config errors', () => {
  it('answers VERSION with 1.0.0 and 1.1.0', () => {
    const r = lab.cni(n1, 'VERSION', {}, '{"cniVersion":"1.0.0"}')
    expect(r.status).toBe(0)
    expect(r.json).toEqual({ cniVersion: '1.1.0', supportedVersions: ['1.0.0', '1.1.0'] })
  })

  it('rejects missing CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS and CNI_PATH with code 4', () => {
    const conf = lab.conf(n1)
    const noCmd = lab.cni(n1, '', {}, conf)
    expect(noCmd.status).not.toBe(0)
    expect(noCmd.json).toMatchObject({ code: 4, msg: expect.stringMatching(/CNI_COMMAND/) })
    const netns = lab.podNs('env')
    expect(lab.cni(n1, 'ADD', { netns }, conf).json).toMatchObject({ code: 4, msg: expect.stringMatching(/CNI_CONTAINERID is not set/) })
    expect(lab.cni(n1, 'ADD', { containerId: 'c-env' }, conf).json).toMatchObject({ code: 4, msg: expect.stringMatching(/CNI_NETNS/) })
    expect(lab.cni(n1, 'ADD', { containerId: 'c-env', netns, path: '' }, conf).json).toMatchObject({
      code: 4,
      msg: expect.stringMatching(/CNI_PATH/),
    })
    expect(lab.cni(n1, 'ADD', { containerId: 'c-env', netns, args: 'novalue' }, conf).json).toMatchObject({ code: 4 })
    expect(lab.allocated()).toEqual([])
  })

  it('answers broken network configs with codes 6, 7 and 1, naming the key', () => {
    const netns = lab.podNs('conf')
    const call = { containerId: 'c-conf', netns }
    expect(lab.cni(n1, 'ADD', call, '{not json').json).toMatchObject({ code: 6, msg: expect.stringMatching(/not JSON/) })
    expect(lab.cni(n1, 'ADD', call, lab.conf(n1, { type: 'bridge' })).json).toMatchObject({ code: 7, msg: expect.stringMatching(/type/) })
    expect(lab.cni(n1, 'ADD', call, lab.conf(n1, { mtu: 100 })).json).toMatchObject({ code: 7, msg: expect.stringMatching(/mtu/) })
    expect(lab.cni(n1, 'ADD', call, lab.conf(n1, { podDevice: 'tap' })).json).toMatchObject({
      code: 7,
      msg: expect.stringMatching(/podDevice/),
    })
    const old = lab.cni(n1, 'ADD', call, lab.conf(n1, { cniVersion: '0.3.1' }))
    expect(old.json).toMatchObject({ code: 1, details: expect.stringMatching(/1\.0\.0 and 1\.1\.0/) })
    expect(lab.cni(n1, 'ADD', call, lab.conf(n1, { ipam: { type: 'nosuch-ipam' } })).json).toMatchObject({
      code: 7,
      msg: expect.stringMatching(/nosuch-ipam.*not found/),
    })
    expect(linksIn(n1.ns).filter((l) => l.startsWith('pn'))).toEqual([])
  })
})

describe('ADD', () => {
  it('creates the pod per the contract and registers its endpoint; pods reach each other across nodes', () => {
    const a = lab.podNs('a')
    const b = lab.podNs('b')
    const ra = lab.cni(
      n1,
      'ADD',
      { containerId: 'c-a', netns: a, args: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=a;K8S_POD_INFRA_CONTAINER_ID=c-a' },
      lab.conf(n1),
    )
    expect(ra.status, ra.stdout).toBe(0)
    const rb = lab.cni(n2, 'ADD', { containerId: 'c-b', netns: b }, lab.conf(n2, { cniVersion: '1.0.0' }))
    expect(rb.status, rb.stdout).toBe(0)
    const hostA = podHostIfName('c-a', 'eth0')
    expect(hostA).toMatch(/^pn[0-9a-f]{11}$/)
    expect(ra.json).toEqual({
      cniVersion: '1.1.0',
      interfaces: [
        { name: hostA, mac: expect.stringMatching(/^[0-9a-f:]{17}$/), mtu: 1500 },
        { name: 'eth0', mac: expect.stringMatching(/^[0-9a-f:]{17}$/), mtu: 1500, sandbox: a },
      ],
      ips: [{ address: '10.250.1.2/32', gateway: '169.254.1.1', interface: 1 }],
      routes: [{ dst: '0.0.0.0/0', gw: '169.254.1.1' }],
      dns: {},
    })
    // 1.0.0 results have no interface mtu
    expect(rb.json!.cniVersion).toBe('1.0.0')
    expect(rb.json!.interfaces[1]).toEqual({ name: 'eth0', mac: expect.any(String), sandbox: b })
    const podNs = a.split('/').pop()!
    const addr = JSON.parse(must('ip', ['-n', podNs, '-j', 'addr', 'show', 'dev', 'eth0']))[0]
    expect(addr.mtu).toBe(1500)
    expect(addr.addr_info.filter((x: any) => x.family === 'inet').map((x: any) => `${x.local}/${x.prefixlen}`)).toEqual(['10.250.1.2/32'])
    expect(must('ip', ['-n', podNs, 'route'])).toMatch(/default via 169\.254\.1\.1 dev eth0[\s\S]*169\.254\.1\.1 dev eth0 scope link/)
    expect(must('ip', ['-n', podNs, 'neigh', 'show', 'nud', 'permanent'])).toBe('')
    expect(endpoints(n1)).toEqual([expect.objectContaining({ ip: '10.250.1.2', ifname: hostA })])
    expect(ping(podNs, '10.250.2.2').status).toBe(0)
    expect(ping(podNs, n1.ip).status).toBe(0)
    const log = readFileSync(join(lab.stateDir, 'cni.log'), 'utf8')
    expect(log).toMatch(/"msg":"pod added".*"ip":"10\.250\.1\.2"/)
  })

  it('answers an unattached node with code 11 and allocates nothing', () => {
    const netns = lab.podNs('unatt')
    const r = lab.cni(n1, 'ADD', { containerId: 'c-unatt', netns }, lab.conf(n1, { pinDir: `${n1.pinDir}-none` }))
    expect(r.status).toBe(1)
    expect(r.json).toMatchObject({
      cniVersion: '1.1.0',
      code: 11,
      msg: expect.stringMatching(/not attached/),
      details: expect.stringMatching(/attach/),
    })
    expect(lab.allocated()).toEqual(['10.250.1.2', '10.250.2.2'])
  })

  it('fails on a vanished namespace without leaving an allocation', () => {
    const r = lab.cni(n1, 'ADD', { containerId: 'c-gone', netns: `/run/netns/${lab.id}-never` }, lab.conf(n1))
    expect(r.json).toMatchObject({ code: 105 })
    expect(lab.allocated()).toEqual(['10.250.1.2', '10.250.2.2'])
  })

  it('undoes everything, the IP allocation included, when the endpoint cannot be registered', () => {
    const netns = lab.podNs('outside')
    // an IPAM range outside the node's pod CIDR: the endpoint service refuses it after the device exists
    const conf = lab.conf(n1, { ipam: { type: 'host-local', dataDir: lab.ipamDir, ranges: [[{ subnet: '10.251.0.0/24' }]] } })
    const r = lab.cni(n1, 'ADD', { containerId: 'c-outside', netns }, conf)
    expect(r.json).toMatchObject({ code: 103, msg: expect.stringMatching(/outside this node's pod CIDR/) })
    expect(linksIn(n1.ns)).not.toContain(podHostIfName('c-outside', 'eth0'))
    expect(linksIn(netns.split('/').pop()!)).toEqual(['lo'])
    expect(lab.allocated()).toEqual(['10.250.1.2', '10.250.2.2'])
    expect(records()).toHaveLength(2)
  })

  it('refuses a second ADD of the same attachment without touching the first', () => {
    const r = lab.cni(n1, 'ADD', { containerId: 'c-a', netns: `/run/netns/${lab.id}-a` }, lab.conf(n1))
    expect(r.json).toMatchObject({ code: 102, msg: expect.stringMatching(/already has a pod device/) })
    expect(endpoints(n1).map((e) => e.ip)).toEqual(['10.250.1.2'])
    expect(lab.allocated()).toEqual(['10.250.1.2', '10.250.2.2'])
  })

  it('says clearly when the kernel has no netkit', () => {
    const netns = lab.podNs('nk')
    const r = lab.cni(n1, 'ADD', { containerId: 'c-nk', netns }, lab.conf(n1, { podDevice: 'netkit' }))
    if (kernelHasNetkit()) {
      expect(r.status, r.stdout).toBe(0)
      expect(lab.cni(n1, 'DEL', { containerId: 'c-nk', netns }, lab.conf(n1, { podDevice: 'netkit' })).status).toBe(0)
      return
    }
    expect(r.json).toMatchObject({
      code: 104,
      msg: expect.stringMatching(/no netkit/),
      details: expect.stringMatching(/"podDevice": "veth"/),
    })
    expect(linksIn(n1.ns)).not.toContain(podHostIfName('c-nk', 'eth0'))
    expect(lab.allocated()).toEqual(['10.250.1.2', '10.250.2.2'])
  })

  it('reports IPAM exhaustion and recovers once an address is released', () => {
    const ipam = {
      type: 'host-local',
      dataDir: join(lab.stateDir, 'ipam-small'),
      ranges: [[{ subnet: 'usePodCidr', rangeStart: '10.250.2.200', rangeEnd: '10.250.2.200' }]],
    }
    const conf = lab.conf(n2, { name: `${lab.id}-small`, ipam })
    const x = lab.podNs('x')
    const y = lab.podNs('y')
    expect(lab.cni(n2, 'ADD', { containerId: 'c-x', netns: x }, conf).status).toBe(0)
    const r = lab.cni(n2, 'ADD', { containerId: 'c-y', netns: y }, conf)
    expect(r.status).toBe(1)
    expect(r.json!.msg).toMatch(/IPAM host-local ADD: .*no IP addresses available/)
    expect(linksIn(n2.ns)).not.toContain(podHostIfName('c-y', 'eth0'))
    expect(lab.cni(n2, 'DEL', { containerId: 'c-x', netns: x }, conf).status).toBe(0)
    expect(lab.cni(n2, 'ADD', { containerId: 'c-y', netns: y }, conf).json).toMatchObject({ ips: [{ address: '10.250.2.200/32' }] })
    expect(lab.cni(n2, 'DEL', { containerId: 'c-y', netns: y }, conf).status).toBe(0)
  })
})

describe('CHECK', () => {
  const prev = () => lab.cni(n1, 'ADD', { containerId: 'c-chk', netns: lab.podNs('chk') }, lab.conf(n1)).json!
  let result: Record<string, any>
  const netns = () => `/run/netns/${lab.id}-chk`
  const check = () => lab.cni(n1, 'CHECK', { containerId: 'c-chk', netns: netns() }, lab.conf(n1, { prevResult: result }))

  it('passes on an intact pod and needs a prevResult', () => {
    result = prev()
    expect(check()).toMatchObject({ status: 0, stdout: '' })
    expect(lab.cni(n1, 'CHECK', { containerId: 'c-chk', netns: netns() }, lab.conf(n1)).json).toMatchObject({ code: 116 })
  })

  it('names MTU, route, address and endpoint drift with their own codes', () => {
    const ns = netns().split('/').pop()!
    must('ip', ['-n', ns, 'link', 'set', 'eth0', 'mtu', '1400'])
    expect(check().json).toMatchObject({ code: 114, msg: 'eth0 MTU is 1400, expected 1500' })
    must('ip', ['-n', ns, 'link', 'set', 'eth0', 'mtu', '1500'])
    must('ip', ['-n', ns, 'route', 'del', 'default'])
    expect(check().json).toMatchObject({ code: 113, msg: expect.stringMatching(/no default route via 169\.254\.1\.1/) })
    must('ip', ['-n', ns, 'route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0'])
    const ip = result.ips[0].address
    must('ip', ['-n', ns, 'addr', 'del', ip, 'dev', 'eth0'])
    expect(check().json).toMatchObject({ code: 112 })
    must('ip', ['-n', ns, 'addr', 'add', ip, 'dev', 'eth0'])
    // removing the only address took the routes with it
    must('ip', ['-n', ns, 'route', 'replace', '169.254.1.1', 'dev', 'eth0', 'scope', 'link'])
    must('ip', ['-n', ns, 'route', 'replace', 'default', 'via', '169.254.1.1', 'dev', 'eth0'])
    expect(check().status).toBe(0)
    cliJson(n1.ns, ['endpoints', 'del', '--ip', ip.split('/')[0], '--pin-dir', n1.pinDir], lab.env)
    expect(check().json).toMatchObject({ code: 115, msg: expect.stringMatching(/no endpoint map entry/) })
    expect(lab.cni(n1, 'DEL', { containerId: 'c-chk', netns: netns() }, lab.conf(n1)).status).toBe(0)
  })
})

describe('DEL', () => {
  it('removes device, endpoint and allocation; a second DEL succeeds too', () => {
    const netns = lab.podNs('del')
    const add = lab.cni(n1, 'ADD', { containerId: 'c-del', netns }, lab.conf(n1))
    const ip = add.json!.ips[0].address.split('/')[0]
    expect(lab.allocated()).toContain(ip)
    for (let i = 0; i < 2; i++) {
      const r = lab.cni(n1, 'DEL', { containerId: 'c-del', netns }, lab.conf(n1, { prevResult: add.json }))
      expect(r, r.stdout).toMatchObject({ status: 0, stdout: '' })
    }
    expect(linksIn(n1.ns)).not.toContain(podHostIfName('c-del', 'eth0'))
    expect(endpoints(n1).map((e) => e.ip)).not.toContain(ip)
    expect(lab.allocated()).not.toContain(ip)
  })

  it('succeeds when the namespace is already gone, and without CNI_NETNS', () => {
    const netns = lab.podNs('vanish')
    const ip = lab.cni(n1, 'ADD', { containerId: 'c-vanish', netns }, lab.conf(n1)).json!.ips[0].address.split('/')[0]
    must('ip', ['netns', 'del', netns.split('/').pop()!])
    expect(lab.cni(n1, 'DEL', { containerId: 'c-vanish', netns }, lab.conf(n1)).status).toBe(0)
    expect(lab.cni(n1, 'DEL', { containerId: 'c-vanish' }, lab.conf(n1)).status).toBe(0)
    expect(endpoints(n1).map((e) => e.ip)).not.toContain(ip)
    expect(lab.allocated()).not.toContain(ip)
    expect(linksIn(n1.ns)).not.toContain(podHostIfName('c-vanish', 'eth0'))
  })
})

describe('GC', () => {
  it('removes attachments the runtime no longer lists, and stray pod devices', () => {
    const keep = lab.podNs('keep')
    const drop = lab.podNs('drop')
    lab.cni(n1, 'ADD', { containerId: 'c-keep', netns: keep }, lab.conf(n1))
    const dropIp = lab.cni(n1, 'ADD', { containerId: 'c-drop', netns: drop }, lab.conf(n1)).json!.ips[0].address.split('/')[0]
    const stray = podHostIfName('c-stray', 'eth0')
    must('ip', ['-n', n1.ns, 'link', 'add', stray, 'type', 'veth', 'peer', 'name', `${stray}p`])
    const valid = [
      { containerID: 'c-a', ifname: 'eth0' },
      { containerID: 'c-keep', ifname: 'eth0' },
    ]
    const r = lab.cni(n1, 'GC', {}, lab.conf(n1, { 'cni.dev/valid-attachments': valid }))
    expect(r, r.stdout).toMatchObject({ status: 0, stdout: '' })
    const links = linksIn(n1.ns)
    expect(links).toContain(podHostIfName('c-keep', 'eth0'))
    expect(links).toContain(podHostIfName('c-a', 'eth0'))
    expect(links).not.toContain(podHostIfName('c-drop', 'eth0'))
    expect(links).not.toContain(stray)
    expect(endpoints(n1).map((e) => e.ip)).not.toContain(dropIp)
    expect(lab.allocated()).not.toContain(dropIp)
    expect(lab.allocated()).toContain('10.250.1.2')
    expect(lab.cni(n1, 'GC', {}, lab.conf(n1)).json).toMatchObject({ code: 7, msg: expect.stringMatching(/valid-attachments/) })
    expect(lab.cni(n1, 'GC', {}, lab.conf(n1, { cniVersion: '1.0.0', 'cni.dev/valid-attachments': [] })).json).toMatchObject({ code: 1 })
    expect(lab.cni(n1, 'DEL', { containerId: 'c-keep', netns: keep }, lab.conf(n1)).status).toBe(0)
  })
})

describe('STATUS', () => {
  it('is 0 on a healthy node, 51 when a program is gone, 50 when the node is not attached', () => {
    expect(lab.cni(n2, 'STATUS', {}, lab.conf(n2))).toMatchObject({ status: 0, stdout: '' })
    removeHookProgram(n2.ns, n2.pinDir, 'eth0', 'ingress')
    expect(lab.cni(n2, 'STATUS', {}, lab.conf(n2)).json).toMatchObject({
      code: 51,
      msg: expect.stringMatching(/fromNetdev is not attached to eth0/),
    })
    lab.attach(n2)
    expect(lab.cni(n2, 'STATUS', {}, lab.conf(n2)).status).toBe(0)
    expect(lab.cni(n2, 'STATUS', {}, lab.conf(n2, { pinDir: '/sys/fs/bpf/pncni-nowhere' })).json).toMatchObject({ code: 50 })
  })
})
