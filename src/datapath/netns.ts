// Which network namespace this process is in. A node's pins and state belong
// to the namespace it was attached in; commands run from any other namespace
// would change the wrong node's devices and routes.
import { readdirSync, readlinkSync, statSync } from 'node:fs'

export interface NetnsId {
  dev: number
  ino: number
}

export function currentNetns(): NetnsId {
  const st = statSync('/proc/self/ns/net')
  return { dev: st.dev, ino: st.ino }
}

export function sameNetns(a: NetnsId, b: NetnsId): boolean {
  return a.dev === b.dev && a.ino === b.ino
}

/** How to enter `id`: its name under /run/netns, else a process in it, else nothing known. */
export function netnsEntry(id: NetnsId): { name: string | null; path: string | null } {
  for (const name of safeReaddir('/run/netns')) {
    try {
      const st = statSync(`/run/netns/${name}`)
      if (st.ino === id.ino && st.dev === id.dev) return { name, path: `/run/netns/${name}` }
    } catch {
      /* not a namespace mount */
    }
  }
  const link = `net:[${id.ino}]`
  for (const pid of safeReaddir('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    try {
      if (readlinkSync(`/proc/${pid}/ns/net`) === link) return { name: null, path: `/proc/${pid}/ns/net` }
    } catch {
      /* gone, or not ours to read */
    }
  }
  return { name: null, path: null }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir)
  } catch {
    return []
  }
}
