// deploy/podnet-bpf.yaml: every document parses, and the DaemonSet agrees with
// what the agent and the CLI really use (paths, port, probes, env). The RBAC
// side is checked against the agent's logged requests in
// test/agent/datastores/kubernetes.test.ts.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { loadAgentConfig } from '../../src/agent/config.js'
import { DEFAULT_PIN_DIR } from '../../src/services/config.js'
import { stateDir } from '../../src/services/state.js'
import { manifestDocs, type K8sObject } from '../support/kube.js'
import { ROOT } from '../support/sys.js'

const docs = manifestDocs()
const one = (kind: string): K8sObject => {
  const d = docs.filter((x) => x.kind === kind)
  expect(d, kind).toHaveLength(1)
  return d[0]!
}
const ds = one('DaemonSet')
const pod = ds.spec.template.spec
const agent = pod.containers.find((c: { name: string }) => c.name === 'agent')
const mountOf = (c: { volumeMounts: { mountPath: string; name: string }[] }, path: string) => {
  const m = c.volumeMounts.find((v) => v.mountPath === path)
  expect(m, `mount ${path}`).toBeDefined()
  const vol = pod.volumes.find((v: { name: string }) => v.name === m!.name)
  expect(vol, `volume ${m!.name}`).toBeDefined()
  return { ...m!, volume: vol }
}
const configMap = one('ConfigMap')
const agentConfig = parse(configMap.data['agent.yaml']) as Record<string, unknown>

