// State files: JSON validated by a zod schema on read, replaced atomically
// (write + rename) so a crash never leaves half a file.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import type { z } from './zod.js'
import { UserError } from '../errors.js'

/** null when the file does not exist; throws when it is there but invalid. */
export function readJsonFile<S extends z.ZodType>(path: string, schema: S): z.infer<S> | null {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    return null
  }
  const fix = `move it away (mv ${path} ${path}.bad) and run attach again; detach then cleans up what it can`
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch (e) {
    throw new UserError(`state file ${path} is corrupt: ${(e as Error).message}`, fix)
  }
  const r = schema.safeParse(v)
  if (!r.success) {
    const i = r.error.issues[0]!
    throw new UserError(`state file ${path} is corrupt: ${i.path.join('.') || '(root)'}: ${i.message}`, fix)
  }
  return r.data
}

/** Root-only: the file 0600 in a 0700 directory (state names pin dirs,
 * devices and pods; nobody else needs to read it). */
export function writeJsonAtomic(path: string, data: unknown): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  const tmp = `${path}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(data, null, 2), { mode: 0o600 })
  renameSync(tmp, path)
}
