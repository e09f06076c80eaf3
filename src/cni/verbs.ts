// The CNI verbs. Each is a front door onto the same services the CLI uses
// (services/pods.ts → endpoints.ts); IP allocation is delegated to the IPAM
// plugin. ADD undoes what it did when it fails half-way, including the
// allocation; DEL and GC tolerate whatever is already gone.
import { existsSync } from 'node:fs'
import { UserError } from '../errors.js'
import { loadState } from '../services/state.js'
import {
  POD_GATEWAY,
  PodDeviceError,
  attachPod,
  checkPod,
  datapathHealth,
  detachHostIf,
  detachPod,
  isPodHostIfName,
  listPodDevices,
  podDeviceExists,
  podHostIfName,
  type PodDrift,
} from '../services/pods.js'
import { ipamAdd, ipamCheck, ipamDel, ipamFor, ipamGc, ipamStatus, ipamSupports11, type Ipam } from './ipam.js'
import { resolveIpam, prevResultOf, type NetConf } from './netconf.js'
import { Code, CniError, convertResult, type CniEnv, type CniResult } from './protocol.js'
import { listRecords, loadRecord, removeRecord, saveRecord } from './records.js'
import type { Log } from './log.js'

// DEL and GC must release allocations even when the node is gone; host-local
// releases by container ID, its range only has to parse.
const PLACEHOLDER_CIDR = '169.254.0.0/16'

function notAttached(conf: NetConf): CniError {
  return new CniError(
    Code.TRY_AGAIN,
    `this node's podnet datapath is not attached (pin dir ${conf.pinDir})`,
    `run \`podnet-bpf attach … --pin-dir ${conf.pinDir}\` on the node; the runtime retries`,
  )
}

function ipamOf(conf: NetConf, env: CniEnv, podCidr: string | null): Ipam {
  return ipamFor(conf, resolveIpam(conf, podCidr ?? PLACEHOLDER_CIDR), env)
}

/** Maps what the services throw onto CNI codes. */
export function toCniError(e: unknown): CniError {
  if (e instanceof CniError) return e
  if (e instanceof PodDeviceError) {
    const code = e.reason === 'no-netkit' ? Code.NO_NETKIT : e.reason === 'no-netns' ? Code.NETNS_GONE : Code.POD_DEVICE
    const hint = e.reason === 'no-netkit' ? 'set "podDevice": "veth" in the network config' : 'see the plugin log'
    return new CniError(code, e.message, hint)
  }
  if (e instanceof UserError) return new CniError(Code.ENDPOINT, e.message, e.hint ?? '')
  return new CniError(Code.INTERNAL, (e as Error).message ?? String(e), 'a bug in podnet-cni: see the plugin log')
}

