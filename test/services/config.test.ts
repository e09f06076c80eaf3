// Node configuration parsing: the zod schema's defaults and its errors, as
// the operator reads them.
import { describe, expect, it } from 'vitest'
import { parseNodeConfig, resolvePinDir } from '../../src/services/config.js'
import { UserError } from '../../src/errors.js'

const base = { nodeIp: '192.168.77.1', podCidr: '10.244.1.0/24', device: 'eth0' }

function errorOf(fn: () => unknown): UserError {
  try {
    fn()
  } catch (e) {
    if (e instanceof UserError) return e
    throw e
  }
  throw new Error('no error')
}

describe('parseNodeConfig', () => {
  it('fills the defaults from the schema', () => {
    expect(parseNodeConfig(base)).toEqual({ ...base, mode: 'auto', vni: 1, vxlanPort: 8472, attachMode: 'auto' })
  })

  it('names each bad key with its path and a fix', () => {
    const e = errorOf(() => parseNodeConfig({ ...base, nodeIp: '300.1.1.1', vni: 0 }, 'flags'))
    expect(e.message).toMatch(/^invalid flags:/)
    expect(e.message).toContain('nodeIp: must be an IPv4 address')
    expect(e.message).toContain('vni:')
    expect(e.hint).toBeTruthy()
  })

  it('rejects unknown keys and a CIDR with host bits', () => {
    expect(errorOf(() => parseNodeConfig({ ...base, colour: 'blue' })).message).toContain('colour')
    expect(errorOf(() => parseNodeConfig({ ...base, podCidr: '10.244.1.5/24' })).message).toContain('host bits are set')
  })
})

describe('resolvePinDir', () => {
  it('strips trailing slashes and refuses relative paths', () => {
    expect(resolvePinDir('/sys/fs/bpf/x//')).toBe('/sys/fs/bpf/x')
    expect(() => resolvePinDir('sys/fs/bpf')).toThrow(/not an absolute path/)
  })
})
