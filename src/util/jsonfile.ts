// State files: JSON validated by a zod schema on read, replaced atomically
// (write + rename) so a crash never leaves half a file.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import type { z } from './zod.js'

/** null when the file does not exist; throws when it is there but invalid. */
export function readJsonFile<S extends z.ZodType>(path: string, schema: S): z.infer<S> | null {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    return null
  }
  const r = schema.safeParse(JSON.parse(text))
  if (!r.success) throw new Error(`corrupt state file ${path}: ${r.error.message}`)
  return r.data
}

export function writeJsonAtomic(path: string, data: unknown): void {
  mkdirSync(dirname(path), { recursive: true })
  const tmp = `${path}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(data, null, 2))
  renameSync(tmp, path)
}
