// An exclusive lock on a file (flock semantics): one writer per node at a
// time across processes, re-entrant within a process, released by the kernel
// when the holder exits however it exits. The holder's pid and command are
// written into the file so a waiter that gives up can name it.
import { closeSync, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import { tryFlock } from '../libbpf/index.js'
import { UserError } from '../errors.js'

export interface LockOptions {
  /** how long to wait for another holder (default PODNET_LOCK_TIMEOUT_MS or 30 s) */
  timeoutMs?: number
  /** what the lock protects, for the error message (e.g. "pin dir /sys/fs/bpf/podnet") */
  what: string
}

interface Held {
  fd: number
  depth: number
}

/** Locks this process holds, by path: nested calls pass through. */
const held = new Map<string, Held>()
const sleeper = new Int32Array(new SharedArrayBuffer(4))

function defaultTimeout(): number {
  const env = Number(process.env.PODNET_LOCK_TIMEOUT_MS)
  return Number.isFinite(env) && env > 0 ? env : 30_000
}

/** True when this process holds the lock at `path`. */
export function holdsLock(path: string): boolean {
  return held.has(path)
}

/** Runs `fn` (synchronous) holding the exclusive lock at `path`. */
export function withFileLock<T>(path: string, opts: LockOptions, fn: () => T): T {
  const mine = held.get(path)
  if (mine) {
    mine.depth++
    try {
      return fn()
    } finally {
      mine.depth--
    }
  }
  const fd = acquire(path, opts)
  held.set(path, { fd, depth: 1 })
  try {
    return fn()
  } finally {
    held.delete(path)
    closeSync(fd) // closing the last descriptor releases the flock
  }
}

/** Removes the lock file of a lock this process holds (e.g. detach of the
 * node it protects). Waiters notice the file is gone and retry on a new one. */
export function removeHeldLockFile(path: string): void {
  if (!held.has(path)) throw new Error(`removeHeldLockFile(${path}) without holding it`)
  try {
    unlinkSync(path)
  } catch {
    /* already gone */
  }
}

function acquire(path: string, opts: LockOptions): number {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  const deadline = Date.now() + (opts.timeoutMs ?? defaultTimeout())
  let pause = 2
  for (;;) {
    const fd = openSync(path, 'a+', 0o600)
    let taken = false
    try {
      taken = tryFlock(fd) && sameFile(fd, path)
    } finally {
      if (!taken) closeSync(fd)
    }
    if (taken) {
      recordHolder(fd)
      return fd
    }
    if (Date.now() >= deadline) throw timeoutError(path, opts)
    Atomics.wait(sleeper, 0, 0, pause)
    pause = Math.min(pause * 2, 50)
  }
}

/** The file we locked is still the one at `path` (not unlinked by a detach
 * between our open and our flock). */
function sameFile(fd: number, path: string): boolean {
  try {
    return fstatSync(fd).ino === statSync(path).ino
  } catch {
    return false
  }
}

function recordHolder(fd: number): void {
  const line = `${process.pid} ${process.argv.slice(1).join(' ')}\n`
  ftruncateSync(fd, 0)
  writeSync(fd, line, 0)
}

function timeoutError(path: string, opts: LockOptions): UserError {
  let holder = 'another process'
  try {
    const [pid, ...cmd] = readFileSync(path, 'utf8').trim().split(' ')
    if (pid) holder = `pid ${pid}${cmd.length ? ` (${cmd.join(' ')})` : ''}`
  } catch {
    /* unreadable: keep the generic name */
  }
  const secs = ((opts.timeoutMs ?? defaultTimeout()) / 1000).toFixed(0)
  return new UserError(
    `${opts.what} is busy: ${holder} holds its lock ${path} (waited ${secs} s)`,
    `wait for it to finish and retry; if it is stuck, stop it (its lock goes with it) or raise PODNET_LOCK_TIMEOUT_MS`,
  )
}
