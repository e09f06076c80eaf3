// Issue 4: the `podnet-bpf lab` commands themselves — two labs side by side,
// status / exec / ping, refusing to overwrite a lab, help, and `lab down`
// cleaning up after a `lab up` that was SIGKILLed half-way.
import { existsSync, readdirSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { LabStatus } from '../../src/services/lab/lab.js'
import { podHostIfName } from '../../src/datapath/pod.js'
import { CLI, kernelHasNetkit, listNetns, sh, sleep } from '../support/sys.js'
import { BPFFS, labName, spawnAsync, TestLab } from './helpers.js'

describe('podnet-bpf lab', () => {
  const a = new TestLab(labName('la'))
  // same state dir: the two labs must not see or disturb each other's files
  const b = new TestLab(labName('lb'), a.env.PODNET_STATE_DIR)

  beforeAll(async () => {
    await a.up(['--mode', 'direct', '--nodes', '2', '--pods-per-node', '1'])
    await b.up(['--mode', 'vxlan', '--nodes', '2', '--pods-per-node', '1'])
    console.log(`lab up (2 nodes × 1 pod): direct ${a.upSeconds.toFixed(2)}s, vxlan ${b.upSeconds.toFixed(2)}s (CLI wall time)`)
  })

  afterAll(async () => {
    await a.forceCleanup()
    await b.forceCleanup()
  })

  it('runs two labs with the same addressing side by side', async () => {
    for (const t of [a, b]) {
      const r = await t.lab_(['ping', 'node1-pod1', 'node2-pod1', '--count', '2'])
      expect(r.status, r.stderr).toBe(0)
      expect(r.stdout).toContain(
        t === a ? 'direct node1 (192.168.77.1) → node2 (192.168.77.2)' : 'VXLAN node1 (192.168.77.1) → node2 (192.168.77.2)',
      )
      expect(r.stdout).toContain('2 received')
    }
    const st = JSON.parse((await spawnAsync('node', [CLI, 'lab', 'status', '--json'], a.env).done).stdout) as { labs: LabStatus[] }
    expect(st.labs.filter((l) => l.name === a.name || l.name === b.name).map((l) => [l.name, l.health, l.mode])).toEqual(
      [
        [a.name, 'ready', 'direct'],
        [b.name, 'ready', 'vxlan'],
      ].sort(),
    )
  })

  it('refuses to bring up a lab that already exists', async () => {
    const r = await a.lab_(['up', '--nodes', '2'])
    expect(r.status).toBe(1)
    expect(r.stderr).toContain(`lab "${a.name}" already exists`)
    expect(r.stderr).toContain(`lab down --name ${a.name}`)
  })

  it('pings by name or IP, from pods and nodes, and says which path it takes', async () => {
    const byIp = await a.lab_(['ping', '10.244.2.10', '10.244.1.10', '-c', '1'])
    expect(byIp.status, byIp.stderr).toBe(0)
    expect(byIp.stdout).toContain('node2-pod1 (10.244.2.10) → node1-pod1 (10.244.1.10): direct')
    const nodeToPod = await b.lab_(['ping', 'node2', 'node1-pod1', '-c', '1'])
    expect(nodeToPod.status, nodeToPod.stderr).toBe(0)
    const podToNode = await b.lab_(['ping', 'node1-pod1', 'node2', '-c', '1'])
    expect(podToNode.status, podToNode.stderr).toBe(0)
    const unknown = await a.lab_(['ping', 'node1-pod1', 'node9-pod1'])
    expect(unknown.status).toBe(1)
    expect(unknown.stderr).toContain('is not a pod or node')
  })

  it("runs commands in a pod's or node's namespace, with the node's pin dir preset", async () => {
    const addr = await a.lab_(['exec', 'node1-pod1', '--', 'ip', '-j', 'addr', 'show', 'eth0'])
    expect(addr.status, addr.stderr).toBe(0)
    const j = JSON.parse(addr.stdout)[0]
    expect(j.addr_info[0].local).toBe('10.244.1.10')
    expect(j.mtu).toBe(1500)
    const eps = await a.lab_(['exec', 'node2', '--', 'node', CLI, 'endpoints', 'list', '--json'])
    expect(eps.status, eps.stderr).toBe(0)
    expect((JSON.parse(eps.stdout) as { ip: string }[]).map((e) => e.ip)).toEqual(['10.244.2.10'])
    expect((await b.lab_(['exec', 'underlay', '--', 'ip', 'link', 'show', 'br-a'])).status).toBe(0)
    expect((await a.lab_(['exec', 'node1-pod1', '--', 'false'])).status).toBe(1)
    // run as installed (the #! line drops NODE_EXTRA_CA_CERTS for the CLI's
    // own start-up), the user's command still gets the variable
    const ca = await spawnAsync(
      CLI,
      [
        'lab',
        'exec',
        'node1-pod1',
        '--name',
        a.name,
        '--',
        'sh',
        '-c',
        'echo "[$NODE_EXTRA_CA_CERTS][${PODNET_NODE_EXTRA_CA_CERTS-unset}]"',
      ],
      {
        ...a.env,
        NODE_EXTRA_CA_CERTS: '/etc/ssl/certs/ca-certificates.crt',
      },
    ).done
    expect(ca.status, ca.stderr).toBe(0)
    expect(ca.stdout.trim()).toBe('[/etc/ssl/certs/ca-certificates.crt][unset]')
  })

  it('removes one lab without disturbing the other, and says so when run again', async () => {
    const r = await a.down()
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toContain(`removed lab "${a.name}": 2 nodes detached, 5 namespaces, 2 pin dirs`)
    expect(a.leftovers()).toEqual([])
    expect((await a.down()).stdout).toContain('nothing to remove')
    expect((await b.lab_(['ping', 'node1-pod1', 'node2-pod1', '-c', '2'])).status).toBe(0)
    expect((await b.down()).status).toBe(0)
    expect(b.leftovers()).toEqual([])
    expect(
      readdirSync(a.env.PODNET_STATE_DIR!, { recursive: true })
        .map(String)
        .filter((f) => f.endsWith('.json')),
    ).toEqual([])
  })

  it('cleans up a lab whose `lab up` was SIGKILLed half-way', async () => {
    const c = new TestLab(labName('lc'))
    try {
      const up = spawnAsync('node', [CLI, 'lab', 'up', '--name', c.name, '--nodes', '3'], c.env)
      // wait until the node agents are attaching (first pin dir appears)
      const deadline = performance.now() + 60_000
      while (!(existsSync(BPFFS) && readdirSync(BPFFS).some((d) => d.startsWith(c.prefix))) && performance.now() < deadline) await sleep(5)
      up.child.kill('SIGKILL')
      const r = await up.done
      expect(r.signal).toBe('SIGKILL')
      expect(c.leftovers().length).toBeGreaterThan(0)
      const st = JSON.parse((await spawnAsync('node', [CLI, 'lab', 'status', '--name', c.name, '--json'], c.env).done).stdout) as {
        labs: LabStatus[]
      }
      expect(st.labs[0]?.health).toBe('crashed')
      const down = await c.down()
      expect(down.status, down.stderr).toBe(0)
      expect(c.leftovers()).toEqual([])
      expect(listNetns().filter((n) => n.startsWith(c.prefix))).toEqual([])
      expect((await c.down()).stdout).toContain('nothing to remove')
    } finally {
      await c.forceCleanup()
    }
  })

  it('brings up netkit pods where the kernel has netkit, and otherwise refuses cleanly', async () => {
    const c = new TestLab(labName('lk'))
    try {
      const want = kernelHasNetkit()
      const r = await c.lab_(['up', '--mode', 'direct', '--nodes', '2', '--pods-per-node', '2', '--pod-device', 'netkit'])
      if (want !== null) expect(r.status === 0, `kernel ${want ? 'has' : 'lacks'} netkit; lab up said: ${r.stderr}`).toBe(want)
      if (r.status === 0) {
        // host side of the pair is a netkit device carrying from-pod; pods reach each other across and within nodes
        const d = sh('ip', ['-n', `${c.prefix}node1`, '-d', '-j', 'link', 'show', 'dev', podHostIfName(`${c.prefix}node1-pod1`, 'eth0')])
        expect((JSON.parse(d.stdout) as { linkinfo?: { info_kind?: string } }[])[0]?.linkinfo?.info_kind).toBe('netkit')
        for (const [from, to] of [
          ['node1-pod1', 'node2-pod2'],
          ['node1-pod1', 'node1-pod2'],
          ['node1', 'node1-pod2'],
          ['node2-pod1', 'node1'],
        ]) {
          const p = await c.lab_(['ping', from!, to!, '-c', '2'])
          expect(p.status, `${from} → ${to}: ${p.stderr}`).toBe(0)
        }
        expect((await c.down()).status).toBe(0)
      } else {
        expect(r.status).toBe(1)
        expect(r.stderr).toContain('this kernel has no netkit devices')
        expect(r.stderr).toContain('--pod-device veth')
        // a failed lab up takes its partial lab down itself
        expect(c.leftovers()).toEqual([])
        expect(listNetns().filter((n) => n.startsWith(c.prefix))).toEqual([])
      }
    } finally {
      await c.forceCleanup()
    }
  })

  it('has examples in every lab command’s help', async () => {
    for (const cmd of ['up', 'down', 'status', 'exec', 'ping']) {
      const r = sh('node', [CLI, 'lab', cmd, '--help'])
      expect(r.status, cmd).toBe(0)
      expect(r.stdout, cmd).toContain('EXAMPLES')
      expect(r.stdout, cmd).toContain(`podnet-bpf lab ${cmd}`)
    }
  })
})