describe('deploy/podnet-bpf.yaml', () => {
  it('parses, every document, into the objects the install needs, all in one namespace', () => {
    expect(docs.map((d) => d.kind)).toEqual(['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'DaemonSet'])
    const ns = one('Namespace').metadata.name
    for (const d of docs.filter((x) => ['ServiceAccount', 'ConfigMap', 'DaemonSet'].includes(x.kind))) expect(d.metadata.namespace).toBe(ns)
    for (const d of docs) expect(d.apiVersion, d.kind).toMatch(/^(v1|apps\/v1|rbac\.authorization\.k8s\.io\/v1)$/)
  })

  it('binds the ClusterRole to the ServiceAccount the DaemonSet runs as', () => {
    const sa = one('ServiceAccount')
    const b = one('ClusterRoleBinding')
    expect(b.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: one('ClusterRole').metadata.name })
    expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace }])
    expect(pod.serviceAccountName).toBe(sa.metadata.name)
  })

  it('runs on every node: host network, every taint tolerated, system-node-critical, selector matches the template', () => {
    expect(pod.hostNetwork).toBe(true)
    expect(pod.tolerations).toEqual([{ operator: 'Exists' }])
    expect(pod.priorityClassName).toBe('system-node-critical')
    expect(ds.spec.template.metadata.labels).toMatchObject(ds.spec.selector.matchLabels)
  })

  it('gives the agent its node name from the downward API and its config from the ConfigMap', () => {
    expect(agent.env).toContainEqual({ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } })
    const i = agent.command.indexOf('--config')
    expect(agent.command.slice(0, 2)).toEqual(['podnet-bpf', 'agent'])
    const file = agent.command[i + 1] as string
    const m = mountOf(agent, file.slice(0, file.lastIndexOf('/')))
    expect(m.volume.configMap.name).toBe(configMap.metadata.name)
    expect(Object.keys(configMap.data)).toContain(file.slice(file.lastIndexOf('/') + 1))
    expect(agentConfig.datastore).toBe('kubernetes')
  })

  it('holds a config the agent accepts (its own schema: unknown keys would be errors)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pnk8-cm-'))
    try {
      writeFileSync(join(dir, 'agent.yaml'), configMap.data['agent.yaml'])
      const cfg = loadAgentConfig({}, join(dir, 'agent.yaml'))
      expect(cfg).toMatchObject({ datastore: 'kubernetes', listen: agentConfig.listen, cniConfDir: agentConfig.cniConfDir })
      expect(cfg.nodeName).not.toHaveProperty('length', 0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('probes /healthz and /readyz on the address the agent listens on', () => {
    const [host, port] = String(agentConfig.listen).split(':')
    for (const [probe, path] of [
      ['livenessProbe', '/healthz'],
      ['readinessProbe', '/readyz'],
    ] as const) {
      expect(agent[probe].httpGet).toEqual({ host, port: Number(port), path })
    }
  })

  it('mounts what the datapath, the CNI plugin and the state files use, from the host', () => {
    const bpf = mountOf(agent, '/sys/fs/bpf')
    expect(DEFAULT_PIN_DIR.startsWith('/sys/fs/bpf/')).toBe(true)
    expect(bpf.mountPropagation).toBe('Bidirectional')
    // Kubernetes accepts Bidirectional propagation only in privileged containers
    expect(agent.securityContext.privileged).toBe(true)
    expect(mountOf(agent, stateDir()).volume.hostPath.path).toBe(stateDir())
    expect(mountOf(agent, String(agentConfig.cniConfDir)).volume.hostPath.path).toBe(agentConfig.cniConfDir)
    expect(mountOf(agent, '/opt/cni/bin').volume.hostPath.path).toBe('/opt/cni/bin')
    expect(mountOf(agent, '/run/netns').volume.hostPath.path).toBe('/run/netns')
    expect(bpf.volume.hostPath.path).toBe('/sys/fs/bpf')
  })

  it('installs the CNI plugin from an init container: launcher into the host CNI bin dir, run by a host copy of Node.js and the package', () => {
    const init = pod.initContainers.find((c: { name: string }) => c.name === 'install-cni')
    expect(init.image).toBe(agent.image)
    expect(mountOf(init, '/opt/cni/bin').volume.hostPath.path).toBe('/opt/cni/bin')
    const script = init.command[2] as string
    const runtime = mountOf(init, '/opt/podnet-bpf')
    expect(runtime.volume.hostPath.path).toBe('/opt/podnet-bpf') // same path inside and out: the launcher's paths hold on the host
    // it copies what the Dockerfile installs, and runs cni install from the copy
    const docker = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
    expect(docker).toContain('/usr/local/lib/node_modules/podnet-bpf')
    expect(script).toContain('cp -a /usr/local/bin/node /usr/local/lib/node_modules/podnet-bpf /opt/podnet-bpf/new/')
    expect(script).toMatch(/exec \/opt\/podnet-bpf\/current\/node \/opt\/podnet-bpf\/current\/podnet-bpf\/bin\/run\.js cni install /)
    expect(init.command.slice(0, 2)).toEqual(['sh', '-ec'])
  })
})

describe('Dockerfile', () => {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')

  it('installs the tarball `npm pack` makes, with the CLI, the agent and the BPF objects in it', () => {
    const r = spawnSync('npm', ['pack', '--dry-run', '--json'], { cwd: ROOT, encoding: 'utf8' })
    expect(r.status, r.stderr).toBe(0)
    const [pack] = JSON.parse(r.stdout) as { filename: string; files: { path: string }[] }[]
    const copied = /^COPY (podnet-bpf-\*\.tgz) /m.exec(text)![1]!
    expect(new RegExp(`^${copied.replace('*', '.*')}$`).test(pack!.filename)).toBe(true)
    const files = pack!.files.map((f) => f.path)
    const linked = /ln -s \/usr\/local\/lib\/node_modules\/podnet-bpf\/(\S+) /.exec(text)![1]!
    expect(files).toContain(linked)
    expect(files).toContain('dist/commands/agent.js')
    expect(files.filter((f) => f.endsWith('.bpf.o')).length).toBeGreaterThanOrEqual(4)
  })

  it('is Debian bookworm with libbpf1, and its default command is the DaemonSet agent command', () => {
    expect(text).toMatch(/^FROM node:20-bookworm-slim$/m)
    expect(text).toMatch(/apt-get install .*libbpf1/)
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(text)![1]!) as string[]
    expect(cmd).toEqual(agent.command)
  })
})
