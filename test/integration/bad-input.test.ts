// Bad and careless input, one table across every command and the config
// file, against two attached nodes (and a third, never-attached namespace).
// Every case must exit non-zero with a one-line error naming the problem and
// a `Fix:` line (or, with --json, exactly one JSON error object), and leave
// the nodes exactly as they were: BPF map contents, state files, pins (names
// and modes), kernel routes, tc/netkit programs, qdiscs, links and sysctls
// are snapshotted before and after each case and compared.
import { execFile, execFileSync } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, cli, cliJson, kernelHasNetkit, must, runId, sh, type Result, loneNodeNs } from '../support/sys.js'
import { TwoNodes } from '../support/topology.js'

const id = runId('pngd-')
const topo = new TwoNodes(id)
const [n1, n2] = topo.nodes as [(typeof topo.nodes)[0], (typeof topo.nodes)[0]]
const n3 = { ns: `${id}-n3`, ip: '192.168.78.1', pinDir: `/sys/fs/bpf/${id}-n3` }
const stateDir = mkdtempSync(join(tmpdir(), 'pngd-state-'))
const env = { PODNET_STATE_DIR: stateDir }
const files = mkdtempSync(join(tmpdir(), 'pngd-files-'))
const ghostPin = `/sys/fs/bpf/${id}-ghost`
const foreignPin = `/sys/fs/bpf/${id}-foreign`
const tmpPin = join(tmpdir(), `${id}-notbpf`)
const netkit = kernelHasNetkit() === true

type NodeRef = 1 | 2 | 3
const nsOf = (n: NodeRef) => (n === 1 ? n1.ns : n === 2 ? n2.ns : n3.ns)
const pinOf = (n: NodeRef) => (n === 1 ? n1.pinDir : n === 2 ? n2.pinDir : n3.pinDir)
const statePath = (pinDir: string) => join(stateDir, `${pinDir.replace(/\//g, '_')}.json`)

function file(name: string, text: string | Buffer): string {
  const p = join(files, name)
  writeFileSync(p, text)
  return p
}

// ---- snapshots -------------------------------------------------------------

function nodeSnapshot(n: NodeRef): string {
  const pin = pinOf(n)
  const maps = ['podnet_endpoints', 'podnet_routes', 'podnet_settings']
    .map((m) => `echo "== ${m}"; [ -e ${pin}/${m} ] && bpftool -j map dump pinned ${pin}/${m}`)
    .join('; ')
  const script = [
    'echo "== routes"; ip -4 route show table all',
    'echo "== links"; ip -d link show',
    'echo "== qdiscs"; tc qdisc show',
    'echo "== programs"; bpftool -j net show',
    'echo "== sysctls"; grep -H . /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/conf/*/rp_filter',
    `echo "== pins"; ls -lA --time-style=+ ${pin} 2>&1`,
    maps,
  ].join('; ')
  return sh('nsenter', [`--net=/run/netns/${nsOf(n)}`, 'sh', '-c', script]).stdout
}

function snapshot(): Record<string, string> {
  const s: Record<string, string> = { n1: nodeSnapshot(1), n2: nodeSnapshot(2), n3: nodeSnapshot(3) }
  for (const f of readdirSync(stateDir).sort()) {
    // lock files name their last holder (pid, command line): not node state
    if (f.endsWith('.lock')) continue
    const p = join(stateDir, f)
    s[`state ${f}`] = `${(statSync(p).mode & 0o777).toString(8)} ${readFileSync(p, 'utf8')}`
  }
  s.bpffs = readdirSync('/sys/fs/bpf')
    .filter((d) => d.startsWith(id))
    .sort()
    .map((d) => `${d}: ${readdirSync(join('/sys/fs/bpf', d)).sort().join(' ')}`)
    .join('\n')
  s.tmpPin = String(existsSync(tmpPin))
  return s
}

// ---- the table -------------------------------------------------------------

interface Case {
  /** the command line after `podnet-bpf` (--pin-dir is added unless `pin` says otherwise) */
  args: string[]
  /** a fragment of the error message that names the problem */
  want: string | RegExp
  node?: NodeRef
  pin?: string | false
  /** --json: exactly one JSON error object on stdout */
  json?: boolean
  /** as an unprivileged user (setpriv, no capabilities) */
  user?: boolean
  env?: Record<string, string>
  /** a fixture: applied before the "before" snapshot, undone after the case */
  setup?: () => void
  cleanup?: () => void
}

const attach1 = ['attach', '--node-ip', n1.ip, '--pod-cidr', n1.podCidr, '--device', 'eth0', '--mode', 'auto']
const attach3 = ['attach', '--node-ip', n3.ip, '--pod-cidr', '10.244.3.0/24', '--device', 'eth0']
/** attach1 with some flags replaced or added */
function attachWith(...over: string[]): string[] {
  const a = [...attach1]
  for (let i = 0; i < over.length; i += 2) {
    const at = a.indexOf(over[i]!)
    if (at >= 0) a[at + 1] = over[i + 1]!
    else a.push(over[i]!, over[i + 1]!)
  }
  return a
}
const addEp = (ip: string, ifname: string, ...more: string[]) => ['endpoints', 'add', '--ip', ip, '--ifname', ifname, ...more]
const addRoute = (cidr: string, nodeIp: string, ...more: string[]) => ['routes', 'add', cidr, '--node-ip', nodeIp, ...more]
const routesFile = (name: string, routes: unknown) => file(name, JSON.stringify(routes))
const sync = (path: string) => ['routes', 'sync', '--file', path]
const cfg = (name: string, text: string) => ['attach', '--config', file(name, text)]
const node1Cfg = { nodeIp: n1.ip, podCidr: n1.podCidr, device: 'eth0', mode: 'auto' }

