// The agent's configuration: YAML file + flags through one zod schema;
// unknown keys and bad values are errors naming their path.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { flagsToConfig, loadAgentConfig, parseDuration } from '../../src/agent/config.js'
import { UserError } from '../../src/errors.js'

const dir = mkdtempSync(join(tmpdir(), 'pnag-cfg-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
function file(name: string, text: string): string {
  const p = join(dir, name)
  writeFileSync(p, text)
  return p
}
function errorOf(f: () => unknown): UserError {
  try {
    f()
  } catch (e) {
    if (e instanceof UserError) return e
    throw e
  }
  throw new Error('expected a UserError')
}

describe('agent configuration', () => {
  it('parses durations with units', () => {
    expect(parseDuration('500ms')).toBe(500)
    expect(parseDuration('10s')).toBe(10_000)
    expect(parseDuration('1.5m')).toBe(90_000)
    expect(parseDuration('10')).toBeNull()
    expect(parseDuration('s')).toBeNull()
  })

  it('reads YAML, with flags overriding the file and etcd flags going into the etcd section', () => {
    const f = file('a.yaml', 'datastore: etcd\nnodeName: n1\nleaseTtl: 10s\netcd:\n  endpoints: [http://10.0.0.1:2379]\n  prefix: /x/y\n')
    const c = loadAgentConfig(flagsToConfig({ 'node-name': 'n2', 'etcd-endpoints': 'http://10.0.0.2:2379,http://10.0.0.3:2379' }), f)
    expect(c.nodeName).toBe('n2')
    expect(c.leaseTtl).toBe(10_000)
    expect(c.etcd).toEqual({ endpoints: ['http://10.0.0.2:2379', 'http://10.0.0.3:2379'], prefix: '/x/y' })
    expect(c.listen).toBe('127.0.0.1:9963')
    expect(c.resyncInterval).toBe(30_000)
  })

  it('rejects unknown keys with their path', () => {
    const f = file('b.yaml', 'datastore: etcd\netcd:\n  endpoint: http://10.0.0.1:2379\nfoo: 1\n')
    const e = errorOf(() => loadAgentConfig({}, f))
    expect(e.message).toMatch(/etcd: Unrecognized key\(s\) in object: 'endpoint'/)
    expect(e.message).toMatch(/\(root\): Unrecognized key\(s\) in object: 'foo'/)
    expect(e.hint).toBeTruthy()
  })

  it('names the line of a YAML syntax error', () => {
    const f = file('c.yaml', 'datastore: etcd\nnodeName: [n1\nmode: auto\n')
    const e = errorOf(() => loadAgentConfig({}, f))
    expect(e.message).toMatch(/is not valid YAML at line \d+/)
  })

  it.each([
    [{ datastore: 'file' }, 'podCidr: the file datastore needs'],
    [{ datastore: 'etcd', leaseTtl: '1s' }, 'leaseTtl: 1s is out of range'],
    [{ datastore: 'etcd', leaseTtl: 'soon' }, 'leaseTtl: "soon" is not a duration'],
    [{ datastore: 'etcd', nodeIp: '10.0.0.300' }, 'nodeIp: must be an IPv4 address'],
    [{ datastore: 'etcd', etcdEndpoints: ['10.0.0.1:2379'] }, 'etcd.endpoints.0: must be an http(s)://HOST:PORT URL'],
    [{ datastore: 'etcd', etcdPrefix: 'podnet' }, 'etcd.prefix: must start with /'],
    [{ datastore: 'etcd', etcdCert: '/c.pem' }, 'etcd.key: etcd client certificate and key go together'],
    [{ datastore: 'etcd', listen: '9963' }, 'listen: must be ADDRESS:PORT'],
    [{ datastore: 'nosuch' }, 'datastore: Invalid enum value'],
    [{ datastore: 'etcd', peersFile: '/p.yaml' }, 'peersFile: only the file datastore'],
  ])('rejects %j', (flags, msg) => {
    expect(errorOf(() => loadAgentConfig(flags)).message).toContain(msg)
  })

  it('rejects a file that is not a mapping, or missing', () => {
    expect(errorOf(() => loadAgentConfig({}, file('d.yaml', '- a\n- b\n'))).message).toContain('is not a YAML mapping')
    expect(errorOf(() => loadAgentConfig({}, join(dir, 'none.yaml'))).message).toContain('cannot read config file')
  })
})
