// SPDX-License-Identifier: Apache-2.0
// Pure-TS BTF parser and value decoder (no FFI), following the kernel's
// Documentation/bpf/btf.rst: header (magic 0xeB9F), type section of
// struct btf_type records with kind-specific trailers, string section.
// Values are decoded little-endian (x86_64/arm64 hosts).

export const BTF_MAGIC = 0xeb9f

/** BTF_KIND_* numbers. */
export const BTF_KIND = {
  VOID: 0,
  INT: 1,
  PTR: 2,
  ARRAY: 3,
  STRUCT: 4,
  UNION: 5,
  ENUM: 6,
  FWD: 7,
  TYPEDEF: 8,
  VOLATILE: 9,
  CONST: 10,
  RESTRICT: 11,
  FUNC: 12,
  FUNC_PROTO: 13,
  VAR: 14,
  DATASEC: 15,
  FLOAT: 16,
  DECL_TAG: 17,
  TYPE_TAG: 18,
  ENUM64: 19,
} as const
export type BtfKind = keyof typeof BTF_KIND
const KIND_NAMES = Object.keys(BTF_KIND) as BtfKind[]

export interface BtfMember {
  name: string
  type: number
  /** Offset from the start of the struct, in bits. */
  bitOffset: number
  /** Bitfield width in bits (0 = not a bitfield). */
  bitfieldSize: number
}

export interface BtfEnumValue<V> {
  name: string
  value: V
}

interface Common {
  id: number
  name: string
}

/** struct / union */
export type BtfComposite<K extends 'STRUCT' | 'UNION'> = Common & { kind: K; size: number; members: BtfMember[] }
/** typedef and modifiers: a name (typedef) and the type they refer to */
export type BtfRef<K extends 'TYPEDEF' | 'VOLATILE' | 'CONST' | 'RESTRICT' | 'TYPE_TAG'> = Common & { kind: K; type: number }

export type BtfType =
  | (Common & { kind: 'VOID' })
  | (Common & { kind: 'INT'; size: number; signed: boolean; char: boolean; bool: boolean; bitOffset: number; bits: number })
  | (Common & { kind: 'PTR'; type: number })
  | (Common & { kind: 'ARRAY'; type: number; indexType: number; nelems: number })
  | BtfComposite<'STRUCT'>
  | BtfComposite<'UNION'>
  | (Common & { kind: 'ENUM'; size: number; signed: boolean; values: BtfEnumValue<number>[] })
  | (Common & { kind: 'ENUM64'; size: number; signed: boolean; values: BtfEnumValue<bigint>[] })
  | (Common & { kind: 'FWD'; union: boolean })
  | BtfRef<'TYPEDEF'>
  | BtfRef<'VOLATILE'>
  | BtfRef<'CONST'>
  | BtfRef<'RESTRICT'>
  | BtfRef<'TYPE_TAG'>
  | (Common & { kind: 'FUNC'; type: number; linkage: number })
  | (Common & { kind: 'FUNC_PROTO'; type: number; params: { name: string; type: number }[] })
  | (Common & { kind: 'VAR'; type: number; linkage: number })
  | (Common & { kind: 'DATASEC'; size: number; vars: { type: number; offset: number; size: number }[] })
  | (Common & { kind: 'FLOAT'; size: number })
  | (Common & { kind: 'DECL_TAG'; type: number; componentIdx: number })

export type BtfTypeOf<K extends BtfKind> = Extract<BtfType, { kind: K }>

/** One field of a struct/union layout, offsets in bytes (bit-level for bitfields). */
export interface BtfField {
  name: string
  type: number
  /** Byte offset (floor for bitfields). */
  offset: number
  /** Byte size of the field's type (for bitfields: of the underlying int). */
  size: number
  bitOffset: number
  bitfieldSize: number
}

export type BtfValue = number | bigint | BtfValue[] | { [name: string]: BtfValue }

const MODIFIERS = new Set<BtfKind>(['TYPEDEF', 'VOLATILE', 'CONST', 'RESTRICT', 'TYPE_TAG'])

export class Btf {
  /** Index = type id; 0 is void. For split BTF, includes the base's types. */
  readonly types: BtfType[]
  readonly pointerSize: number
  private byName: Map<string, number[]> | undefined