const foreignRoute = (dst: string, ...via: string[]) => ({
  setup: () => must('ip', ['-n', n1.ns, 'route', 'add', dst, ...via, 'proto', 'static']),
  cleanup: () => sh('ip', ['-n', n1.ns, 'route', 'del', dst, 'proto', 'static']),
})
function withStateText(text: string): Pick<Case, 'setup' | 'cleanup'> {
  let saved = ''
  return {
    setup: () => {
      saved = readFileSync(statePath(n1.pinDir), 'utf8')
      writeFileSync(statePath(n1.pinDir), text, { mode: 0o600 })
    },
    cleanup: () => writeFileSync(statePath(n1.pinDir), saved, { mode: 0o600 }),
  }
}
const ghostState = {
  setup: () => {
    const s = JSON.parse(readFileSync(statePath(n1.pinDir), 'utf8')) as { pinDir: string }
    s.pinDir = ghostPin
    writeFileSync(statePath(ghostPin), JSON.stringify(s), { mode: 0o600 })
  },
  cleanup: () => rmSync(statePath(ghostPin), { force: true }),
}

const cases: Record<string, Case> = {
  // attach: node IP
  'attach --node-ip out of range': { args: attachWith('--node-ip', '192.168.77.300'), want: 'nodeIp' },
  'attach --node-ip with three octets': { args: attachWith('--node-ip', '192.168.77'), want: 'nodeIp' },
  'attach --node-ip empty': { args: attachWith('--node-ip', ''), want: 'nodeIp' },
  'attach --node-ip with spaces': { args: attachWith('--node-ip', ' 192.168.77.1'), want: 'nodeIp' },
  'attach --node-ip 0.0.0.0': { args: attachWith('--node-ip', '0.0.0.0'), want: 'unspecified' },
  'attach --node-ip broadcast': { args: attachWith('--node-ip', '255.255.255.255'), want: 'broadcast' },
  'attach --node-ip loopback': { args: attachWith('--node-ip', '127.0.0.1'), want: 'loopback' },
  'attach --node-ip multicast': { args: attachWith('--node-ip', '224.0.0.1'), want: 'multicast' },
  'attach --node-ip class E': { args: attachWith('--node-ip', '240.0.0.1'), want: 'reserved' },
  'attach --node-ip a pod IP of its own CIDR': { args: attachWith('--node-ip', '10.244.1.5'), want: 'inside the pod CIDR' },
  "attach --node-ip a peer's pod IP (even when eth0 has it)": {
    args: attachWith('--node-ip', '10.244.2.10'),
    want: 'pod address of the peer route 10.244.2.0/24',
    setup: () => must('ip', ['-n', n1.ns, 'addr', 'add', '10.244.2.10/32', 'dev', 'eth0']),
    cleanup: () => sh('ip', ['-n', n1.ns, 'addr', 'del', '10.244.2.10/32', 'dev', 'eth0']),
  },
  'attach --node-ip not on the device': { args: attachWith('--node-ip', '192.168.77.9'), want: 'is not an address of eth0' },
  // attach: pod CIDR
  'attach --pod-cidr with host bits': { args: attachWith('--pod-cidr', '10.244.1.5/24'), want: 'host bits are set' },
  'attach --pod-cidr /33': { args: attachWith('--pod-cidr', '10.244.1.0/33'), want: 'podCidr' },
  'attach --pod-cidr without prefix': { args: attachWith('--pod-cidr', '10.244.1.0'), want: 'podCidr' },
  'attach --pod-cidr negative prefix': { args: attachWith('--pod-cidr', '10.244.1.0/-1'), want: 'podCidr' },
  'attach --pod-cidr containing the node IP': { args: attachWith('--pod-cidr', '192.168.77.0/24'), want: 'inside the pod CIDR' },
  'attach --pod-cidr over the device subnet': { args: attachWith('--pod-cidr', '192.168.0.0/16'), want: 'inside the pod CIDR' },
  'attach --pod-cidr overlapping the device subnet route': {
    args: attachWith('--pod-cidr', '192.168.77.128/25'),
    want: 'overlaps the existing route 192.168.77.0/24',
  },
  'attach --pod-cidr loopback block': { args: attachWith('--pod-cidr', '127.0.0.0/24'), want: '127.0.0.0/8' },
  'attach --pod-cidr everything': { args: attachWith('--pod-cidr', '0.0.0.0/0'), want: 'inside the pod CIDR' },
  'attach --pod-cidr overlapping a peer route': { args: attachWith('--pod-cidr', '10.244.0.0/16'), want: 'peer route 10.244.2.0/24' },
  'attach --pod-cidr over an existing static route': {
    args: attachWith('--pod-cidr', '10.60.0.0/16'),
    want: 'overlaps the existing route 10.60.0.0/24',
    ...foreignRoute('10.60.0.0/24', 'via', '192.168.77.254'),
  },
  'attach --pod-cidr /31': { args: attachWith('--pod-cidr', '10.244.1.0/31'), want: 'no room for pods' },
  'attach --pod-cidr that strands an endpoint': { args: attachWith('--pod-cidr', '10.244.5.0/24'), want: 'outside the new pod CIDR' },
  // attach: device, mode, numbers
  'attach --device lo': { args: attachWith('--device', 'lo'), want: 'loopback' },
  'attach --device unknown': { args: attachWith('--device', 'nosuchdev0'), want: 'interface "nosuchdev0" not found' },
  'attach --device podnet_vxlan': { args: attachWith('--device', 'podnet_vxlan'), want: 'VXLAN device' },
  'attach --device name too long': { args: attachWith('--device', 'averyverylongifname0'), want: '15 characters' },
  'attach --mode unknown': { args: attachWith('--mode', 'bridge'), want: '--mode' },
  'attach --vni 0': { args: attachWith('--vni', '0'), want: 'vni' },
  'attach --vni 2^24': { args: attachWith('--vni', '16777216'), want: 'VNI is 24 bits' },
  'attach --vni negative': { args: attachWith('--vni', '-1'), want: 'vni' },
  'attach --vni not a number': { args: attachWith('--vni', 'one'), want: 'integer' },
  'attach --vxlan-port 0': { args: attachWith('--vxlan-port', '0'), want: 'vxlanPort' },
  'attach --vxlan-port 65536': { args: attachWith('--vxlan-port', '65536'), want: 'vxlanPort' },
  'attach --mtu 100': { args: attachWith('--mtu', '100'), want: 'MTU below 576' },
  'attach --mtu too big for VXLAN': { args: attachWith('--mtu', '1480', '--mode', 'vxlan'), want: 'does not fit eth0' },
  'attach --mtu 70000': { args: attachWith('--mtu', '70000'), want: 'mtu' },
  'attach unknown flag': { args: attachWith('--colour', 'blue'), want: 'Nonexistent flag: --colour' },
  'attach unknown flag, --json': { args: attachWith('--colour', 'blue'), want: 'Nonexistent flag: --colour', json: true },
  'attach bad IP, --json': { args: attachWith('--node-ip', '0.0.0.0'), want: 'unspecified', json: true },
  'attach extra argument': { args: [...attach1, 'extra'], want: /unexpected argument:? "?extra/i },
  'attach --pin-dir relative': { args: attach1, pin: 'sys/fs/bpf/x', want: 'not an absolute path' },
  'attach with a new build that is missing': { args: attach1, env: { PODNET_BPF_DIR: '/nonexistent' }, want: 'is missing' },
  // attach --config
  'attach --config missing file': { args: ['attach', '--config', join(files, 'nope.json')], want: 'no such file' },
  'attach --config /dev/zero': { args: ['attach', '--config', '/dev/zero'], want: 'not a regular file' },
  'attach --config a directory': { args: ['attach', '--config', files], want: 'not a regular file' },
  'attach --config a FIFO': {
    args: ['attach', '--config', join(files, 'fifo')],
    want: 'not a regular file',
    setup: () => must('mkfifo', [join(files, 'fifo')]),
    cleanup: () => rmSync(join(files, 'fifo'), { force: true }),
  },
  'attach --config oversized': { args: cfg('big.json', `{"nodeIp":"${n1.ip}",${' '.repeat(70_000)}}`), want: 'byte limit' },
  'attach --config malformed': { args: cfg('bad.json', '{"nodeIp": "192.168.77.1",\n "podCidr": "10.244.1.0/24"'), want: /line \d/ },
  'attach --config empty': { args: cfg('empty.json', ''), want: 'not a JSON object' },
  'attach --config an array': { args: cfg('arr.json', '[]'), want: 'not a JSON object' },
  'attach --config binary': { args: cfg('bin.json', Buffer.from([0, 1, 2, 0xff, 0xfe])), want: 'not UTF-8 text' },
  'attach --config unknown key': { args: cfg('colour.json', JSON.stringify({ ...node1Cfg, colour: 'blue' })), want: 'colour' },
  'attach --config duplicate key': {
    args: cfg('dup.json', `{"nodeIp":"${n1.ip}","podCidr":"${n1.podCidr}","device":"eth0","nodeIp":"${n1.ip}"}`),
    want: 'duplicate key "nodeIp"',
  },
  'attach --config bad value': { args: cfg('val.json', JSON.stringify({ ...node1Cfg, nodeIp: '1.2.3' })), want: 'nodeIp' },
  'attach --config wrong type': { args: cfg('type.json', JSON.stringify({ ...node1Cfg, vni: '7' })), want: 'vni' },
  'attach --config of a root-only file, not as root': {
    args: ['attach', '--config', join(files, 'secret.json')],
    user: true,
    want: 'missing capabilities',
    setup: () => {
      file('secret.json', JSON.stringify(node1Cfg))
      chmodSync(join(files, 'secret.json'), 0o600)
    },
  },
  // attach on a namespace with nothing attached
  'attach with a pin dir on a non-bpf filesystem': { node: 3, args: attach3, pin: tmpPin, want: 'is not on a bpffs mount' },
  'attach into a pin dir holding foreign maps under our names': {
    node: 3,
    args: attach3,
    pin: foreignPin,
    want: 'not podnet-bpf',
    setup: () => {
      must('mkdir', ['-p', foreignPin])
      must('bpftool', [
        'map',
        'create',
        `${foreignPin}/podnet_routes`,
        'type',
        'hash',
        'key',
        '4',
        'value',
        '4',
        'entries',
        '4',
        'name',
        'podnet_routes',
      ])
    },
    cleanup: () => rmSync(foreignPin, { recursive: true, force: true }),
  },
  'attach with the BPF objects missing': { node: 3, args: attach3, env: { PODNET_BPF_DIR: '/nonexistent' }, want: 'is missing' },
  'attach without privileges': { node: 3, args: attach3, user: true, want: 'missing capabilities' },
  'attach --device lo on a fresh node': {
    node: 3,
    args: ['attach', '--node-ip', '127.0.0.1', '--pod-cidr', '10.244.3.0/24', '--device', 'lo'],
    want: 'loopback',
  },

  // endpoints add
  'endpoints add outside the pod CIDR': { args: addEp('10.244.2.10', 'vp12'), want: "outside this node's pod CIDR" },
  'endpoints add the network address': { args: addEp('10.244.1.0', 'vp12'), want: 'network address' },
  'endpoints add the broadcast address': { args: addEp('10.244.1.255', 'vp12'), want: 'broadcast address' },
  'endpoints add a short IP': { args: addEp('10.244.1', 'vp12'), want: 'invalid endpoint IP' },
  'endpoints add an out-of-range IP': { args: addEp('10.244.1.300', 'vp12'), want: 'invalid endpoint IP' },
  'endpoints add an empty IP': { args: addEp('', 'vp12'), want: /--ip|invalid endpoint IP/ },
  'endpoints add on the node device': { args: addEp('10.244.1.20', 'eth0'), want: 'node device' },
  'endpoints add on the VXLAN device': { args: addEp('10.244.1.20', 'podnet_vxlan'), want: 'VXLAN device' },
  'endpoints add on lo': { args: addEp('10.244.1.20', 'lo'), want: 'loopback' },
  'endpoints add on an unknown device': { args: addEp('10.244.1.20', 'nope0'), want: 'interface "nope0" not found' },
  "endpoints add on the other node's pod device": { args: addEp('10.244.1.20', 'vp21'), want: 'interface "vp21" not found' },
  'endpoints add on a non-veth device': {
    args: addEp('10.244.1.20', 'pngdvx0'),
    want: 'a vxlan device',
    setup: () => must('ip', ['-n', n1.ns, 'link', 'add', 'pngdvx0', 'type', 'vxlan', 'id', '42', 'dstport', '4789', 'dev', 'eth0']),
    cleanup: () => sh('ip', ['-n', n1.ns, 'link', 'del', 'pngdvx0']),
  },
  ...(netkit
    ? {
        'endpoints add on the pod side of a netkit pair': {
          args: addEp('10.244.1.20', 'pngdnkp'),
          want: 'pod side of a netkit pair',
          setup: () =>
            must('nsenter', [
              `--net=/run/netns/${n1.ns}`,
              'node',
              '-e',
              `import('${join(CLI, '..', '..', 'dist', 'libbpf', 'index.js')}').then((m) => m.createNetkit({ name: 'pngdnkh', peerName: 'pngdnkp' }))`,
            ]),
          cleanup: () => sh('ip', ['-n', n1.ns, 'link', 'del', 'pngdnkh']),
        },
      }
    : {}),
  'endpoints add with a malformed MAC': { args: addEp('10.244.1.20', 'vp12', '--mac', 'zz:00:00:00:00:01'), want: 'invalid MAC' },
  'endpoints add with a short MAC': { args: addEp('10.244.1.20', 'vp12', '--mac', '02:00:00:00:01'), want: 'invalid MAC' },
  'endpoints add an IP taken on another device': { args: addEp('10.244.1.11', 'vp12'), want: 'already an endpoint' },
  'endpoints add over a static route for the pod IP': {
    args: addEp('10.244.1.20', 'vp12'),
    want: 'did not install',
    ...foreignRoute('10.244.1.20/32', 'dev', 'vp12'),
  },
  'endpoints add without --ifname': { args: ['endpoints', 'add', '--ip', '10.244.1.20'], want: 'Missing required flag' },
  'endpoints add without --ip': { args: ['endpoints', 'add', '--ifname', 'vp12'], want: 'Missing required flag' },
  'endpoints add, --json': { args: addEp('10.244.1.0', 'vp12'), want: 'network address', json: true },
  'endpoints add without privileges': { args: addEp('10.244.1.20', 'vp12'), user: true, want: 'missing capabilities' },
  // endpoints del / list
  'endpoints del of no endpoint': { args: ['endpoints', 'del', '--ip', '10.244.1.99'], want: 'no endpoint 10.244.1.99' },
  'endpoints del of a malformed IP': { args: ['endpoints', 'del', '--ip', '10.244.1.x'], want: 'invalid endpoint IP' },
  'endpoints del without --ip': { args: ['endpoints', 'del'], want: 'Missing required flag' },
  'endpoints del without privileges': { args: ['endpoints', 'del', '--ip', '10.244.1.11'], user: true, want: 'missing capabilities' },
  'endpoints list with an unknown flag': { args: ['endpoints', 'list', '--all'], want: 'Nonexistent flag: --all' },

  // routes add
  "routes add the node's own pod CIDR": { args: addRoute('10.244.1.0/24', n2.ip), want: "overlaps this node's own pod CIDR" },
  "routes add a CIDR over the node's own": { args: addRoute('10.244.0.0/16', n2.ip), want: "overlaps this node's own pod CIDR" },
  'routes add overlapping another route': { args: addRoute('10.244.2.128/25', n2.ip), want: 'overlaps route 10.244.2.0/24' },
  'routes add the underlay subnet': { args: addRoute('192.168.77.0/24', n2.ip), want: "contains this node's IP" },
  'routes add half the underlay subnet': { args: addRoute('192.168.77.128/25', n2.ip), want: "device's subnet 192.168.77.0/24" },
  'routes add a supernet of the underlay': { args: addRoute('192.168.0.0/16', n2.ip), want: "contains this node's IP" },
  'routes add the default route': { args: addRoute('0.0.0.0/0', n2.ip), want: 'overlaps' },
  'routes add via this node': { args: addRoute('10.244.3.0/24', n1.ip), want: "this node's own IP" },
  'routes add containing its peer': { args: addRoute('10.244.3.0/24', '10.244.3.1'), want: 'contains its own node IP' },
  'routes add via 0.0.0.0': { args: addRoute('10.244.3.0/24', '0.0.0.0'), want: 'unspecified' },
  'routes add via broadcast': { args: addRoute('10.244.3.0/24', '255.255.255.255'), want: 'broadcast' },
  'routes add via loopback': { args: addRoute('10.244.3.0/24', '127.0.0.1'), want: 'loopback' },
  'routes add via multicast': { args: addRoute('10.244.3.0/24', '224.0.0.5'), want: 'multicast' },
  'routes add via an out-of-range IP': { args: addRoute('10.244.3.0/24', '192.168.77.300'), want: 'invalid node IP' },
  'routes add a /240': { args: addRoute('10.244.3.0/240', n2.ip), want: 'invalid route CIDR' },
  'routes add with host bits': { args: addRoute('10.244.3.5/24', n2.ip), want: 'host bits are set' },
  'routes add without prefix': { args: addRoute('10.244.3.0', n2.ip), want: 'invalid route CIDR' },
  'routes add a word': { args: addRoute('pods', n2.ip), want: 'invalid route CIDR' },
  'routes add the loopback block': { args: addRoute('127.0.0.0/24', n2.ip), want: '127.0.0.0/8' },
  'routes add a multicast block': { args: addRoute('224.0.0.0/24', n2.ip), want: '224.0.0.0/4' },
  'routes add with an unknown encap': { args: addRoute('10.244.3.0/24', n2.ip, '--encap', 'gre'), want: '--encap' },
  'routes add direct to an off-link peer': {
    args: addRoute('10.244.3.0/24', '10.9.9.9', '--encap', 'none'),
    want: 'cannot be reached directly',
  },
  'routes add over a static route': {
    args: addRoute('10.60.0.0/24', n2.ip),
    want: 'did not install',
    ...foreignRoute('10.60.0.0/24', 'via', '192.168.77.254'),
  },
  'routes add without --node-ip': { args: ['routes', 'add', '10.244.3.0/24'], want: 'Missing required flag' },
  'routes add without a CIDR': { args: ['routes', 'add', '--node-ip', n2.ip], want: 'Missing 1 required arg' },
  'routes add with an extra argument': { args: [...addRoute('10.244.3.0/24', n2.ip), 'extra'], want: /unexpected argument/i },
  'routes add, --json': { args: addRoute('10.244.1.0/24', n2.ip), want: "overlaps this node's own pod CIDR", json: true },
  'routes add unknown flag, --json': { args: addRoute('10.244.3.0/24', n2.ip, '--bogus'), want: 'Nonexistent flag: --bogus', json: true },
  'routes add without privileges': { args: addRoute('10.244.3.0/24', n2.ip), user: true, want: 'missing capabilities' },
  // routes del / list
  'routes del of no route': { args: ['routes', 'del', '10.244.9.0/24'], want: 'no route for 10.244.9.0/24' },
  'routes del of a malformed CIDR': { args: ['routes', 'del', '10.244.9.0/99'], want: 'invalid route CIDR' },
  'routes del with host bits': { args: ['routes', 'del', '10.244.2.5/24'], want: 'host bits are set' },
  'routes del without privileges': { args: ['routes', 'del', '10.244.2.0/24'], user: true, want: 'missing capabilities' },
  'routes list with an extra argument': { args: ['routes', 'list', 'x'], want: /unexpected argument/i },
  // routes sync
  'routes sync missing file': { args: sync(join(files, 'none.json')), want: 'no such file' },
  'routes sync /dev/zero': { args: sync('/dev/zero'), want: 'not a regular file' },
  'routes sync /dev/urandom': { args: sync('/dev/urandom'), want: 'not a regular file' },
  'routes sync a directory': { args: sync(files), want: 'not a regular file' },
  'routes sync oversized': {
    args: sync(join(files, 'huge.json')),
    want: 'byte limit',
    setup: () => {
      file('huge.json', '')
      truncateSync(join(files, 'huge.json'), 17 * 1024 * 1024)
    },
  },
  'routes sync malformed': { args: sync(file('r-bad.json', '[{"cidr": "10.244.2.0/24",\n "nodeIp": "192.168.77.2"}')), want: /line \d/ },
  'routes sync an object': { args: sync(routesFile('r-obj.json', { cidr: '10.244.2.0/24' })), want: /expected array/i },
  'routes sync empty': { args: sync(file('r-empty.json', '')), want: 'routes file' },
  'routes sync binary': { args: sync(file('r-bin.json', Buffer.from([0xff, 0, 0x80]))), want: 'not UTF-8 text' },
  'routes sync unknown key': { args: sync(routesFile('r-key.json', [{ cidr: '10.244.2.0/24', nodeIp: n2.ip, vni: 3 }])), want: 'vni' },
  'routes sync duplicate key': {
    args: sync(file('r-dup.json', `[{"cidr":"10.244.2.0/24","nodeIp":"${n2.ip}",\n"cidr":"10.244.3.0/24"}]`)),
    want: 'line 2: duplicate key "cidr"',
  },
  'routes sync the same CIDR twice': {
    args: sync(
      routesFile('r-twice.json', [
        { cidr: '10.244.2.0/24', nodeIp: n2.ip },
        { cidr: '10.244.2.0/24', nodeIp: n2.ip },
      ]),
    ),
    want: 'listed twice',
  },
  'routes sync overlapping routes': {
    args: sync(
      routesFile('r-ovl.json', [
        { cidr: '10.244.2.0/24', nodeIp: n2.ip },
        { cidr: '10.244.2.0/23', nodeIp: n2.ip },
      ]),
    ),
    want: 'overlaps route',
  },
  'routes sync a route via this node': {
    args: sync(routesFile('r-self.json', [{ cidr: '10.244.3.0/24', nodeIp: n1.ip }])),
    want: "this node's own IP",
  },
  "routes sync the node's own CIDR": { args: sync(routesFile('r-own.json', [{ cidr: n1.podCidr, nodeIp: n2.ip }])), want: 'own pod CIDR' },
  'routes sync the underlay': { args: sync(routesFile('r-ul.json', [{ cidr: '192.168.77.0/24', nodeIp: n2.ip }])), want: "this node's IP" },
  'routes sync a bad node IP': {
    args: sync(routesFile('r-ip.json', [{ cidr: '10.244.2.0/24', nodeIp: '10.0.0' }])),
    want: 'invalid node IP',
  },
  'routes sync a bad encap': {
    args: sync(routesFile('r-enc.json', [{ cidr: '10.244.2.0/24', nodeIp: n2.ip, encap: 'ipip' }])),
    want: 'encap',
  },
  'routes sync over a static route': {
    args: sync(routesFile('r-static.json', [{ cidr: '10.60.0.0/24', nodeIp: n2.ip }])),
    want: 'did not install',
    ...foreignRoute('10.60.0.0/24', 'via', '192.168.77.254'),
  },
  'routes sync more routes than the map holds': {
    args: sync(join(files, 'r-full.json')),
    want: '16385 routes do not fit: the map holds at most 16384',
    setup: () => {
      const rs = Array.from({ length: 16_385 }, (_, i) => ({ cidr: `10.${100 + (i >> 8)}.${i & 255}.0/24`, nodeIp: n2.ip }))
      routesFile('r-full.json', rs)
    },
  },
  'routes sync without --file': { args: ['routes', 'sync'], want: 'Missing required flag' },
  'routes sync unreadable (not root)': {
    args: sync(join(files, 'r-secret.json')),
    user: true,
    want: 'permission denied',
    setup: () => chmodSync(routesFile('r-secret.json', []), 0o600),
  },
  'routes sync, --json': { args: [...sync('/dev/zero')], want: 'not a regular file', json: true },

  // state and pins that are not what they should be
  'routes list with a corrupt state file': { args: ['routes', 'list'], want: 'is corrupt', ...withStateText('{"version": 1, "pinDir": ') },
  'routes add with a corrupt state file': { args: addRoute('10.244.3.0/24', n2.ip), want: 'is corrupt', ...withStateText('garbage') },
  'endpoints add with a state of the wrong shape': {
    args: addEp('10.244.1.20', 'vp12'),
    want: 'is corrupt',
    ...withStateText('{"version": 1, "pinDir": 7}'),
  },
  're-attach over a corrupt state file': { args: attach1, want: 'is corrupt', ...withStateText('[]') },
  'detach with a corrupt state file': { args: ['detach'], want: 'is corrupt', ...withStateText('{') },
  'routes list when the pins are gone': { args: ['routes', 'list'], pin: ghostPin, want: 'lacks podnet_endpoints', ...ghostState },
  'routes add when the pins are gone': { args: addRoute('10.244.3.0/24', n2.ip), pin: ghostPin, want: 'lacks', ...ghostState },
  'endpoints add when the pins are gone': { args: addEp('10.244.1.20', 'vp12'), pin: ghostPin, want: 'lacks', ...ghostState },
  'routes list on a never-attached pin dir': { node: 3, args: ['routes', 'list'], want: 'not attached' },
  'endpoints add on a never-attached pin dir': { node: 3, args: addEp('10.244.3.20', 'eth1'), want: 'not attached' },
  'routes add with a pin dir on a non-bpf filesystem': { args: addRoute('10.244.3.0/24', n2.ip), pin: tmpPin, want: 'not attached' },

  // another node's pin dir, and a second podnet in one namespace
  "detach of another node's pin dir": { args: ['detach'], pin: n2.pinDir, want: 'belongs to network namespace' },
  "routes del with another node's pin dir": { args: ['routes', 'del', n1.podCidr], pin: n2.pinDir, want: 'belongs to network namespace' },
  "routes add with another node's pin dir": {
    args: addRoute('10.244.3.0/24', n2.ip),
    pin: n2.pinDir,
    want: 'belongs to network namespace',
  },
  "endpoints add with another node's pin dir": { args: addEp('10.244.2.20', 'vp12'), pin: n2.pinDir, want: 'belongs to network namespace' },
  "endpoints del with another node's pin dir": {
    args: ['endpoints', 'del', '--ip', '10.244.2.11'],
    pin: n2.pinDir,
    want: 'belongs to network namespace',
  },
  "attach with another node's pin dir": { args: attach1, pin: n2.pinDir, want: 'belongs to network namespace' },
  'a second attach in the same namespace with another pin dir': {
    args: attach1,
    pin: `/sys/fs/bpf/${id}-second`,
    want: 'already attached in this network namespace',
  },

  // the other commands
  'detach --pin-dir relative': { args: ['detach'], pin: 'relative/dir', want: 'not an absolute path' },
  'detach without privileges': { args: ['detach'], user: true, want: 'missing capabilities' },
  'detach with an extra argument': { args: ['detach', 'now'], want: /unexpected argument/i },
  'status with an unknown flag': { args: ['status', '--verbose'], want: 'Nonexistent flag: --verbose' },
  'status without privileges': { args: ['status'], user: true, want: 'missing capabilities' },
  'maps dump of an unknown map': { args: ['maps', 'dump', 'nosuchmap'], want: 'no map "nosuchmap"' },
  'maps dump without privileges': { args: ['maps', 'dump', 'podnet_routes'], user: true, want: 'missing capabilities' },
  'maps list with an unknown flag, --json': { args: ['maps', 'list', '--raw'], want: 'Nonexistent flag: --raw', json: true },
  'explain a malformed destination': { args: ['explain', '10.244.1.11', '10.244.2.300'], want: 'invalid destination IP' },
  'explain a malformed source': { args: ['explain', '10.244.1', '10.244.2.10'], want: 'invalid source IP' },
  'explain a port out of range': {
    args: ['explain', '10.244.1.11', '10.244.2.10', '--proto', 'tcp', '--dport', '70000'],
    want: '--dport 70000',
  },
  'explain a negative port': { args: ['explain', '10.244.1.11', '10.244.2.10', '--proto', 'udp', '--dport', '-1'], want: '--dport -1' },
  'explain an unknown protocol': { args: ['explain', '10.244.1.11', '10.244.2.10', '--proto', 'sctp'], want: '--proto' },
  'explain a TTL out of range': { args: ['explain', '10.244.1.11', '10.244.2.10', '--ttl', '300'], want: '--ttl 300' },
  'explain an oversized packet': { args: ['explain', '10.244.1.11', '10.244.2.10', '--size', '100000'], want: '--size 100000' },
  'explain without a destination': { args: ['explain', '10.244.1.11'], want: 'Missing 1 required arg' },
  'monitor a malformed --ip': { args: ['monitor', '--ip', '1.2.3', '--duration', '1'], want: 'invalid --ip' },
  'monitor an unknown --type': { args: ['monitor', '--type', 'everything', '--duration', '1'], want: '--type' },
  'monitor --count 0': { args: ['monitor', '--count', '0'], want: '--count' },
  'metrics serve --port out of range': { args: ['metrics', 'serve', '--port', '70000'], want: '65535' },
  'metrics serve --address that does not resolve': {
    args: ['metrics', 'serve', '--address', 'no-such-host.invalid'],
    want: 'not an IP address or a name this host resolves',
  },
  'metrics serve --address not of this host': {
    args: ['metrics', 'serve', '--address', '192.0.2.1', '--port', '0'],
    want: 'not an address of this host',
  },
  'metrics --interval 0': { args: ['metrics', '--watch', '--interval', '0'], want: '--interval' },
  'doctor with an unknown flag, --json': { args: ['doctor', '--fix'], want: 'Nonexistent flag: --fix', json: true },
  'an unknown command': { args: ['rootes', 'list'], pin: false, want: 'unknown command "rootes list"' },
}

// ---- running a case --------------------------------------------------------

/** The CLI, without blocking the test worker's event loop (vitest's RPC). */
function spawnAsync(cmd: string, args: string[], envv: NodeJS.ProcessEnv): Promise<Result> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: envv, timeout: 60_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number | string; signal?: string }) | null
      resolve({ status: e ? (typeof e.code === 'number' ? e.code : null) : 0, stdout, stderr } as Result)
    })
  })
}

