// containerd 1.6 through CRI, as kubelet drives it: RunPodSandbox →
// StopPodSandbox → RemovePodSandbox on two nodes, each node with its own
// containerd (own root, state, socket, config pointing at the conflist that
// `podnet-bpf cni install` wrote). containerd calls the plugin with kubelet's
// CNI_ARGS (K8S_POD_NAMESPACE, K8S_POD_NAME, …) and portmap after it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { cli, cliJson, must, runId, sh } from '../support/sys.js'
import { ping } from '../support/traffic.js'
import { Containerd, buildPauseImage, processesUnder, sandboxConfig } from './cri.js'
import { CniLab, linksIn, tcpClient, tcpServer, type CniNode } from './harness.js'
import { existsSync, readdirSync, readFileSync } from 'node:fs'

const lab = new CniLab(runId('pncni-'), 2)
const runtimes: Containerd[] = []
let n1: CniNode
let n2: CniNode
let c1: Containerd
let c2: Containerd
const logDir = join(lab.stateDir, 'pod-logs')

beforeAll(async () => {
  lab.up()
  ;[n1, n2] = lab.nodes as [CniNode, CniNode]
  const image = buildPauseImage(join(lab.stateDir, 'image'))
  for (const n of lab.nodes) {
    const dir = join(lab.stateDir, `containerd-${n.name}`)
    const cni = { binDir: join(dir, 'cni-bin'), confDir: join(dir, 'net.d') }
    const inst = cli(
      null,
      [
        'cni',
        'install',
        '--bin-dir',
        cni.binDir,
        '--conf-dir',
        cni.confDir,
        '--pin-dir',
        n.pinDir,
        '--network',
        `${lab.id}-${n.name}`,
        '--ipam-data-dir',
        lab.ipamDir,
      ],
      lab.env,
    )
    if (inst.status !== 0) throw new Error(inst.stderr)
    const c = new Containerd(n.ns, dir, cni, lab.env)
    runtimes.push(c)
    await c.start()
    c.importImage(image)
  }
  ;[c1, c2] = runtimes as [Containerd, Containerd]
}, 300_000)

afterAll(async () => {
  // sandboxes a failed test left: removed through CRI while containerd runs, then everything killed by pid
  for (const c of runtimes) {
    try {
      if (c.client) for (const s of (await c.client.listPodSandbox({})).items) await removeSandbox(c, s.id).catch(() => {})
    } catch {
      /* containerd gone */
    }
    await c.destroy()
  }
  lab.down()
}, 300_000)

async function runSandbox(c: Containerd, name: string): Promise<{ id: string; ip: string }> {
  const { podSandboxId: id } = await c.client!.runPodSandbox({ config: sandboxConfig(name, { logDir }) }).catch((e: Error) => {
    throw new Error(`RunPodSandbox ${name}: ${e.message}\ncontainerd log:\n${c.logTail()}`)
  })
  const { status } = await c.client!.podSandboxStatus({ podSandboxId: id })
  expect(status.state).toBe('SANDBOX_READY')
  return { id, ip: status.network!.ip }
}

async function removeSandbox(c: Containerd, id: string): Promise<void> {
  await c.client!.stopPodSandbox({ podSandboxId: id })
  await c.client!.removePodSandbox({ podSandboxId: id })
}

