// Kernel and privilege checks: run before attach changes anything, and
// reported one by one by `podnet-bpf doctor`.
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs'
import { BpfError, UserError } from '../errors.js'
import { createNetkit, isBpffs, mountBpffs, probeBpfSyscall, probeClsact } from '../datapath/kernel.js'
import { loadProgram, objectPath } from '../datapath/objects.js'
import { run, tryRun } from '../util/exec.js'
import { listLinks } from '../datapath/netdev.js'
import { tcxAvailable } from '../datapath/tc.js'
import { Programs, type ProgramKey } from '../datapath/abi.js'

const CAP_NET_ADMIN = 12
const CAP_SYS_ADMIN = 21
const CAP_BPF = 39

function effectiveCaps(): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))
  return m ? BigInt(`0x${m[1]}`) : 0n
}
const has = (caps: bigint, c: number) => (caps & (1n << BigInt(c))) !== 0n

export function requirePrivileges(): void {
  const caps = effectiveCaps()
  const missing: string[] = []
  if (!has(caps, CAP_NET_ADMIN)) missing.push('CAP_NET_ADMIN')
  if (!has(caps, CAP_BPF) && !has(caps, CAP_SYS_ADMIN)) missing.push('CAP_BPF')
  if (missing.length) {
    throw new UserError(`missing capabilities: ${missing.join(', ')}`, 'run as root (sudo podnet-bpf …) or grant CAP_BPF+CAP_NET_ADMIN')
  }
}

export const BPFFS_ROOT = '/sys/fs/bpf'

/** Mounts bpffs at /sys/fs/bpf if needed and creates the pin dir on it
 * (root-only); returns the first directory it created, if any. */
export function ensurePinDir(pinDir: string): string | undefined {
  if (!isBpffs(BPFFS_ROOT) && pinDir.startsWith(`${BPFFS_ROOT}/`)) {
    try {
      mountBpffs(BPFFS_ROOT)
    } catch (e) {
      throw new UserError(
        `bpffs is not mounted at ${BPFFS_ROOT} and mounting it failed (${e instanceof BpfError ? e.code : String(e)})`,
        'mount it yourself: mount -t bpf bpf /sys/fs/bpf',
      )
    }
  }
  const created = mkdirSync(pinDir, { recursive: true, mode: 0o700 })
  if (!isBpffs(pinDir)) {
    if (created) rmSync(created, { recursive: true, force: true })
    throw new UserError(`pin dir ${pinDir} is not on a bpffs mount`, 'use a directory under /sys/fs/bpf, or mount bpffs there')
  }
  return created
}

export interface Check {
  name: string
  ok: boolean
  /** a feature podnet-bpf can do without (doctor still exits 0) */
  optional?: boolean
  detail: string
  fix?: string
}

function check(name: string, fn: () => string, fix: string, optional = false): Check {
  const o = optional ? { optional } : {}
  try {
    return { name, ok: true, ...o, detail: fn() }
  } catch (e) {
    return { name, ok: false, ...o, detail: e instanceof UserError ? e.message : (e as Error).message, fix }
  }
}

/** Everything podnet-bpf needs from this kernel and process. */
export function runChecks(): Check[] {
  return [...systemChecks(), ...deviceChecks(), ...verifierChecks()]
}

/** Privileges, the bpf() syscall, bpffs, kernel BTF. */
function systemChecks(): Check[] {
  const checks: Check[] = []
  checks.push(check('privileges', () => (requirePrivileges(), 'CAP_BPF and CAP_NET_ADMIN'), 'run as root'))
  checks.push(
    check(
      'bpf syscall',
      () => {
        probeBpfSyscall()
        return 'map create ok'
      },
      'a kernel with CONFIG_BPF_SYSCALL and root privileges',
    ),
  )
  checks.push(
    check(
      'bpffs',
      () => {
        if (isBpffs(BPFFS_ROOT)) return `mounted at ${BPFFS_ROOT}`
        return `not mounted at ${BPFFS_ROOT}; attach mounts it`
      },
      'mount -t bpf bpf /sys/fs/bpf',
    ),
  )
  checks.push(
    check(
      'BTF',
      () => {
        if (!existsSync('/sys/kernel/btf/vmlinux')) throw new Error('/sys/kernel/btf/vmlinux missing')
        return '/sys/kernel/btf/vmlinux'
      },
      'a kernel built with CONFIG_DEBUG_INFO_BTF=y',
    ),
  )
  return checks
}