function runCase(c: Case): Promise<Result> {
  const pin = c.pin === false ? [] : ['--pin-dir', c.pin ?? pinOf(c.node ?? 1)]
  const args = [...c.args, ...pin, ...(c.json ? ['--json'] : [])]
  const full = { ...process.env, ...env, ...c.env }
  const ns = `--net=/run/netns/${nsOf(c.node ?? 1)}`
  if (c.user) {
    const drop = ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all']
    return spawnAsync('nsenter', [ns, 'setpriv', ...drop, 'node', CLI, ...args], { ...full, HOME: tmpdir() })
  }
  return spawnAsync('nsenter', [ns, 'node', CLI, ...args], full)
}

function expectOneLineError(c: Case, r: Result): void {
  expect(r.status, `exit status\n${r.stdout}${r.stderr}`).not.toBe(0)
  expect(r.status, 'not killed by a signal').not.toBeNull()
  if (c.json) {
    const doc = JSON.parse(r.stdout) as { error: { message: string; hint: string | null } }
    expect(Object.keys(doc)).toEqual(['error'])
    expect(doc.error.message).not.toContain('\n')
    expect(doc.error.hint).toBeTruthy()
    expect(r.stdout.length).toBeLessThan(2000)
    if (typeof c.want === 'string') expect(doc.error.message).toContain(c.want)
    else expect(doc.error.message).toMatch(c.want)
    return
  }
  expect(r.stderr, 'one "Error:" line, then one "Fix:" line').toMatch(/^Error: [^\n]+\nFix: [^\n]+\n$/)
  if (typeof c.want === 'string') expect(r.stderr.split('\n')[0]).toContain(c.want)
  else expect(r.stderr.split('\n')[0]).toMatch(c.want)
}

