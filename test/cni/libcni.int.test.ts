// The installed conflist (podnet, then portmap) driven by libcni, the library
// runtimes embed: ADD, CHECK, DEL through a Go driver of our own, built here
// against Debian's libcni sources. A hostPort mapping on node1 reaches the pod.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { podHostIfName } from '../../src/datapath/pod.js'
import { cli, must, runId, sh } from '../support/sys.js'
import { CniLab, buildLibcniDriver, linksIn, tcpClient, tcpServer, type CniNode } from './harness.js'

const lab = new CniLab(runId('pncni-'), 2)
let n1: CniNode
let n2: CniNode
let driver: string
const binDir = join(lab.stateDir, 'bin')
const confDir = join(lab.stateDir, 'net.d')
const cacheDir = join(lab.stateDir, 'cache')

beforeAll(() => {
  lab.up()
  ;[n1, n2] = lab.nodes as [CniNode, CniNode]
  driver = buildLibcniDriver(lab.stateDir)
  mkdirSync(cacheDir, { recursive: true })
}, 300_000)
afterAll(() => lab.down())

// the runtime passes the same capability arguments on every operation (portmap's DEL needs them)
const ports = [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }]

function drive(op: string, containerId: string, netns: string, portMappings: unknown[] = ports) {
  const args = [`--net=/run/netns/${n1.ns}`, driver, op, join(confDir, '10-podnet.conflist'), containerId, netns, 'eth0', cacheDir]
  args.push(JSON.stringify(portMappings))
  return sh('nsenter', args, { env: { ...process.env, ...lab.env, CNI_PATH: binDir } })
}

describe('libcni', () => {
  it('installs, then ADD/CHECK/DEL the conflist with portmap chained; a hostPort on node1 reaches the pod', async () => {
    const inst = cli(
      null,
      [
        'cni',
        'install',
        '--bin-dir',
        binDir,
        '--conf-dir',
        confDir,
        '--pin-dir',
        n1.pinDir,
        '--network',
        `${lab.id}-net`,
        '--ipam-data-dir',
        lab.ipamDir,
      ],
      lab.env,
    )
    expect(inst.status, inst.stderr).toBe(0)
    const netns = lab.podNs('web')
    const add = drive('add', 'c-web', netns)
    expect(add.status, add.stderr).toBe(0)
    const result = JSON.parse(add.stdout)
    expect(result).toMatchObject({ cniVersion: '1.0.0', ips: [{ address: '10.250.1.2/32', gateway: '169.254.1.1' }] })
    expect(result.interfaces.map((i: { name: string }) => i.name)).toEqual([podHostIfName('c-web', 'eth0'), 'eth0'])

    const srv = await tcpServer(`${lab.id}-web`, 80)
    try {
      // node2 → node1:8080, DNATed by portmap to the pod; the pod sees node2 (no SNAT)
      expect(tcpClient(n2.ns, n1.ip, 8080)).toEqual({ peer: n2.ip, local: '10.250.1.2' })
      // and straight to the pod across nodes
      expect(tcpClient(n2.ns, '10.250.1.2', 80).peer).toBe(n2.ip)
    } finally {
      srv.close()
    }
    expect(must('nsenter', [`--net=/run/netns/${n1.ns}`, 'iptables', '-t', 'nat', '-S'])).toMatch(
      /--dport 8080 .*DNAT --to-destination 10\.250\.1\.2:80/,
    )

    // CHECK without the port mappings: Debian's portmap 1.1.1 fails CHECK of an
    // IPv4-only pod looking for ip6tables rules it never made
    // (containernetworking/plugins#819); podnet's own CHECK runs either way
    const check = drive('check', 'c-web', netns, [])
    expect(check.status, check.stderr).toBe(0)
    // CHECK notices drift, through libcni too
    must('ip', ['-n', `${lab.id}-web`, 'link', 'set', 'eth0', 'mtu', '1300'])
    expect(drive('check', 'c-web', netns, []).stderr).toMatch(/eth0 MTU is 1300, expected 1500/)
    must('ip', ['-n', `${lab.id}-web`, 'link', 'set', 'eth0', 'mtu', '1500'])

    const del = drive('del', 'c-web', netns)
    expect(del.status, del.stderr).toBe(0)
    expect(linksIn(n1.ns)).not.toContain(podHostIfName('c-web', 'eth0'))
    expect(lab.allocated()).toEqual([])
    expect(must('nsenter', [`--net=/run/netns/${n1.ns}`, 'iptables', '-t', 'nat', '-S'])).not.toMatch(/8080/)
    expect(drive('del', 'c-web', netns).status).toBe(0)

    const un = cli(null, ['cni', 'uninstall', '--bin-dir', binDir, '--conf-dir', confDir, '--json'], lab.env)
    expect(un.status, un.stderr).toBe(0)
    expect(JSON.parse(un.stdout).removed).toHaveLength(5)
    expect(sh('ls', ['-A', binDir, confDir]).stdout.replace(/\s+/g, ' ').trim()).toBe(`${binDir}: ${confDir}:`)
  })
})
