// Temporary directories of a test file, removed after the file's last test
// (test/support/cleanup.setup.ts runs removeTempDirs in an afterAll of every
// file), also when its tests fail: a long CI run must not leave /tmp behind.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const made: string[] = []

/** mkdtemp under the system temp dir, registered for removal. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  made.push(dir)
  return dir
}

/** Removes every directory tempDir made so far; returns how many. */
export function removeTempDirs(): number {
  const n = made.length
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true })
  return n
}