beforeAll(() => {
  topo.up()
  loneNodeNs(n3.ns, `${n3.ip}/24`)
  for (const n of [n1, n2])
    cliJson(n.ns, ['attach', '--node-ip', n.ip, '--pod-cidr', n.podCidr, '--device', 'eth0', '--mode', 'auto', '--pin-dir', n.pinDir], env)
  const p11 = topo.addPod(n1, 1, 1450)
  topo.addPod(n1, 2, 1450) // vp12: a pod device with no endpoint yet
  const p21 = topo.addPod(n2, 1, 1450)
  cliJson(n1.ns, ['endpoints', 'add', '--ip', p11.ip, '--ifname', p11.hostIf, '--pin-dir', n1.pinDir], env)
  cliJson(n2.ns, ['endpoints', 'add', '--ip', p21.ip, '--ifname', p21.hostIf, '--pin-dir', n2.pinDir], env)
  cliJson(n1.ns, ['routes', 'add', n2.podCidr, '--node-ip', n2.ip, '--pin-dir', n1.pinDir], env)
  cliJson(n2.ns, ['routes', 'add', n1.podCidr, '--node-ip', n1.ip, '--pin-dir', n2.pinDir], env)
}, 120_000)

afterAll(() => {
  for (const n of [n1, n2]) cli(n.ns, ['detach', '--pin-dir', n.pinDir], env)
  topo.down()
  sh('ip', ['netns', 'del', n3.ns])
  const extra = ['deep', 'shared', 'second'].map((s) => `/sys/fs/bpf/${id}-${s}`)
  for (const d of [n1.pinDir, n2.pinDir, n3.pinDir, ghostPin, foreignPin, tmpPin, ...extra]) rmSync(d, { recursive: true, force: true })
  rmSync(stateDir, { recursive: true, force: true })
  rmSync(files, { recursive: true, force: true })
})

