// One small file per CNI attachment (container ID, ifname, IP, namespace):
// DEL finds the IP without a prevResult, and GC knows what it may remove and
// whose IPAM allocation to release. Kept under the node state dir (/run), so
// they go with a reboot, as the devices do.
import { mkdirSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { z } from '../util/zod.js'
import { readJsonFile, writeJsonAtomic } from '../util/jsonfile.js'
import { stateDir } from '../services/state.js'

const RecordSchema = z.object({
  containerId: z.string(),
  ifname: z.string(),
  hostIf: z.string(),
  netns: z.string(),
  ip: z.string(),
  network: z.string(),
  podCidr: z.string(),
  createdAt: z.string(),
})
export type AttachmentRecord = z.infer<typeof RecordSchema>

function dirOf(pinDir: string): string {
  return join(stateDir(), 'cni', pinDir.replace(/\//g, '_'))
}

export function saveRecord(pinDir: string, r: AttachmentRecord): void {
  writeJsonAtomic(join(dirOf(pinDir), `${r.hostIf}.json`), r)
}

export function loadRecord(pinDir: string, hostIf: string): AttachmentRecord | null {
  try {
    return readJsonFile(join(dirOf(pinDir), `${hostIf}.json`), RecordSchema)
  } catch {
    return null
  }
}

export function removeRecord(pinDir: string, hostIf: string): void {
  rmSync(join(dirOf(pinDir), `${hostIf}.json`), { force: true })
}

export function listRecords(pinDir: string): AttachmentRecord[] {
  let files: string[]
  try {
    files = readdirSync(dirOf(pinDir)).filter((f) => f.endsWith('.json'))
  } catch {
    return []
  }
  return files.map((f) => loadRecord(pinDir, f.slice(0, -5))).filter((r): r is AttachmentRecord => r !== null)
}

export function ensureRecordDir(pinDir: string): void {
  mkdirSync(dirOf(pinDir), { recursive: true })
}
