// The CNI execution protocol (spec 1.0.0 / 1.1.0): parameters from CNI_*
// environment variables, errors as {cniVersion, code, msg, details} on
// stdout, results converted to the version the network config asks for.

export const SUPPORTED_VERSIONS = ['1.0.0', '1.1.0'] as const
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number]
export const LATEST: CniVersion = '1.1.0'

/** Error codes: 1-99 are the spec's, 100+ this plugin's own. */
export const Code = {
  INCOMPATIBLE_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  BAD_ENV: 4,
  IO: 5,
  DECODE: 6,
  INVALID_CONFIG: 7,
  TRY_AGAIN: 11,
  /** STATUS: cannot serve ADD */
  NOT_AVAILABLE: 50,
  /** STATUS: cannot serve ADD, and existing pods may have limited connectivity */
  NOT_AVAILABLE_DEGRADED: 51,
  INTERNAL: 100,
  IPAM: 101,
  POD_DEVICE: 102,
  ENDPOINT: 103,
  NO_NETKIT: 104,
  NETNS_GONE: 105,
  CHECK_HOST_DEVICE: 110,
  CHECK_POD_DEVICE: 111,
  CHECK_ADDRESS: 112,
  CHECK_ROUTE: 113,
  CHECK_MTU: 114,
  CHECK_ENDPOINT: 115,
  CHECK_PREV_RESULT: 116,
} as const

export class CniError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly details = '',
  ) {
    super(message)
    this.name = 'CniError'
  }

  toJSON(cniVersion: string): Record<string, unknown> {
    return { cniVersion, code: this.code, msg: this.message, ...(this.details ? { details: this.details } : {}) }
  }
}

export type Command = 'ADD' | 'DEL' | 'CHECK' | 'STATUS' | 'GC' | 'VERSION'
const COMMANDS: readonly Command[] = ['ADD', 'DEL', 'CHECK', 'STATUS', 'GC', 'VERSION']

export interface CniEnv {
  command: Command
  containerId: string
  netns: string
  ifname: string
  /** CNI_ARGS as key/value pairs */
  args: Record<string, string>
  path: string[]
}

const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/
// Linux interface names: 1-15 bytes, no '/', ':' or whitespace, not . or ..
const IFNAME = /^[^/:\s]{1,15}$/

/** The parameters each verb needs, per the spec; missing or malformed: code 4. */
export function parseEnv(env: NodeJS.ProcessEnv): CniEnv {
  const command = env.CNI_COMMAND as Command | undefined
  if (!command)
    throw new CniError(Code.BAD_ENV, 'CNI_COMMAND is not set', 'run podnet-cni from a container runtime, or set CNI_COMMAND=VERSION')
  if (!COMMANDS.includes(command)) throw new CniError(Code.BAD_ENV, `unknown CNI_COMMAND "${command}"`, `use one of ${COMMANDS.join(', ')}`)
  const need = (k: string, ok: boolean) => {
    if (!ok)
      throw new CniError(
        Code.BAD_ENV,
        `${k} is ${env[k] ? `invalid ("${env[k]}")` : 'not set'} for ${command}`,
        'the container runtime must set it',
      )
  }
  const containerId = env.CNI_CONTAINERID ?? ''
  const ifname = env.CNI_IFNAME ?? ''
  const netns = env.CNI_NETNS ?? ''
  if (command === 'ADD' || command === 'DEL' || command === 'CHECK') {
    need('CNI_CONTAINERID', CONTAINER_ID.test(containerId))
    need('CNI_IFNAME', IFNAME.test(ifname) && ifname !== '.' && ifname !== '..')
    // DEL may come after the namespace is gone (or never existed)
    if (command !== 'DEL') need('CNI_NETNS', netns.startsWith('/'))
  }
  if (command !== 'VERSION') need('CNI_PATH', !!env.CNI_PATH)
  return { command, containerId, netns, ifname, args: parseArgs(env.CNI_ARGS ?? ''), path: (env.CNI_PATH ?? '').split(':').filter(Boolean) }
}

/** CNI_ARGS: "K1=V1;K2=V2" (kubelet passes K8S_POD_NAMESPACE, K8S_POD_NAME, …). */
export function parseArgs(s: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const part of s.split(';')) {
    if (!part) continue
    const i = part.indexOf('=')
    if (i <= 0) throw new CniError(Code.BAD_ENV, `CNI_ARGS entry "${part}" is not KEY=VALUE`, 'pass CNI_ARGS as K1=V1;K2=V2')
    out[part.slice(0, i)] = part.slice(i + 1)
  }
  return out
}

export interface CniInterface {
  name: string
  mac?: string
  /** 1.1.0 only */
  mtu?: number
  sandbox?: string
}
export interface CniIp {
  address: string
  gateway?: string
  interface?: number
}
export interface CniRoute {
  dst: string
  gw?: string
}
export interface CniResult {
  cniVersion: string
  interfaces?: CniInterface[]
  ips?: CniIp[]
  routes?: CniRoute[]
  dns?: Record<string, unknown>
}

/** A result as the given spec version writes it: 1.0.0 has no interface
 * `mtu` (added in 1.1.0); everything else is the same in both. */
export function convertResult(r: CniResult, to: CniVersion): CniResult {
  const out: CniResult = { ...r, cniVersion: to }
  if (to === '1.0.0' && r.interfaces) out.interfaces = r.interfaces.map(({ mtu: _mtu, ...rest }) => rest)
  return out
}

export function isSupported(v: string): v is CniVersion {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(v)
}