describe('bad input is refused with one line and a fix, and changes nothing', () => {
  it('has at least 120 cases', () => {
    expect(Object.keys(cases).length).toBeGreaterThanOrEqual(120)
  })

  let last: Record<string, string> | null = null
  it.each(Object.entries(cases))('%s', async (_name, c) => {
    if (c.setup) {
      c.setup()
      last = null
    }
    try {
      const before = last ?? snapshot()
      const r = await runCase(c)
      const after = snapshot()
      last = c.cleanup ? null : after
      expectOneLineError(c, r)
      expect(after, 'nothing changed').toEqual(before)
    } finally {
      c.cleanup?.()
    }
  })
})

describe('a routes sync that fails half-way leaves everything as it was', () => {
  it('puts back the map and the kernel routes when the VXLAN device vanished', async () => {
    // the overlay device removed behind podnet's back: the map write works,
    // the kernel route through the device cannot
    must('ip', ['-n', n1.ns, 'link', 'del', 'podnet_vxlan'])
    try {
      const before = snapshot()
      const rs = [
        { cidr: n2.podCidr, nodeIp: n2.ip },
        { cidr: '10.244.7.0/24', nodeIp: '10.9.9.7', encap: 'vxlan' },
      ]
      const r = await runCase({ args: sync(routesFile('r-vx.json', rs)), want: 'podnet_vxlan is gone' })
      expectOneLineError({ args: [], want: 'device podnet_vxlan is gone' }, r)
      expect(snapshot()).toEqual(before)
    } finally {
      cliJson(n1.ns, [...attach1, '--pin-dir', n1.pinDir], env)
    }
  })
})

