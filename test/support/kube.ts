// Helpers for tests against the Kubernetes API test server: a kubeconfig for
// it, the ClusterRole rules from deploy/podnet-bpf.yaml.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments } from 'yaml'
import type { PolicyRule } from './kube-api-server.js'

export const MANIFEST = fileURLToPath(new URL('../../deploy/podnet-bpf.yaml', import.meta.url))
export const AGENT_TOKEN = 'podnet-agent-token'
export const AGENT_USER = 'system:serviceaccount:podnet-system:podnet-bpf'

/** A self-signed certificate (its own CA) for the test server, valid for these IPs. */
export function makeCert(ips: string[]): { cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'pnk8-tls-'))
  try {
    const r = spawnSync('openssl', [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2'],
      ...['-subj', '/CN=kube-api-test-server', '-addext', `subjectAltName=${ips.map((i) => `IP:${i}`).join(',')}`],
      ...['-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')],
    ])
    if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`)
    return { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Writes `dir`/kubeconfig (the caller owns and removes `dir`). */
export function writeKubeconfig(server: string, ca: string, token: string, dir: string): string {
  const file = join(dir, 'kubeconfig')
  const text = [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '  - name: test',
    '    cluster:',
    `      server: ${server}`,
    `      certificate-authority-data: ${Buffer.from(ca).toString('base64')}`,
    'users:',
    '  - name: agent',
    '    user:',
    `      token: ${token}`,
    'contexts:',
    '  - name: test',
    '    context: { cluster: test, user: agent }',
    'current-context: test',
    '',
  ].join('\n')
  writeFileSync(file, text)
  return file
}

export type K8sObject = { kind: string; metadata: { name: string; namespace?: string }; [k: string]: any }

export function manifestDocs(file = MANIFEST): K8sObject[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'))
  return docs.map((d, i) => {
    if (d.errors.length) throw new Error(`${file}: document ${i + 1}: ${d.errors[0]!.message}`)
    return d.toJS() as K8sObject
  })
}

export function manifestRules(): PolicyRule[] {
  const role = manifestDocs().find((d) => d.kind === 'ClusterRole')
  if (!role) throw new Error(`${MANIFEST} has no ClusterRole`)
  return role.rules as PolicyRule[]
}
