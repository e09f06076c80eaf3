// podnet-cni: the CNI plugin's own entry (no CLI framework loaded). Reads
// CNI_* from the environment and the network config from stdin, writes a
// result or a CNI error object to stdout, logs to a file.
import { readFileSync } from 'node:fs'
import { DEFAULT_LOG_FILE, Log } from './log.js'
import { parseNetConf } from './netconf.js'
import { CniError, Code, LATEST, SUPPORTED_VERSIONS, parseEnv, type CniEnv } from './protocol.js'

function readStdin(): string {
  try {
    return readFileSync(0, 'utf8')
  } catch (e) {
    throw new CniError(Code.IO, `cannot read the network config from stdin: ${(e as Error).message}`)
  }
}

// the verbs (and through them libbpf's FFI) load only for verbs that need them: VERSION stays cheap
async function run(env: CniEnv, stdin: string, log: Log, setVersion: (v: string) => void): Promise<unknown> {
  if (env.command === 'VERSION') return { cniVersion: LATEST, supportedVersions: SUPPORTED_VERSIONS }
  const conf = parseNetConf(stdin)
  setVersion(conf.cniVersion)
  if (conf.logFile) log.setFile(conf.logFile)
  if ((env.command === 'STATUS' || env.command === 'GC') && conf.cniVersion !== '1.1.0')
    throw new CniError(
      Code.INCOMPATIBLE_VERSION,
      `${env.command} needs cniVersion 1.1.0 (the config says ${conf.cniVersion})`,
      'set cniVersion 1.1.0',
    )
  const { cmdAdd, cmdCheck, cmdDel, cmdGc, cmdStatus } = await import('./verbs.js')
  switch (env.command) {
    case 'ADD':
      return cmdAdd(env, conf, log)
    case 'DEL':
      return cmdDel(env, conf, log)
    case 'CHECK':
      return cmdCheck(env, conf, log)
    case 'STATUS':
      return cmdStatus(env, conf)
    case 'GC':
      return cmdGc(env, conf, log)
  }
}

async function main(): Promise<void> {
  const e = process.env
  const log = new Log(e.PODNET_CNI_LOG ?? DEFAULT_LOG_FILE, {
    command: e.CNI_COMMAND,
    args: e.CNI_ARGS,
    containerId: e.CNI_CONTAINERID,
    ifname: e.CNI_IFNAME,
    netns: e.CNI_NETNS,
    pid: process.pid,
  })
  let version: string = LATEST
  try {
    const env = parseEnv(e)
    const out = await run(env, env.command === 'VERSION' ? '' : readStdin(), log, (v) => (version = v))
    // ADD and VERSION print a result; the other verbs print nothing on success
    if (env.command === 'ADD' || env.command === 'VERSION') process.stdout.write(JSON.stringify(out) + '\n')
    if (env.command !== 'VERSION') log.write('info', `${env.command} ok`)
  } catch (err) {
    const c = err instanceof CniError ? err : (await import('./verbs.js')).toCniError(err)
    log.write('error', c.message, { code: c.code, details: c.details, stack: c.code === Code.INTERNAL ? (err as Error).stack : undefined })
    process.stdout.write(JSON.stringify(c.toJSON(version)) + '\n')
    process.exitCode = 1
  }
}

await main()