/** The devices and hooks podnet uses: clsact, VXLAN, netkit (optional). */
function deviceChecks(): Check[] {
  const checks: Check[] = []
  checks.push(
    check(
      'clsact',
      () => {
        // loopback always exists; remove the qdisc again only if we made it
        probeClsact()
        return 'clsact qdisc available'
      },
      'load sch_ingress (CONFIG_NET_SCH_INGRESS) and cls_bpf',
    ),
  )
  checks.push(
    check(
      'tcx',
      () => {
        if (!tcxAvailable()) throw new Error('this kernel has no tcx: attach falls back to tc cls_bpf filters')
        return 'tcx links supported: attach (--attach-mode auto) uses them instead of tc filters'
      },
      'Linux >= 6.6; tc filters (clsact) work without it',
      true,
    ),
  )
  checks.push(
    check(
      'vxlan',
      () => {
        // one collect_md device per port: ours (or another) already proves support
        const existing = listLinks().find((l) => l.kind === 'vxlan' && l.vxlan?.external)
        if (existing) return `collect_md VXLAN devices supported (${existing.name} exists)`
        const probe = `pnprobe${process.pid % 100000}`
        run('ip', ['link', 'add', probe, 'type', 'vxlan', 'external', 'dstport', '0'])
        tryRun('ip', ['link', 'del', probe])
        return 'collect_md VXLAN devices supported'
      },
      'load the vxlan module (modprobe vxlan), or use --mode direct',
    ),
  )
  checks.push(
    check(
      'netkit pods',
      () => {
        const probe = `pnnk${process.pid % 100000}`
        try {
          createNetkit({ name: probe, peerName: `${probe}p` })
        } catch (e) {
          if (e instanceof BpfError && e.code === 'EOPNOTSUPP') throw new Error('this kernel has no netkit devices')
          throw e
        }
        run('ip', ['link', 'del', probe]) // takes its peer along
        return "netkit pairs supported: pods may use them (from-pod then runs in the pod's own transmit)"
      },
      'Linux >= 6.7 built with CONFIG_NETKIT; veth pods work without it',
      true,
    ),
  )
  return checks
}

/** Every shipped object through this kernel's verifier. */
function verifierChecks(): Check[] {
  const checks: Check[] = []
  for (const key of Object.keys(Programs) as ProgramKey[]) {
    checks.push(
      check(
        `verifier: ${Programs[key].object}`,
        () => verifyObject(key),
        'a kernel ≥ 5.10 with the helpers podnet uses (bpf_redirect_peer, bpf_redirect_neigh)',
      ),
    )
  }
  return checks
}

/** Loads one shipped object through the verifier with every feature
 * switched on (non-zero VXLAN ifindex), in a throwaway pin dir. */
export function verifyObject(key: ProgramKey): string {
  const path = objectPath(key)
  const dir = `${BPFFS_ROOT}/podnet-verify-${process.pid}-${key}`
  ensurePinDir(dir)
  try {
    const l = loadProgram(key, { nodeIp: '10.0.0.1', deviceIfindex: 1, vxlanIfindex: 1, vni: 1, deviceMtu: 1500, overlayMtu: 1450 }, dir)
    const id = l.prog.id()
    l.obj.close()
    return `${path} loads (program id ${id})`
  } finally {
    rmSync(dir, { recursive: true, force: true }) // unpins the maps
  }
}