  constructor(types: BtfType[], pointerSize = 8) {
    this.types = types
    this.pointerSize = pointerSize
  }

  /** Type by id; throws on an invalid id. */
  get(id: number): BtfType {
    const t = this.types[id]
    if (t === undefined) throw new RangeError(`BTF type id ${id} out of range (0..${this.types.length - 1})`)
    return t
  }

  /** All types with that name (optionally of that kind). */
  findAllByName<K extends BtfKind>(name: string, kind?: K): (K extends BtfKind ? BtfTypeOf<K> : BtfType)[] {
    if (this.byName === undefined) {
      this.byName = new Map()
      for (const t of this.types) {
        if (t.name === '') continue
        const l = this.byName.get(t.name)
        if (l) l.push(t.id)
        else this.byName.set(t.name, [t.id])
      }
    }
    const ids = this.byName.get(name) ?? []
    return ids.map((i) => this.get(i)).filter((t) => kind === undefined || t.kind === kind) as (K extends BtfKind
      ? BtfTypeOf<K>
      : BtfType)[]
  }

  /** First type with that name (optionally of that kind). */
  findByName<K extends BtfKind>(name: string, kind?: K): BtfTypeOf<K> | undefined {
    return this.findAllByName(name, kind)[0] as BtfTypeOf<K> | undefined
  }

  /** Skips typedefs, modifiers (const, volatile, restrict, type tags) and VAR. */
  resolve(id: number): BtfType {
    let t = this.get(id)
    for (let guard = 0; MODIFIERS.has(t.kind) || t.kind === 'VAR'; guard++) {
      if (guard > 64) throw new Error(`BTF type ${id}: modifier loop`)
      t = this.get((t as { type: number }).type)
    }
    return t
  }

  /** Size in bytes of a type (btf.rst "resolve size"). */
  resolveSize(id: number): number {
    const t = this.resolve(id)
    switch (t.kind) {
      case 'INT':
      case 'ENUM':
      case 'ENUM64':
      case 'STRUCT':
      case 'UNION':
      case 'DATASEC':
      case 'FLOAT':
        return t.size
      case 'PTR':
        return this.pointerSize
      case 'ARRAY':
        return t.nelems * this.resolveSize(t.type)
      default:
        throw new Error(`BTF type ${id} (${t.kind}) has no size`)
    }
  }

  /** Struct/union members with byte offsets and sizes (anonymous members are kept as-is, name ''). */
  fields(id: number): BtfField[] {
    const t = this.resolve(id)
    if (t.kind !== 'STRUCT' && t.kind !== 'UNION') throw new Error(`BTF type ${id} is ${t.kind}, not a struct/union`)
    return t.members.map((m) => ({
      name: m.name,
      type: m.type,
      offset: Math.floor(m.bitOffset / 8),
      size: this.resolveSize(m.type),
      bitOffset: m.bitOffset,
      bitfieldSize: m.bitfieldSize,
    }))
  }

  /** C-like spelling of a type: "struct foo", "__u32", "char[6]", "int *". */
  typeName(id: number): string {
    const t = this.get(id)
    switch (t.kind) {
      case 'VOID':
        return 'void'
      case 'STRUCT':
      case 'UNION':
        return `${t.kind.toLowerCase()} ${t.name || '(anon)'}`
      case 'ENUM':
      case 'ENUM64':
        return `enum ${t.name || '(anon)'}`
      case 'FWD':
        return `${t.union ? 'union' : 'struct'} ${t.name}`
      case 'PTR':
        return `${this.typeName(t.type)} *`
      case 'ARRAY':
        return `${this.typeName(t.type)}[${t.nelems}]`
      case 'CONST':
      case 'VOLATILE':
      case 'RESTRICT':
        return `${t.kind.toLowerCase()} ${this.typeName(t.type)}`
      case 'TYPE_TAG':
        return this.typeName(t.type)
      default:
        return t.name
    }
  }
}

/** Reads a 32-bit word of the blob in its byte order. */
interface BtfWords {
  u32(o: number): number
  s32(o: number): number
}

/** The blob's header: byte order and where the type and string sections are. */
interface BtfSections extends BtfWords {
  typeOff: number
  typeEnd: number
  strOff: number
  strLen: number
}

