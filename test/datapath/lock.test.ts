// The node lock's own behaviour, on a temp file (no namespaces needed).
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { holdsLock, withFileLock } from '../../src/datapath/lock.js'
import { UserError } from '../../src/errors.js'

const dir = mkdtempSync(join(tmpdir(), 'pncore-lock-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('withFileLock', () => {
  it('is re-entrant within a process and released after the outermost call', () => {
    const path = join(dir, 'a.lock')
    const seen = withFileLock(path, { what: 'test' }, () =>
      withFileLock(path, { what: 'test' }, () => {
        expect(holdsLock(path)).toBe(true)
        return readFileSync(path, 'utf8')
      }),
    )
    expect(seen).toMatch(new RegExp(`^${process.pid} `)) // the holder's pid is recorded
    expect(holdsLock(path)).toBe(false)
  })

  it('releases the lock when the callback throws', () => {
    const path = join(dir, 'b.lock')
    expect(() =>
      withFileLock(path, { what: 'test' }, () => {
        throw new Error('boom')
      }),
    ).toThrow('boom')
    expect(holdsLock(path)).toBe(false)
    expect(withFileLock(path, { what: 'test', timeoutMs: 100 }, () => 1)).toBe(1)
  })

  it('waits for another process and times out with a UserError naming the lock', async () => {
    const path = join(dir, 'c.lock')
    const holder = spawn('sh', ['-c', `exec 9>>'${path}'; flock --exclusive 9; echo locked; exec sleep 30`], {
      stdio: ['ignore', 'pipe', 'ignore'],
    })
    await new Promise((r) => holder.stdout.once('data', r))
    try {
      let err: unknown
      try {
        withFileLock(path, { what: 'pin dir /x', timeoutMs: 300 }, () => 1)
      } catch (e) {
        err = e
      }
      expect(err).toBeInstanceOf(UserError)
      expect((err as UserError).message).toContain(`pin dir /x is busy`)
      expect((err as UserError).message).toContain(path)
      expect((err as UserError).hint).toMatch(/PODNET_LOCK_TIMEOUT_MS/)
    } finally {
      holder.kill('SIGKILL')
      await new Promise((r) => holder.on('exit', r))
    }
    expect(withFileLock(path, { what: 'test', timeoutMs: 2000 }, () => 2)).toBe(2)
  })
})