/** The pod's network namespace (its path), from the plugin's attachment record. */
function podNetns(n: CniNode, sandboxId: string): string {
  const dir = join(lab.stateDir, 'cni', n.pinDir.replace(/\//g, '_'))
  for (const f of readdirSync(dir)) {
    const r = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { containerId: string; netns: string }
    if (r.containerId === sandboxId) return r.netns
  }
  throw new Error(`no CNI attachment for sandbox ${sandboxId}`)
}

function endpointIps(n: CniNode): string[] {
  return cliJson<{ ip: string }[]>(n.ns, ['endpoints', 'list', '--pin-dir', n.pinDir], lab.env).map((e) => e.ip)
}

function podLinks(n: CniNode): string[] {
  return linksIn(n.ns).filter((l) => /^pn[0-9a-f]{11}$/.test(l))
}

/** Nothing of any pod left on the node: endpoints, devices, IPs, attachment records. */
function expectClean(n: CniNode): void {
  expect(endpointIps(n)).toEqual([])
  expect(podLinks(n)).toEqual([])
  expect(lab.allocated().filter((ip) => ip.startsWith(n.podCidr.replace(/0\/24$/, '')))).toEqual([])
  expect(sh('sh', ['-c', `ls ${join(lab.stateDir, 'cni', n.pinDir.replace(/\//g, '_'))} 2>/dev/null`]).stdout.trim()).toBe('')
}

describe('containerd 1.6 through CRI', () => {
  it('runs pods on two nodes that exchange TCP and see each other’s pod IP, and removes them without a trace', async () => {
    const [a, b] = await Promise.all([runSandbox(c1, 'web-a'), runSandbox(c2, 'web-b')])
    expect(a.ip).toMatch(/^10\.250\.1\.\d+$/)
    expect(b.ip).toMatch(/^10\.250\.2\.\d+$/)
    expect(endpointIps(n1)).toEqual([a.ip])
    // kubelet's CNI_ARGS reached the plugin (its log names the pod; containerd orders the pairs at random)
    const added = readFileSync(join(lab.stateDir, 'cni.log'), 'utf8')
      .split('\n')
      .find((l) => l.includes('"msg":"pod added"') && l.includes(`"containerId":"${a.id}"`))
    expect(added).toBeDefined()
    const args = (JSON.parse(added!) as { args: string }).args.split(';')
    expect(args).toEqual(
      expect.arrayContaining(['IgnoreUnknown=1', 'K8S_POD_NAMESPACE=default', 'K8S_POD_NAME=web-a', `K8S_POD_INFRA_CONTAINER_ID=${a.id}`]),
    )
    const nsA = podNetns(n1, a.id)
    const nsB = podNetns(n2, b.id)
    const srv = await tcpServer(nsA, 8080)
    try {
      expect(tcpClient(nsB, a.ip, 8080)).toEqual({ peer: b.ip, local: a.ip })
    } finally {
      srv.close()
    }
    const srvB = await tcpServer(nsB, 8081)
    try {
      expect(tcpClient(nsA, b.ip, 8081)).toEqual({ peer: a.ip, local: b.ip })
    } finally {
      srvB.close()
    }
    await Promise.all([removeSandbox(c1, a.id), removeSandbox(c2, b.id)])
    expectClean(n1)
    expectClean(n2)
    expect(existsSync(nsA)).toBe(false)
  })

  it('runs 20 sandboxes created in parallel on one node, all reachable, and removes them in parallel', async () => {
    const pods = await Promise.all(Array.from({ length: 20 }, (_, i) => runSandbox(c1, `par-${i}`)))
    const ips = pods.map((p) => p.ip)
    expect(new Set(ips).size).toBe(20)
    expect(endpointIps(n1).sort()).toEqual([...ips].sort())
    expect(podLinks(n1)).toHaveLength(20)
    for (const ip of [ips[0]!, ips[19]!]) expect(ping(n2.ns, ip, { count: 1 }).status, `node2 → ${ip}`).toBe(0)
    await Promise.all(pods.map((p) => removeSandbox(c1, p.id)))
    expectClean(n1)
  })

  it('leaves no IPs, devices or endpoints behind when containerd restarts mid-way', async () => {
    const before = await Promise.all(['rs-1', 'rs-2', 'rs-3'].map((n) => runSandbox(c1, n)))
    await c1.crash()
    // the pods keep running and keep their network while containerd is down
    expect(ping(n2.ns, before[0]!.ip, { count: 1 }).status).toBe(0)
    await c1.start()
    const after = await runSandbox(c1, 'rs-4')
    expect(endpointIps(n1).sort()).toEqual([...before, after].map((p) => p.ip).sort())
    await Promise.all([...before, after].map((p) => removeSandbox(c1, p.id)))
    expect((await c1.client!.listPodSandbox({})).items).toEqual([])
    expectClean(n1)
  })

  it('kills containerd and every shim and pause process it started', async () => {
    const p = await runSandbox(c2, 'last')
    await removeSandbox(c2, p.id)
    for (const c of runtimes) {
      await c.destroy()
      expect(processesUnder(c.dir)).toEqual([])
    }
    expect(must('sh', ['-c', `grep -c ${lab.stateDir} /proc/self/mountinfo || true`]).trim()).toBe('0')
  })
})
