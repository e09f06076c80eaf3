// The prebuilt BPF objects: where they are, what build they are, and loading
// one with this node's configuration written into .rodata before load.
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BpfObject, parseBtf, type BpfProgram } from '../libbpf/index.js'
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