describe('files and pins are root-only; detach removes only our pins', () => {
  it('keeps the state file 0600 in a 0700 directory, and pins 0600', () => {
    expect(statSync(stateDir).mode & 0o777).toBe(0o700)
    expect(statSync(statePath(n1.pinDir)).mode & 0o777).toBe(0o600)
    expect(statSync(n1.pinDir).mode & 0o777).toBe(0o700)
    for (const f of readdirSync(n1.pinDir)) expect(statSync(join(n1.pinDir, f)).mode & 0o777, f).toBe(0o600)
  })

  it('creates a missing state directory 0700', () => {
    const root = mkdtempSync(join(tmpdir(), 'pngd-sd-'))
    const dir = join(root, 'nested', 'state')
    try {
      cliJson(n3.ns, [...attach3, '--pin-dir', n3.pinDir], { PODNET_STATE_DIR: dir })
      expect(statSync(dir).mode & 0o777).toBe(0o700)
      expect(statSync(join(dir, `${n3.pinDir.replace(/\//g, '_')}.json`)).mode & 0o777).toBe(0o600)
    } finally {
      cli(n3.ns, ['detach', '--pin-dir', n3.pinDir], { PODNET_STATE_DIR: dir })
      rmSync(root, { recursive: true, force: true })
    }
    expect(existsSync(n3.pinDir)).toBe(false)
  })

  it("leaves another tool's pins in a shared pin dir through attach and detach", () => {
    const shared = `/sys/fs/bpf/${id}-shared`
    const dir = mkdtempSync(join(tmpdir(), 'pngd-sd-'))
    must('mkdir', ['-p', shared])
    try {
      for (const name of ['other_tool_map', 'podnet_routes_backup', 'prog_other'])
        must('bpftool', ['map', 'create', `${shared}/${name}`, 'type', 'hash', 'key', '4', 'value', '4', 'entries', '4', 'name', 'other'])
      cliJson(n3.ns, [...attach3, '--pin-dir', shared], { PODNET_STATE_DIR: dir })
      execFileSync('nsenter', [`--net=/run/netns/${n3.ns}`, 'node', CLI, 'detach', '--pin-dir', shared], {
        env: { ...process.env, PODNET_STATE_DIR: dir },
      })
      expect(readdirSync(shared).sort()).toEqual(['other_tool_map', 'podnet_routes_backup', 'prog_other'])
    } finally {
      rmSync(shared, { recursive: true, force: true })
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('a failed first attach leaves no directory it created and no pin', () => {
    const deep = `/sys/fs/bpf/${id}-deep/a/b`
    const r = cli(n3.ns, [...attach3, '--pin-dir', deep], { ...env, PODNET_BPF_DIR: '/nonexistent' })
    expect(r.status).not.toBe(0)
    expect(existsSync(`/sys/fs/bpf/${id}-deep`)).toBe(false)
    // a failure after the pins were made (the second program fails to load)
    const broken = mkdtempSync(join(tmpdir(), 'pngd-objs-'))
    for (const f of readdirSync(join(CLI, '..', '..', 'bpf', 'build'))) {
      const src = join(CLI, '..', '..', 'bpf', 'build', f)
      writeFileSync(join(broken, f), f === 'from_netdev.bpf.o' ? Buffer.from('not an ELF object') : readFileSync(src))
    }
    const r2 = cli(n3.ns, [...attach3, '--pin-dir', deep], { ...env, PODNET_BPF_DIR: broken })
    rmSync(broken, { recursive: true, force: true })
    expect(r2.status).not.toBe(0)
    expect(existsSync(`/sys/fs/bpf/${id}-deep`)).toBe(false)
    expect(sh('ip', ['-n', n3.ns, 'link', 'show', 'podnet_vxlan']).status).not.toBe(0)
  })
})

describe('doctor on an attached node', () => {
  it('finds VXLAN support although our own collect_md device holds the port', () => {
    const r = cliJson<{ checks: { name: string; ok: boolean; detail: string }[] }>(n1.ns, ['doctor'], env)
    const vx = r.checks.find((c) => c.name === 'vxlan')!
    expect(vx.ok, vx.detail).toBe(true)
  })
})
