// The kernel-table watch (rtnetlink dump + RTNLGRP_IPV4_ROUTE monitor) in a
// namespace of the test's own: routes added, replaced and deleted by another
// process show up; other tables are ignored; 5,000 routes at once (more
// than the socket buffer's events, or a resync after an overrun) all arrive.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { must, ROOT, runId, sh, loneNodeNs } from '../support/sys.js'

const ns = runId('pnbgprt')
const mod = join(ROOT, 'dist', 'datapath', 'route-table.js')

beforeAll(() => {
  loneNodeNs(ns, '192.168.99.1/24')
})
afterAll(() => sh('ip', ['netns', 'del', ns]))

/** Runs `steps` (shell commands) one by one in the namespace while a watch on table 77 runs; prints its view after each. */
function watchWhile(steps: string[]): string[][] {
  const script = `
    import { RouteTableWatch } from '${mod}'
    import { execSync } from 'node:child_process'
    const steps = ${JSON.stringify(steps)}
    const w = RouteTableWatch.start(77, () => {})
    const view = () => w.current().map((r) => r.cidr + ' via ' + r.gateway).sort()
    const out = []
    for (const s of steps) {
      execSync(s)
      const want = execSync('ip -4 route show table 77 | grep -c via || true').toString().trim()
      for (let i = 0; i < 100 && String(view().length) !== want; i++) await new Promise((r) => setTimeout(r, 20))
      await new Promise((r) => setTimeout(r, 50))
      out.push(view())
    }
    w.close()
    console.log(JSON.stringify(out))`
  return JSON.parse(must('nsenter', [`--net=/run/netns/${ns}`, 'node', '--input-type=module', '-e', script])) as string[][]
}

describe('kernel route table watch', () => {
  it('starts from a dump and follows adds, replaces and deletes in its table only', () => {
    must('ip', ['-n', ns, 'route', 'add', '10.244.1.0/24', 'via', '192.168.99.2', 'table', '77'])
    const out = watchWhile([
      'ip route add 10.244.2.0/24 via 192.168.99.3 table 77',
      'ip route add 10.244.3.0/24 via 192.168.99.4 table 78',
      'ip route replace 10.244.2.0/24 via 192.168.99.5 table 77',
      'ip route add blackhole 10.244.4.0/24 table 77',
      'ip route del 10.244.1.0/24 table 77',
    ])
    expect(out).toEqual([
      ['10.244.1.0/24 via 192.168.99.2', '10.244.2.0/24 via 192.168.99.3'],
      ['10.244.1.0/24 via 192.168.99.2', '10.244.2.0/24 via 192.168.99.3'],
      ['10.244.1.0/24 via 192.168.99.2', '10.244.2.0/24 via 192.168.99.5'],
      ['10.244.1.0/24 via 192.168.99.2', '10.244.2.0/24 via 192.168.99.5'],
      ['10.244.2.0/24 via 192.168.99.5'],
    ])
  })

  it('sees all of 5,000 routes added in one batch', () => {
    const batch = Array.from({ length: 5000 }, (_, i) => `route add 10.${100 + (i >> 8)}.${i & 255}.0/24 via 192.168.99.9 table 77`).join(
      '\n',
    )
    const file = join('/tmp', `${ns}.batch`)
    must('sh', ['-c', `cat > ${file}`], { input: batch + '\n' })
    const out = watchWhile([`ip -batch ${file}`, `ip route flush table 77`])
    sh('rm', ['-f', file])
    expect(out[0]!.length).toBe(5001)
    expect(out[1]).toEqual([])
  })
})
