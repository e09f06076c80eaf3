// The lab creates and removes its pods the way a container runtime does: it
// executes the CNI plugin (ADD on `lab up`, DEL on `lab down`) with CNI_*
// variables and a network config, so the lab exercises the plugin's path.
import { rmSync } from 'node:fs'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { DEBIAN_CNI_DIR, pluginMainPath } from '../cni-install.js'
import { stateDir } from '../state.js'
import type { PodDevice } from './plan.js'
import { spawnAsync } from './netns.js'
import { UserError } from '../../errors.js'

/** the plugin's error code for a kernel without netkit (src/cni/protocol.ts) */
const NO_NETKIT = 104

/** host-local's allocations for lab networks (one network per node). */
export function labIpamDir(): string {
  return join(stateDir(), 'lab-ipam')
}

export function removeLabIpam(nodeNs: string): void {
  rmSync(join(labIpamDir(), nodeNs), { recursive: true, force: true })
}

export interface LabPodRef {
  ns: string
  ip: string
}

function netConf(nodeNs: string, pinDir: string, podDevice: PodDevice): Record<string, unknown> {
  return {
    cniVersion: '1.1.0',
    name: nodeNs,
    type: 'podnet',
    pinDir,
    podDevice,
    ipam: { type: 'host-local', dataDir: labIpamDir(), ranges: [[{ subnet: 'usePodCidr' }]] },
  }
}

/** Runs the plugin for one pod (container ID = the pod's namespace name;
 * the lab's fixed IP through host-local's IP= argument). Throws the
 * plugin's error message. */
export async function runPlugin(
  command: 'ADD' | 'DEL',
  node: { ns: string; pinDir: string },
  podDevice: PodDevice,
  pod: LabPodRef,
): Promise<unknown> {
  const r = await spawnAsync(process.execPath, ['--max-semi-space-size=2', pluginMainPath()], {
    input: JSON.stringify(netConf(node.ns, node.pinDir, podDevice)),
    env: {
      ...process.env,
      CNI_COMMAND: command,
      CNI_CONTAINERID: pod.ns,
      CNI_NETNS: `/run/netns/${pod.ns}`,
      CNI_IFNAME: 'eth0',
      CNI_ARGS: `IgnoreUnknown=1;IP=${pod.ip}`,
      CNI_PATH: DEBIAN_CNI_DIR,
    },
    timeoutMs: 60_000,
  })
  const out = r.stdout.trim()
  type Reply = { code?: number; msg?: string; details?: string }
  let parsed: Reply | null = null
  try {
    parsed = out ? (JSON.parse(out) as Reply) : null
  } catch {
    /* not JSON */
  }
  if (r.status !== 0) {
    // the lab's own flag is the fix for a kernel without netkit
    if (parsed?.code === NO_NETKIT) throw new UserError(`CNI ${command} of ${pod.ns}: ${parsed.msg}`, 'use --pod-device veth')
    const why = parsed?.msg
      ? `${parsed.msg}${parsed.details ? ` (${parsed.details})` : ''}`
      : (r.stderr || out || `killed by ${r.signal}`).trim()
    throw new Error(`CNI ${command} of ${pod.ns}: ${why}`)
  }
  return parsed
}

/** Runs the plugin for every pod, several at once (they serialize on the node lock
 * only where they touch the node's state); every failure is reported. */
export async function runPluginAll(
  command: 'ADD' | 'DEL',
  node: { ns: string; pinDir: string },
  podDevice: PodDevice,
  pods: LabPodRef[],
): Promise<string[]> {
  // a few at a time (two per CPU): each is a Node.js start
  const failed: Error[] = []
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < pods.length) {
      const p = pods[next++]!
      await runPlugin(command, node, podDevice, p).catch((e: Error) => failed.push(e))
    }
  }
  await Promise.all(Array.from({ length: Math.min(pods.length, 2 * cpus().length) }, worker))
  const user = failed.find((e) => e instanceof UserError)
  if (user && command === 'ADD') throw user
  return failed.map((e) => e.message)
}
