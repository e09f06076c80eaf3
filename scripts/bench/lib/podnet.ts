// The podnet-bpf CLI as the benchmark drives it: every command inside a node
// namespace via nsenter (so /sys/fs/bpf is the real bpffs), one pin dir per
// node, detach + pin removal registered for cleanup.
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { exec, execSync, type Result } from './exec.js'
import { nsenter, nsExists } from './netns.js'
import { onCleanup } from './cleanup.js'

/** Repository root: the nearest directory above this file whose package.json
 * is podnet-bpf's (works from scripts/bench/lib and scripts/bench/dist/lib). */
export const REPO_ROOT = findRepoRoot(fileURLToPath(new URL('.', import.meta.url)))

function findRepoRoot(from: string): string {
  let dir = from
  for (let i = 0; i < 8; i++) {
    const pkg = join(dir, 'package.json')
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'podnet-bpf') return dir
    dir = resolve(dir, '..')
  }
  throw new Error(`cannot find the podnet-bpf repository above ${from}`)
}
export const CLI_BIN = join(REPO_ROOT, 'bin/run.js')
const STATE_DIR = process.env['PODNET_STATE_DIR'] ?? '/run/podnet-bpf'

/** True once the lead's datapath CLI has been built. */
export function podnetAvailable(): boolean {
  return existsSync(join(REPO_ROOT, 'dist/commands/attach.js')) && existsSync(CLI_BIN)
}

export function pinDirFor(nodeNs: string): string {
  return `/sys/fs/bpf/${nodeNs}`
}

/** A built podnet-bpf checkout (its bin/run.js, dist/ and bpf/build/) or a reason it is not one. */
export function checkoutProblem(dir: string): string | null {
  if (!existsSync(join(dir, 'bin/run.js'))) return `${dir} has no bin/run.js (not a podnet-bpf checkout)`
  if (!existsSync(join(dir, 'dist/commands/attach.js'))) return `${dir} is not built (run npm run build there)`
  return null
}

/** The CLI each node namespace is driven with: this checkout's, or a baseline's (--baseline). */
const cliOfNode = new Map<string, string>()

export function setNodeCli(nodeNs: string, checkout: string): void {
  cliOfNode.set(nodeNs, join(checkout, 'bin/run.js'))
}

export function cliArgv(nodeNs: string, args: string[]): string[] {
  // executed itself, so its `#!` line (node flags, environment) applies as
  // for an installed podnet-bpf
  return nsenter(nodeNs, [cliOfNode.get(nodeNs) ?? CLI_BIN, ...args, '--pin-dir', pinDirFor(nodeNs)])
}

/** Run one CLI command in a node namespace; throws with its stderr on failure. */
export function podnet(nodeNs: string, args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<Result> {
  return exec(cliArgv(nodeNs, args), { timeoutMs: 60_000, env: opts.env })
}

export interface AttachResult {
  podMtu: number
  [k: string]: unknown
}

export function parseAttachJson(stdout: string): AttachResult {
  const parsed = JSON.parse(stdout) as unknown
  // oclif --json may wrap the result; accept both shapes
  const obj = (parsed && typeof parsed === 'object' && 'result' in parsed ? (parsed as { result: unknown }).result : parsed) as
    Record<string, unknown> | undefined
  const podMtu = obj?.['podMtu']
  if (typeof podMtu !== 'number') throw new Error(`attach --json has no numeric podMtu: ${stdout.slice(0, 300)}`)
  return { ...obj, podMtu }
}

/** Register the undo for a node: detach, then remove whatever pins/state remain. */
export function registerPodnetCleanup(nodeNs: string): void {
  onCleanup(`podnet ${nodeNs}`, () => cleanupPodnetNode(nodeNs))
}

export function cleanupPodnetNode(nodeNs: string): void {
  const pin = pinDirFor(nodeNs)
  if (nsExists(nodeNs) && existsSync(pin)) execSync(cliArgv(nodeNs, ['detach']), { allowFail: true, timeoutMs: 30_000 })
  if (existsSync(pin)) rmSync(pin, { recursive: true, force: true })
  // state file is named after the pin dir; remove only ours
  if (existsSync(STATE_DIR)) {
    for (const f of readdirSync(STATE_DIR)) if (f.includes(nodeNs)) rmSync(join(STATE_DIR, f), { force: true })
  }
}