function readHeader(raw: Buffer): BtfSections {
  if (raw.length < 24) throw new Error('BTF: blob too short for a header')
  let le: boolean
  if (raw.readUInt16LE(0) === BTF_MAGIC) le = true
  else if (raw.readUInt16BE(0) === BTF_MAGIC) le = false
  else throw new Error(`BTF: bad magic 0x${raw.readUInt16LE(0).toString(16)}`)
  const u32 = (o: number): number => (le ? raw.readUInt32LE(o) : raw.readUInt32BE(o))
  const s32 = (o: number): number => (le ? raw.readInt32LE(o) : raw.readInt32BE(o))
  const version = raw.readUInt8(2)
  if (version !== 1) throw new Error(`BTF: unsupported version ${version}`)
  const hdrLen = u32(4)
  const typeOff = hdrLen + u32(8)
  const typeEnd = typeOff + u32(12)
  const strOff = hdrLen + u32(16)
  const strLen = u32(20)
  if (typeEnd > raw.length || strOff + strLen > raw.length) throw new Error('BTF: sections exceed blob')
  return { u32, s32, typeOff, typeEnd, strOff, strLen }
}

/** What a kind-specific parser reads: the blob, its strings, and the common part of the record. */
interface BtfRecord extends BtfWords {
  str(off: number): string
  id: number
  name: string
  vlen: number
  kflag: boolean
  sizeOrType: number
}

/** Kinds whose trailer is fixed (0 to 12 bytes): the type and the trailer's length. */
function parseFixed(kind: BtfKind, r: BtfRecord, p: number): [BtfType, number] | null {
  const { id, name, sizeOrType, kflag, u32, s32 } = r
  switch (kind) {
    case 'INT': {
      const v = u32(p)
      const enc = (v >>> 24) & 0x0f
      const int = { signed: (enc & 1) !== 0, char: (enc & 2) !== 0, bool: (enc & 4) !== 0, bitOffset: (v >>> 16) & 0xff, bits: v & 0xff }
      return [{ kind, id, name, size: sizeOrType, ...int }, 4]
    }
    case 'PTR':
      return [{ kind, id, name, type: sizeOrType }, 0]
    case 'ARRAY':
      return [{ kind, id, name, type: u32(p), indexType: u32(p + 4), nelems: u32(p + 8) }, 12]
    case 'FWD':
      return [{ kind, id, name, union: kflag }, 0]
    case 'TYPEDEF':
    case 'VOLATILE':
    case 'CONST':
    case 'RESTRICT':
    case 'TYPE_TAG':
      return [{ kind, id, name, type: sizeOrType }, 0]
    case 'FUNC':
      return [{ kind, id, name, type: sizeOrType, linkage: r.vlen }, 0]
    case 'VAR':
      return [{ kind, id, name, type: sizeOrType, linkage: u32(p) }, 4]
    case 'FLOAT':
      return [{ kind, id, name, size: sizeOrType }, 0]
    case 'DECL_TAG':
      return [{ kind, id, name, type: sizeOrType, componentIdx: s32(p) }, 4]
    default:
      return null
  }
}

/** Kinds with vlen trailing entries (members, enumerators, parameters, variables). */
function parseList(kind: BtfKind, r: BtfRecord, p: number): [BtfType, number] {
  const { id, name, sizeOrType: size, vlen, kflag, u32, s32, str } = r
  const each = <T>(stride: number, one: (q: number) => T): [T[], number] => [
    Array.from({ length: vlen }, (_, i) => one(p + i * stride)),
    vlen * stride,
  ]
  switch (kind) {
    case 'STRUCT':
    case 'UNION': {
      const [members, len] = each<BtfMember>(12, (q) => {
        const off = u32(q + 8)
        return { name: str(u32(q)), type: u32(q + 4), bitOffset: kflag ? off & 0xffffff : off, bitfieldSize: kflag ? off >>> 24 : 0 }
      })
      return [{ kind, id, name, size, members }, len]
    }
    case 'ENUM': {
      const [values, len] = each<BtfEnumValue<number>>(8, (q) => ({ name: str(u32(q)), value: kflag ? s32(q + 4) : u32(q + 4) }))
      return [{ kind, id, name, size, signed: kflag, values }, len]
    }
    case 'ENUM64': {
      const [values, len] = each<BtfEnumValue<bigint>>(12, (q) => {
        const v = (BigInt(u32(q + 8)) << 32n) | BigInt(u32(q + 4))
        return { name: str(u32(q)), value: kflag ? BigInt.asIntN(64, v) : v }
      })
      return [{ kind, id, name, size, signed: kflag, values }, len]
    }
    case 'FUNC_PROTO': {
      const [params, len] = each(8, (q) => ({ name: str(u32(q)), type: u32(q + 4) }))
      return [{ kind, id, name, type: size, params }, len]
    }
    case 'DATASEC': {
      const [vars, len] = each(12, (q) => ({ type: u32(q), offset: u32(q + 4), size: u32(q + 8) }))
      return [{ kind, id, name, size, vars }, len]
    }
    default:
      throw new Error(`BTF: type ${id} has unknown kind ${kind}`)
  }
}

