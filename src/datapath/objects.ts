// The prebuilt BPF objects: where they are, what build they are, and loading
// one with this node's configuration written into .rodata before load.
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BpfObject, MapFd, parseBtf, type BpfProgram } from '../libbpf/index.js'
import { UserError } from '../errors.js'
import { ConfigLayout, encodeConfig, Programs, type DatapathConfig, type ProgramKey } from './abi.js'

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

/** Directory of the shipped objects (PODNET_BPF_DIR overrides, for tests). */
export function objectDir(): string {
  return process.env.PODNET_BPF_DIR ?? join(packageRoot, 'bpf', 'build')
}

export function objectPath(key: ProgramKey): string {
  const p = join(objectDir(), Programs[key].object)
  if (!existsSync(p)) {
    throw new UserError(`BPF object ${p} is missing`, 'reinstall podnet-bpf, or run `npm run build` in a source checkout')
  }
  return p
}

/** Identifies a build: re-attach replaces programs only when this changes. */
export function objectHash(key: ProgramKey): string {
  return createHash('sha256')
    .update(readFileSync(objectPath(key)))
    .digest('hex')
    .slice(0, 16)
}

/** Names of the maps the shipped objects pin by name (what a pin dir of
 * ours may hold besides programs); objects that are missing are skipped. */
export function pinnedMapNames(): string[] {
  const names = new Set<string>()
  for (const key of Object.keys(Programs) as ProgramKey[]) {
    const path = join(objectDir(), Programs[key].object)
    if (!existsSync(path)) continue
    const obj = BpfObject.open(path, { pinRoot: '/nonexistent' })
    try {
      for (const n of obj.mapNames()) if (!obj.map(n).isInternal && obj.map(n).pinPath() !== null) names.add(n)
    } finally {
      obj.close()
    }
  }
  return [...names]
}

/** Pins in pinDir that carry one of our map names but are not a map of the
 * shape our objects declare (another tool's, or an older layout): libbpf
 * would refuse to reuse them at load with a bare EINVAL. */
export function incompatiblePins(pinDir: string): string[] {
  const out: string[] = []
  const seen = new Set<string>()
  for (const key of Object.keys(Programs) as ProgramKey[]) {
    const obj = BpfObject.open(objectPath(key), { pinRoot: pinDir })
    try {
      for (const n of obj.mapNames()) {
        const m = obj.map(n)
        const pin = m.isInternal ? null : m.pinPath()
        if (!pin || seen.has(pin) || !existsSync(pin)) continue
        seen.add(pin)
        let have: { type: number; keySize: number; valueSize: number; maxEntries: number }
        try {
          const fd = MapFd.fromPin(pin)
          have = fd.info()
          fd.close()
        } catch {
          out.push(`${pin} is not a BPF map`)
          continue
        }
        const want = { type: m.type, keySize: m.keySize, valueSize: m.valueSize, maxEntries: m.maxEntries }
        if (Object.entries(want).some(([k, v]) => have[k as keyof typeof want] !== v))
          out.push(
            `${pin} (type ${have.type}, key ${have.keySize} B, value ${have.valueSize} B, ${have.maxEntries} entries; podnet-bpf's: type ${want.type}, key ${want.keySize} B, value ${want.valueSize} B, ${want.maxEntries} entries)`,
          )
      }
    } finally {
      obj.close()
    }
  }
  return out
}

export interface LoadedProgram {
  key: ProgramKey
  obj: BpfObject
  prog: BpfProgram
}

/** Opens, configures and loads one object. Maps are reused from (or pinned
 * to) pinDir by name; the caller owns the returned object (close()). */
export function loadProgram(key: ProgramKey, cfg: DatapathConfig, pinDir: string): LoadedProgram {
  const path = objectPath(key)
  const obj = BpfObject.open(path, { pinRoot: pinDir })
  try {
    const rodata = obj.rodata()
    const init = rodata.initialValue()
    encodeConfig(cfg).copy(init, configOffset(obj))
    rodata.setInitialValue(init)
    obj.load()
    return { key, obj, prog: obj.program(Programs[key].program) }
  } catch (e) {
    obj.close()
    throw e
  }
}

/** Offset of `CONFIG` in .rodata, from the object's BTF as libbpf fixed it
 * up at open (the .o file itself records DATASEC offsets as 0). */
function configOffset(obj: BpfObject): number {
  const raw = obj.btfRaw()
  if (!raw) throw new Error('BPF object has no BTF; rebuild with clang -g')
  const btf = parseBtf(raw)
  const sec = btf.findByName('.rodata', 'DATASEC')
  for (const v of sec?.vars ?? []) {
    const t = btf.types[v.type]
    if (t?.name === 'CONFIG') {
      if (v.size !== ConfigLayout.size) throw new Error(`CONFIG is ${v.size} bytes in BTF, ${ConfigLayout.size} in abi.ts`)
      return v.offset
    }
  }
  throw new Error('CONFIG not found in .rodata BTF')
}
