// The lab creates and removes its pods the way a container runtime does: it
// executes the CNI plugin (ADD on `lab up`, DEL on `lab down`) with CNI_*
// variables and a network config, so the lab exercises the plugin's path.
import { spawnSync } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { DEBIAN_CNI_DIR, pluginMainPath } from '../cni-install.js'
import { stateDir } from '../state.js'
import type { PodDevice } from './plan.js'
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
export function runPlugin(command: 'ADD' | 'DEL', node: { ns: string; pinDir: string }, podDevice: PodDevice, pod: LabPodRef): unknown {
  const r = spawnSync(process.execPath, ['--max-semi-space-size=2', pluginMainPath()], {
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
    encoding: 'utf8',
    timeout: 60_000,
  })
  const out = (r.stdout ?? '').trim()
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
    const why = parsed?.msg ? `${parsed.msg}${parsed.details ? ` (${parsed.details})` : ''}` : (r.stderr || out || String(r.error)).trim()
    throw new Error(`CNI ${command} of ${pod.ns}: ${why}`)
  }
  return parsed
}