/** Parse raw BTF (.BTF section or /sys/kernel/btf/*). Pass `base` for split BTF (kernel modules). */
export function parseBtf(raw: Buffer, base?: Btf): Btf {
  const { u32, s32, typeOff, typeEnd, strOff, strLen } = readHeader(raw)
  const baseTypes = base?.types ?? [{ kind: 'VOID', id: 0, name: '' } as BtfType]
  const baseStrLen = base ? baseStringLength(base) : 0
  const types: BtfType[] = [...baseTypes]
  const baseStr = base ? (base as BtfWithStrings)[STRINGS] : undefined

  const str = (off: number): string => {
    if (off < baseStrLen && baseStr !== undefined) return readStr(baseStr, off)
    const o = off - baseStrLen
    if (o < 0 || o >= strLen) throw new Error(`BTF: string offset ${off} out of range`)
    return readStr(raw, strOff + o, strOff + strLen)
  }

  let p = typeOff
  while (p < typeEnd) {
    const id = types.length
    const info = u32(p + 4)
    const kindNo = (info >>> 24) & 0x1f
    const r: BtfRecord = { u32, s32, str, id, name: str(u32(p)), vlen: info & 0xffff, kflag: info >>> 31 === 1, sizeOrType: u32(p + 8) }
    p += 12
    const kind = KIND_NAMES[kindNo]
    if (kind === undefined || kind === 'VOID') throw new Error(`BTF: type ${id} has unknown kind ${kindNo}`)
    const [type, len] = parseFixed(kind, r, p) ?? parseList(kind, r, p)
    types.push(type)
    p += len
  }
  if (p !== typeEnd) throw new Error('BTF: type section does not end on a record boundary')
  const btf = new Btf(types) as BtfWithStrings
  btf[STRINGS] = base
    ? Buffer.concat([baseStr ?? Buffer.alloc(0), raw.subarray(strOff, strOff + strLen)])
    : raw.subarray(strOff, strOff + strLen)
  return btf
}

// The string section is kept (hidden) so split BTF can resolve base strings.
const STRINGS = Symbol('btf.strings')
type BtfWithStrings = Btf & { [STRINGS]?: Buffer }

function baseStringLength(b: Btf): number {
  return (b as BtfWithStrings)[STRINGS]?.length ?? 0
}

function readStr(buf: Buffer, off: number, end = buf.length): string {
  const z = buf.indexOf(0, off)
  return buf.toString('utf8', off, z < 0 || z > end ? end : z)
}

// ---------------------------------------------------------------------------
// Value decoding.

function readUnsigned(buf: Buffer, off: number, size: number): bigint {
  let v = 0n
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(buf[off + i] ?? 0)
  return v
}

function intValue(v: bigint, bits: number, signed: boolean): number | bigint {
  const x = signed ? BigInt.asIntN(bits, v) : BigInt.asUintN(bits, v)
  return bits <= 32 ? Number(x) : x
}