export function cmdAdd(env: CniEnv, conf: NetConf, log: Log): CniResult {
  const state = loadState(conf.pinDir)
  if (!state) throw notAttached(conf)
  if (!existsSync(env.netns))
    throw new CniError(Code.NETNS_GONE, `network namespace ${env.netns} does not exist`, 'the runtime must create it before ADD')
  const hostIf = podHostIfName(env.containerId, env.ifname)
  // before allocating: undoing a second ADD must not take the first one's pod or IP
  if (podDeviceExists(hostIf))
    throw new CniError(
      Code.POD_DEVICE,
      `${env.containerId}/${env.ifname} already has a pod device (${hostIf})`,
      'DEL it before adding it again',
    )
  const ipam = ipamOf(conf, env, state.config.podCidr)
  const t0 = performance.now()
  const alloc = ipamAdd(ipam, env)
  const tIpam = performance.now()
  try {
    const v4 = (alloc.ips ?? []).find((i) => /^\d+\.\d+\.\d+\.\d+\//.test(i.address))
    if (!v4) throw new CniError(Code.IPAM, `IPAM ${ipam.type} returned no IPv4 address`, 'configure an IPv4 range in ipam')
    const ip = v4.address.split('/')[0]!
    // recorded first, so DEL and GC can find a half-made pod after a crash
    saveRecord(conf.pinDir, {
      containerId: env.containerId,
      ifname: env.ifname,
      hostIf,
      netns: env.netns,
      ip,
      network: conf.name,
      podCidr: state.config.podCidr,
      createdAt: new Date().toISOString(),
    })
    const pod = attachPod({
      pinDir: conf.pinDir,
      containerId: env.containerId,
      ifname: env.ifname,
      netns: env.netns,
      ip,
      device: conf.podDevice,
      mtu: conf.mtu,
    })
    log.write('info', 'pod added', {
      ip,
      hostIf,
      allocated: v4.address,
      ipamMs: Math.round(tIpam - t0),
      podMs: Math.round(performance.now() - tIpam),
    })
    return addResult(conf, env, hostIf, ip, pod, alloc)
  } catch (e) {
    undoAdd(env, conf, ipam, hostIf, log, e as Error)
    throw e
  }
}

function addResult(conf: NetConf, env: CniEnv, hostIf: string, ip: string, pod: ReturnType<typeof attachPod>, alloc: CniResult): CniResult {
  return convertResult(
    {
      cniVersion: conf.cniVersion,
      interfaces: [
        { name: hostIf, ...macOf(pod.endpoint.hostMac), mtu: pod.mtu },
        { name: env.ifname, ...macOf(pod.endpoint.podMac), mtu: pod.mtu, sandbox: env.netns },
      ],
      ips: [{ address: `${ip}/32`, gateway: POD_GATEWAY, interface: 1 }],
      routes: [{ dst: '0.0.0.0/0', gw: POD_GATEWAY }],
      dns: alloc.dns ?? {},
    },
    conf.cniVersion,
  )
}

/** A failed ADD removes what it made: pod device and endpoint, record, IP allocation. */
function undoAdd(env: CniEnv, conf: NetConf, ipam: Ipam, hostIf: string, log: Log, why: Error): void {
  log.write('error', 'ADD failed, undoing', { error: why.message })
  try {
    detachPod({ pinDir: conf.pinDir, containerId: env.containerId, ifname: env.ifname })
  } catch (u) {
    log.write('error', 'undo: pod removal failed', { error: (u as Error).message })
  }
  removeRecord(conf.pinDir, hostIf)
  try {
    ipamDel(ipam, env)
  } catch (u) {
    log.write('error', 'undo: IPAM release failed', { error: (u as Error).message })
  }
}

function macOf(mac: string): { mac?: string } {
  return mac && mac !== '00:00:00:00:00:00' ? { mac } : {}
}

/** Idempotent: a vanished namespace, device or endpoint is fine; the IPAM
 * allocation is always released. */
export function cmdDel(env: CniEnv, conf: NetConf, log: Log): void {
  const hostIf = podHostIfName(env.containerId, env.ifname)
  const record = loadRecord(conf.pinDir, hostIf)
  const state = loadState(conf.pinDir)
  const r = detachPod({ pinDir: conf.pinDir, containerId: env.containerId, ifname: env.ifname })
  ipamDel(ipamOf(conf, env, state?.config.podCidr ?? record?.podCidr ?? null), env)
  removeRecord(conf.pinDir, hostIf)
  log.write('info', 'pod deleted', { hostIf, endpoints: r.endpoints, deviceRemoved: r.deviceRemoved, record: record !== null })
}

const DRIFT_CODES: Record<PodDrift['what'], number> = {
  'host-device': Code.CHECK_HOST_DEVICE,
  'pod-device': Code.CHECK_POD_DEVICE,
  address: Code.CHECK_ADDRESS,
  route: Code.CHECK_ROUTE,
  mtu: Code.CHECK_MTU,
  endpoint: Code.CHECK_ENDPOINT,
}

export function cmdCheck(env: CniEnv, conf: NetConf, log: Log): void {
  const prev = prevResultOf(conf)
  if (!prev) throw new CniError(Code.CHECK_PREV_RESULT, 'CHECK needs the prevResult of ADD in the network config', 'the runtime passes it')
  const state = loadState(conf.pinDir)
  if (!state) throw notAttached(conf)
  const iface = (prev.interfaces ?? []).findIndex((i) => i.name === env.ifname && i.sandbox !== undefined)
  if (iface < 0)
    throw new CniError(Code.CHECK_PREV_RESULT, `prevResult has no interface ${env.ifname} in a sandbox`, 'pass the result ADD returned')
  const addr = (prev.ips ?? []).find((i) => i.interface === iface) ?? prev.ips?.[0]
  if (!addr) throw new CniError(Code.CHECK_PREV_RESULT, 'prevResult has no IP address', 'pass the result ADD returned')
  if (!existsSync(env.netns))
    throw new CniError(Code.NETNS_GONE, `network namespace ${env.netns} does not exist`, 'the pod is gone: DEL it')
  const ip = addr.address.split('/')[0]!
  const drift = checkPod({ pinDir: conf.pinDir, containerId: env.containerId, ifname: env.ifname, netns: env.netns, ip, mtu: conf.mtu })
  if (drift.length) {
    log.write('error', 'CHECK found drift', { drift })
    throw new CniError(DRIFT_CODES[drift[0]!.what], drift.map((d) => d.detail).join('; '), 'DEL and ADD the pod again to repair it')
  }
  ipamCheck(ipamOf(conf, env, state.config.podCidr), env, { ...prev, cniVersion: '1.0.0' })
}

export function cmdStatus(env: CniEnv, conf: NetConf): void {
  const h = datapathHealth(conf.pinDir)
  if (!h.attached)
    throw new CniError(
      Code.NOT_AVAILABLE,
      `the podnet datapath is not attached (pin dir ${conf.pinDir})`,
      'run `podnet-bpf attach` on this node',
    )
  if (h.problems.length)
    throw new CniError(
      Code.NOT_AVAILABLE_DEGRADED,
      `the podnet datapath is broken: ${h.problems.join('; ')}`,
      'run `podnet-bpf attach` again to repair it',
    )
  let ipam: Ipam
  try {
    ipam = ipamOf(conf, env, h.podCidr)
  } catch (e) {
    throw new CniError(Code.NOT_AVAILABLE, (e as Error).message, (e as CniError).details ?? '')
  }
  if (ipamSupports11(ipam)) ipamStatus(ipam, env)
}

/** Removes pods, devices and allocations of attachments the runtime no longer lists. */
export function cmdGc(env: CniEnv, conf: NetConf, log: Log): { removed: string[] } {
  const valid = conf['cni.dev/valid-attachments'] ?? conf['cni.dev/attachments']
  if (!valid) throw new CniError(Code.INVALID_CONFIG, 'GC needs cni.dev/valid-attachments in the network config', 'the runtime passes it')
  const keep = new Set(valid.map((a) => podHostIfName(a.containerID, a.ifname)))
  const state = loadState(conf.pinDir)
  const removed: string[] = []
  const errors: string[] = []
  for (const rec of listRecords(conf.pinDir)) {
    if (keep.has(rec.hostIf) || rec.network !== conf.name) continue
    try {
      detachHostIf(rec.hostIf, conf.pinDir)
      const recEnv = { ...env, containerId: rec.containerId, ifname: rec.ifname, netns: '' }
      ipamDel(ipamOf(conf, recEnv, state?.config.podCidr ?? rec.podCidr), recEnv)
      removeRecord(conf.pinDir, rec.hostIf)
      removed.push(rec.hostIf)
    } catch (e) {
      errors.push(`${rec.containerId}/${rec.ifname}: ${(e as Error).message}`)
    }
  }
  // endpoints and devices of ours that no record names (e.g. the record was lost)
  const stale = new Set([...Object.values(state?.endpoints ?? {}).map((e) => e.ifname), ...listPodDevices()].filter(isPodHostIfName))
  for (const hostIf of stale) {
    if (keep.has(hostIf) || removed.includes(hostIf) || loadRecord(conf.pinDir, hostIf)) continue
    try {
      detachHostIf(hostIf, conf.pinDir)
      removed.push(hostIf)
    } catch (e) {
      errors.push(`${hostIf}: ${(e as Error).message}`)
    }
  }
  const ipam = ipamOf(conf, env, state?.config.podCidr ?? null)
  if (ipamSupports11(ipam)) ipamGc(ipam, env, valid)
  log.write(errors.length ? 'error' : 'info', 'GC', { removed, errors, valid: valid.length })
  if (errors.length)
    throw new CniError(Code.INTERNAL, `GC could not remove ${errors.length} attachment(s): ${errors.join('; ')}`, 'see the plugin log')
  return { removed }
}
