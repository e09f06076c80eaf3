// BGP test helpers: BIRD instances the tests start themselves (a ToR router,
// a rogue speaker), each with its own config and control socket in the test's
// directory, inside a namespace of the test; and cleanup of every BIRD whose
// pid file lives under a directory of the test.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, writeFileSync, openSync, closeSync } from 'node:fs'
import { join } from 'node:path'
import { sh } from './sys.js'

export interface Bird {
  proc: ChildProcess
  socket: string
  birdc(...args: string[]): string
}

export function startBird(ns: string, dir: string, name: string, conf: string): Bird {
  const cfg = join(dir, `${name}.conf`)
  const socket = join(dir, `${name}.ctl`)
  writeFileSync(cfg, conf)
  const check = sh('bird', ['-p', '-c', cfg])
  if (check.status !== 0) throw new Error(`${name}: ${check.stderr}`)
  const out = openSync(join(dir, `${name}.log`), 'a')
  const proc = spawn('nsenter', [`--net=/run/netns/${ns}`, 'bird', '-f', '-c', cfg, '-s', socket, '-P', join(dir, `${name}.pid`)], {
    stdio: ['ignore', out, out],
  })
  closeSync(out)
  return { proc, socket, birdc: (...args) => sh('birdc', ['-s', socket, ...args], { timeoutMs: 5000 }).stdout }
}

/** Kills every BIRD whose pid file is under `dir` (recursively): agents killed with SIGKILL leave theirs. */
export function killBirdsUnder(dir: string): void {
  if (!existsSync(dir)) return
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile() || !e.name.endsWith('.pid')) continue
    const pid = Number(readFileSync(join(e.parentPath, e.name), 'utf8').trim())
    if (!Number.isInteger(pid) || pid <= 1) continue
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'bird') process.kill(pid, 'SIGKILL')
    } catch {
      /* gone */
    }
  }
}

/** Prefixes in a BIRD's master4 table (`show route`). */
export function ribPrefixes(b: Bird): string[] {
  return [...b.birdc('show', 'route').matchAll(/^(\d+\.\d+\.\d+\.\d+\/\d+)/gm)].map((m) => m[1]!).sort()
}
