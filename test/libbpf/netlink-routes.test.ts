// routeOps (rtnetlink, batched without per-request acks): run in a network
// namespace of the test's own, through the built library, never in the
// host's namespace.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { must, ROOT, runId, sh, loneNodeNs } from '../support/sys.js'

const ns = runId('pnnl')
const lib = join(ROOT, 'dist', 'libbpf', 'index.js')

function inNs(script: string): string {
  return must('nsenter', [`--net=/run/netns/${ns}`, 'node', '--input-type=module', '-e', `import * as l from '${lib}'\n${script}`])
}

beforeAll(() => {
  loneNodeNs(ns, '192.168.99.1/24')
})
afterAll(() => sh('ip', ['netns', 'del', ns]))

describe('routeOps', () => {
  it('applies thousands of routes and reports exactly the requests the kernel refused', () => {
    const out = inNs(`
      const oif = l.ifNameToIndex('eth0')
      const ops = []
      for (let i = 0; i < 3000; i++) ops.push({ op: 'replace', dst: '10.' + (100 + (i >> 8)) + '.' + (i & 255) + '.0', prefixlen: 24, protocol: 112, oif, gateway: '192.168.99.2', prefsrc: '192.168.99.1', scope: 'universe' })
      ops.splice(1500, 0, { op: 'replace', dst: '10.2.0.0', prefixlen: 24, protocol: 112, oif, gateway: '10.9.9.9', scope: 'universe' })
      ops.push({ op: 'delete', dst: '10.3.0.0', prefixlen: 24, protocol: 112 })
      console.log(JSON.stringify(l.routeOps(ops).map((e) => [e.index, e.error.code])))`)
    expect(JSON.parse(out)).toEqual([[1500, 'ENETUNREACH']])
    const routes = sh('ip', ['-n', ns, 'route', 'show', 'proto', '112']).stdout.trim().split('\n')
    expect(routes).toHaveLength(3000)
    expect(routes[0]).toMatch(/^10\.100\.0\.0\/24 via 192\.168\.99\.2 dev eth0 src 192\.168\.99\.1/)
  })

  it('deletes routes in bulk, and a delete of a missing route is no error', () => {
    const out = inNs(`
      const ops = []
      for (let i = 0; i < 3001; i++) ops.push({ op: 'delete', dst: '10.' + (100 + (i >> 8)) + '.' + (i & 255) + '.0', prefixlen: 24, protocol: 112 })
      console.log(JSON.stringify(l.routeOps(ops)))`)
    expect(JSON.parse(out)).toEqual([])
    expect(sh('ip', ['-n', ns, 'route', 'show', 'proto', '112']).stdout.trim()).toBe('')
  })
})
