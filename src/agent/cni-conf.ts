// The CNI network configuration the agent writes once the node can take pods
// (container runtimes pick the first conflist in the directory; until it
// exists, they keep pods pending). Written atomically, only when it changes.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { conflistFor } from '../services/cni-install.js'

export const CONFLIST_NAME = '10-podnet.conflist'

export interface CniConfInput {
  podCidr: string
  pinDir: string
  mtu: number
}

/** The same conflist `podnet-bpf cni install` writes (plugin type podnet,
 * portmap chained), with this node's pod CIDR and MTU filled in. */
export function cniConflist(i: CniConfInput): Record<string, unknown> {
  return conflistFor({ pinDir: i.pinDir, podCidr: i.podCidr, mtu: i.mtu })
}

/** Returns the path and whether the file changed. */
export function writeCniConflist(dir: string, i: CniConfInput): { path: string; changed: boolean } {
  const path = join(dir, CONFLIST_NAME)
  const text = `${JSON.stringify(cniConflist(i), null, 2)}\n`
  let old: string | null = null
  try {
    old = readFileSync(path, 'utf8')
  } catch {
    /* first write */
  }
  if (old === text) return { path, changed: false }
  mkdirSync(dir, { recursive: true })
  const tmp = join(dir, `.${CONFLIST_NAME}.${process.pid}.tmp`)
  writeFileSync(tmp, text)
  renameSync(tmp, path)
  return { path, changed: true }
}
