// The CNI protocol pieces without a kernel: env parsing, network config
// validation, IPAM resolution, result conversion, host-side names.
import { describe, expect, it } from 'vitest'
import { podHostIfName } from '../../src/datapath/pod.js'
import { parseNetConf, resolveIpam } from '../../src/cni/netconf.js'
import { CniError, convertResult, parseArgs, parseEnv } from '../../src/cni/protocol.js'

const code = (f: () => unknown) => {
  try {
    f()
  } catch (e) {
    return (e as CniError).code
  }
  return 0
}

describe('CNI protocol', () => {
  it('parses kubelet CNI_ARGS and rejects entries without a value', () => {
    expect(parseArgs('IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0')).toEqual({
      IgnoreUnknown: '1',
      K8S_POD_NAMESPACE: 'default',
      K8S_POD_NAME: 'web-0',
    })
    expect(code(() => parseArgs('IgnoreUnknown'))).toBe(4)
  })

  it('requires per verb what the spec requires', () => {
    const base = { CNI_PATH: '/usr/lib/cni', CNI_CONTAINERID: 'abc', CNI_IFNAME: 'eth0', CNI_NETNS: '/run/netns/x' }
    expect(parseEnv({ ...base, CNI_COMMAND: 'ADD' }).path).toEqual(['/usr/lib/cni'])
    expect(code(() => parseEnv({ ...base, CNI_COMMAND: 'ADD', CNI_IFNAME: 'a/b' }))).toBe(4)
    expect(code(() => parseEnv({ ...base, CNI_COMMAND: 'ADD', CNI_IFNAME: 'sixteen-chars-xx' }))).toBe(4)
    expect(code(() => parseEnv({ ...base, CNI_COMMAND: 'CHECK', CNI_NETNS: '' }))).toBe(4)
    expect(parseEnv({ ...base, CNI_COMMAND: 'DEL', CNI_NETNS: '' }).netns).toBe('')
    expect(parseEnv({ CNI_COMMAND: 'STATUS', CNI_PATH: '/x' }).command).toBe('STATUS')
    expect(parseEnv({ CNI_COMMAND: 'VERSION' }).command).toBe('VERSION')
    expect(code(() => parseEnv({ CNI_COMMAND: 'UPDATE', CNI_PATH: '/x' }))).toBe(4)
  })

  it('validates the network config: decode 6, invalid 7, version 1; unknown keys pass', () => {
    const ok = { cniVersion: '1.0.0', name: 'podnet', type: 'podnet', runtimeConfig: { portMappings: [] } }
    expect(parseNetConf(JSON.stringify(ok))).toMatchObject({
      pinDir: '/sys/fs/bpf/podnet',
      podDevice: 'veth',
      runtimeConfig: { portMappings: [] },
    })
    expect(code(() => parseNetConf('[1]'))).toBe(6)
    expect(code(() => parseNetConf(JSON.stringify({ ...ok, pinDir: 'relative' })))).toBe(7)
    expect(code(() => parseNetConf(JSON.stringify({ ...ok, cniVersion: '0.4.0' })))).toBe(1)
  })

  it('replaces usePodCidr with the node pod CIDR and defaults to host-local over it', () => {
    const conf = parseNetConf(
      JSON.stringify({
        cniVersion: '1.1.0',
        name: 'n',
        type: 'podnet',
        ipam: { type: 'host-local', ranges: [[{ subnet: 'usePodCidr' }], [{ subnet: '10.9.0.0/16' }]] },
      }),
    )
    expect(resolveIpam(conf, '10.244.3.0/24')).toEqual({
      type: 'host-local',
      ranges: [[{ subnet: '10.244.3.0/24' }], [{ subnet: '10.9.0.0/16' }]],
    })
    expect(conf.ipam).toMatchObject({ ranges: [[{ subnet: 'usePodCidr' }], [{ subnet: '10.9.0.0/16' }]] })
    const bare = parseNetConf(JSON.stringify({ cniVersion: '1.1.0', name: 'n', type: 'podnet' }))
    expect(resolveIpam(bare, '10.244.3.0/24')).toEqual({ type: 'host-local', ranges: [[{ subnet: '10.244.3.0/24' }]] })
  })

  it('writes interface MTUs only into 1.1.0 results', () => {
    const r = {
      cniVersion: '1.1.0',
      interfaces: [{ name: 'eth0', mtu: 1450, sandbox: '/x' }],
      ips: [{ address: '10.0.0.2/32', interface: 0 }],
    }
    expect(convertResult(r, '1.1.0').interfaces).toEqual([{ name: 'eth0', mtu: 1450, sandbox: '/x' }])
    expect(convertResult(r, '1.0.0')).toEqual({ cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: '/x' }], ips: r.ips })
  })

  it('derives stable, short, distinct host-side names from container ID and ifname', () => {
    const a = podHostIfName('3f6940ab5ab43bc522569d15b23f8c1bbde1d7678b080398506924fc01d72755', 'eth0')
    expect(a).toBe(podHostIfName('3f6940ab5ab43bc522569d15b23f8c1bbde1d7678b080398506924fc01d72755', 'eth0'))
    expect(a.length).toBeLessThanOrEqual(15)
    expect(podHostIfName('3f6940ab5ab43bc522569d15b23f8c1bbde1d7678b080398506924fc01d72755', 'net1')).not.toBe(a)
    const names = new Set(Array.from({ length: 20_000 }, (_, i) => podHostIfName(`pod-${i}`, 'eth0')))
    expect(names.size).toBe(20_000)
  })
})