function decodeInt(buf: Buffer, byteOff: number, size: number, bitOff: number, bits: number, signed: boolean): number | bigint {
  if (bitOff === 0 && bits === size * 8) {
    switch (size) {
      case 1:
        return signed ? buf.readInt8(byteOff) : buf.readUInt8(byteOff)
      case 2:
        return signed ? buf.readInt16LE(byteOff) : buf.readUInt16LE(byteOff)
      case 4:
        return signed ? buf.readInt32LE(byteOff) : buf.readUInt32LE(byteOff)
      case 8:
        return signed ? buf.readBigInt64LE(byteOff) : buf.readBigUInt64LE(byteOff)
    }
  }
  // Bitfields and odd sizes (__int128): gather the covering bytes.
  const first = byteOff + Math.floor(bitOff / 8)
  const shift = bitOff % 8
  const nbytes = Math.ceil((shift + bits) / 8)
  if (first + nbytes > buf.length) throw new RangeError('BTF decode: value exceeds buffer')
  const raw = readUnsigned(buf, first, nbytes) >> BigInt(shift)
  return intValue(raw, bits, signed)
}

/**
 * Decode the value of BTF type `typeId` at `buf[offset]`: ints as number
 * (bigint when wider than 32 bits), enums as number (ENUM64: bigint), floats as
 * number, pointers as bigint, arrays (char arrays too) as arrays, structs and
 * unions as objects (anonymous struct/union members are merged into the
 * parent, like C), DATASEC as { varName: value }.
 */
export function decodeValue(btf: Btf, typeId: number, buf: Buffer, offset = 0): BtfValue {
  const t = btf.resolve(typeId)
  const need = t.kind === 'FWD' || t.kind === 'FUNC' || t.kind === 'FUNC_PROTO' || t.kind === 'VOID' ? 0 : btf.resolveSize(t.id)
  if (offset + need > buf.length) {
    throw new RangeError(`BTF decode: ${btf.typeName(typeId)} needs ${need} bytes at ${offset}, buffer has ${buf.length}`)
  }
  switch (t.kind) {
    case 'INT':
      return decodeInt(buf, offset, t.size, t.bitOffset, t.bits, t.signed)
    case 'ENUM':
      return decodeInt(buf, offset, t.size, 0, t.size * 8, t.signed)
    case 'ENUM64': {
      const v = decodeInt(buf, offset, t.size, 0, t.size * 8, t.signed)
      return typeof v === 'bigint' ? v : BigInt(v)
    }
    case 'FLOAT':
      if (t.size === 4) return buf.readFloatLE(offset)
      if (t.size === 8) return buf.readDoubleLE(offset)
      return readUnsigned(buf, offset, t.size)
    case 'PTR':
      return readUnsigned(buf, offset, btf.pointerSize)
    case 'ARRAY': {
      const esz = btf.resolveSize(t.type)
      const out: BtfValue[] = new Array<BtfValue>(t.nelems)
      for (let i = 0; i < t.nelems; i++) out[i] = decodeValue(btf, t.type, buf, offset + i * esz)
      return out
    }
    case 'STRUCT':
    case 'UNION': {
      const obj: { [name: string]: BtfValue } = {}
      for (const m of t.members) {
        const mt = btf.resolve(m.type)
        let v: BtfValue
        if (m.bitfieldSize > 0 || (mt.kind === 'INT' && m.bitOffset % 8 !== 0)) {
          const size = btf.resolveSize(m.type)
          const signed = mt.kind === 'INT' ? mt.signed : mt.kind === 'ENUM' ? mt.signed : false
          const bits = m.bitfieldSize > 0 ? m.bitfieldSize : mt.kind === 'INT' ? mt.bits : size * 8
          v = decodeInt(buf, offset, size, m.bitOffset, bits, signed)
        } else {
          v = decodeValue(btf, m.type, buf, offset + m.bitOffset / 8)
        }
        if (m.name === '' && (mt.kind === 'STRUCT' || mt.kind === 'UNION') && typeof v === 'object' && !Array.isArray(v)) {
          Object.assign(obj, v)
        } else {
          obj[m.name] = v
        }
      }
      return obj
    }
    case 'DATASEC': {
      const obj: { [name: string]: BtfValue } = {}
      for (const vs of t.vars) {
        const vt = btf.get(vs.type)
        const vname = vt.name
        obj[vname] = decodeValue(btf, vs.type, buf, offset + vs.offset)
      }
      return obj
    }
    default:
      throw new Error(`BTF decode: cannot decode ${t.kind} (type ${typeId})`)
  }
}
