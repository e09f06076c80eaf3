// SPDX-License-Identifier: Apache-2.0
// A BPF ELF object opened and loaded by libbpf: bpf_object__open_file (+ opts),
// __load, __close, and the struct bpf_map / struct bpf_program inside it.

import { check, checkPtr } from './check.js'
import { BpfError } from './errors.js'
import { addressOf, libbpf, readMem, isNull, type Ptr } from './ffi.js'
import { startLogCapture } from './log.js'
import { progInfoByFd } from './prog.js'
import { btfRaw } from './kernel-btf.js'

const ENOENT = 2
const EINVAL = 22

/*
 * struct bpf_object_open_opts (libbpf 1.1, libbpf.h; sizeof 80 on LP64):
 *   0 size_t sz             8 const char *object_name   16 bool relaxed_maps
 *  24 const char *pin_root_path   32 __u32 :32 (removed attach_prog_fd)
 *  40 const char *kconfig  48 const char *btf_custom_path
 *  56 char *kernel_log_buf 64 size_t kernel_log_size   72 __u32 kernel_log_level
 * libbpf checks `sz` and that bytes past the fields it knows are zero.
 */
const OPEN_OPTS_SIZE = 80
const OPEN_OPTS_OBJECT_NAME = 8
const OPEN_OPTS_PIN_ROOT = 24
const OPEN_OPTS_KERNEL_LOG_LEVEL = 72

export interface OpenOptions {
  /** Directory (on bpffs) where maps with `pinning = LIBBPF_PIN_BY_NAME` are pinned/reused. Default /sys/fs/bpf. */
  pinRoot?: string
  /** Override the object name (defaults to the file's base name); prefixes internal map names. */
  objectName?: string
  /** kernel_log_level for program loads (1: log every load, 2: verbose, 4: stats). Failed loads log regardless. */
  kernelLogLevel?: number
}

/** Build open opts with the strings stored after the struct, so one live Buffer covers all pointers. */
function buildOpenOpts(opts: OpenOptions): Buffer {
  const pin = opts.pinRoot !== undefined ? Buffer.from(`${opts.pinRoot}\0`, 'utf8') : null
  const name = opts.objectName !== undefined ? Buffer.from(`${opts.objectName}\0`, 'utf8') : null
  const o = Buffer.alloc(OPEN_OPTS_SIZE + (pin?.length ?? 0) + (name?.length ?? 0))
  o.writeBigUInt64LE(BigInt(OPEN_OPTS_SIZE), 0)
  const base = addressOf(o)
  let off = OPEN_OPTS_SIZE
  if (pin) {
    pin.copy(o, off)
    o.writeBigUInt64LE(base + BigInt(off), OPEN_OPTS_PIN_ROOT)
    off += pin.length
  }
  if (name) {
    name.copy(o, off)
    o.writeBigUInt64LE(base + BigInt(off), OPEN_OPTS_OBJECT_NAME)
  }
  if (opts.kernelLogLevel !== undefined) o.writeUInt32LE(opts.kernelLogLevel, OPEN_OPTS_KERNEL_LOG_LEVEL)
  return o
}

export class BpfObject {
  private ptr: Ptr | null
  private readonly maps = new Map<string, BpfObjectMap>()
  private readonly progs = new Map<string, BpfProgram>()
  private loaded = false
  readonly path: string

  private constructor(ptr: Ptr, path: string) {
    this.ptr = ptr
    this.path = path
  }

  /** bpf_object__open_file(path, {pin_root_path}). Throws BpfError (with libbpf's log). */
  static open(path: string, opts: OpenOptions = {}): BpfObject {
    const lb = libbpf()
    const o = buildOpenOpts(opts)
    const cap = startLogCapture()
    try {
      const p = lb.bpf_object__open_file(path, o)
      checkPtr(p, `bpf_object__open_file(${path})`, cap.text)
      return new BpfObject(p, path)
    } finally {
      cap.stop()
    }
  }

  private handle(): Ptr {
    if (this.ptr === null) throw new Error(`BpfObject ${this.path} is closed`)
    return this.ptr
  }

  /** Object name (file base name without .o unless overridden). */
  get name(): string {
    return libbpf().bpf_object__name(this.handle()) ?? ''
  }

  /** The object's BTF as libbpf fixed it up at open (DATASEC offsets filled in), or null if it has none. */
  btfRaw(): Buffer | null {
    const p = libbpf().bpf_object__btf(this.handle())
    return isNull(p) ? null : btfRaw(p)
  }

  get isLoaded(): boolean {
    return this.loaded
  }

  /**
   * A map by name: the C variable name for BTF-defined maps, or an internal
   * map's section name (".rodata", ".bss", ".data") or its kernel name
   * ("<objname>.rodata", truncated by libbpf to fit 15 chars).
   */
  map(name: string): BpfObjectMap {
    return this.lookup(
      this.maps,
      name,
      'bpf_object__find_map_by_name',
      () => this.mapNames(),
      'maps',
      (p) => new BpfObjectMap(p, this),
    )
  }

  /** Names (bpf_map__name) of all maps, including internal ones like "<obj>.rodata". */
  mapNames(): string[] {
    const lb = libbpf()
    return this.names(
      (p) => lb.bpf_object__next_map(this.handle(), p),
      (p) => lb.bpf_map__name(p),
    )
  }

  /** The object's .rodata map (const volatile globals); throws if the object has none. */
  rodata(): BpfObjectMap {
    const n = this.mapNames().find((s) => s.endsWith('.rodata'))
    if (n === undefined) throw new BpfError(`rodata(${this.path}: no .rodata map)`, ENOENT)
    return this.map(n)
  }

  /** A program by its C function name. */
  program(name: string): BpfProgram {
    const find = 'bpf_object__find_program_by_name'
    return this.lookup(
      this.progs,
      name,
      find,
      () => this.programNames(),
      'programs',
      (p) => new BpfProgram(p, this),
    )
  }

  /** A map or program by name, wrapped once and cached; ENOENT lists the names there are. */
  private lookup<T>(
    cache: Map<string, T>,
    name: string,
    find: 'bpf_object__find_map_by_name' | 'bpf_object__find_program_by_name',
    names: () => string[],
    what: string,
    wrap: (p: Ptr) => T,
  ): T {
    const cached = cache.get(name)
    if (cached) return cached
    const p = libbpf()[find](this.handle(), name)
    if (isNull(p)) throw new BpfError(`${find}(${name} in ${this.path}; ${what}: ${names().join(', ')})`, ENOENT)
    const v = wrap(p)
    cache.set(name, v)
    return v
  }

  programNames(): string[] {
    const lb = libbpf()
    return this.names(
      (p) => lb.bpf_object__next_program(this.handle(), p),
      (p) => lb.bpf_program__name(p),
    )
  }

  /** Walks a libbpf `__next_*` iterator, collecting names. */
  private names(next: (p: Ptr | null) => Ptr, name: (p: Ptr) => string | null): string[] {
    const out: string[] = []
    for (let p = next(null); !isNull(p); p = next(p)) out.push(name(p) ?? '')
    return out
  }

  /** bpf_object__load: creates/reuses maps (pinning), loads programs. The error carries the verifier log. */
  load(): void {
    const h = this.handle()
    const cap = startLogCapture()
    try {
      check(libbpf().bpf_object__load(h), `bpf_object__load(${this.path})`, cap.text())
      this.loaded = true
    } finally {
      cap.stop()
    }
  }

  /** bpf_object__close: closes all map and program fds of the object (pins stay). Idempotent. */
  close(): void {
    if (this.ptr === null) return
    const p = this.ptr
    this.ptr = null
    this.maps.clear()
    this.progs.clear()
    libbpf().bpf_object__close(p)
  }

  /** @internal used by maps/programs to reject use after close. */
  assertOpen(): void {
    this.handle()
  }
}

/** A pointer into an open BpfObject: h() refuses it once the object is closed. */
abstract class BpfObjectPart {
  constructor(
    private readonly ptr: Ptr,
    private readonly obj: BpfObject,
  ) {}

  protected h(): Ptr {
    this.obj.assertOpen()
    return this.ptr
  }
}

/** A struct bpf_map* inside a BpfObject (valid until the object is closed). */
export class BpfObjectMap extends BpfObjectPart {
  get name(): string {
    return libbpf().bpf_map__name(this.h()) ?? ''
  }
  get keySize(): number {
    return libbpf().bpf_map__key_size(this.h())
  }
  get valueSize(): number {
    return libbpf().bpf_map__value_size(this.h())
  }
  get maxEntries(): number {
    return libbpf().bpf_map__max_entries(this.h())
  }
  get type(): number {
    return libbpf().bpf_map__type(this.h())
  }
  get flags(): number {
    return libbpf().bpf_map__map_flags(this.h())
  }
  get isInternal(): boolean {
    return libbpf().bpf_map__is_internal(this.h())
  }

  /** bpf_map__set_max_entries (before load). */
  setMaxEntries(n: number): void {
    check(libbpf().bpf_map__set_max_entries(this.h(), n), `bpf_map__set_max_entries(${this.name})`)
  }

  /** Copy of bpf_map__initial_value (the .rodata/.data/.bss image; after load, the live mmap). */
  initialValue(): Buffer {
    const size = Buffer.alloc(8)
    const p = libbpf().bpf_map__initial_value(this.h(), size)
    if (isNull(p)) throw new BpfError(`bpf_map__initial_value(${this.name})`, EINVAL)
    return readMem(p, Number(size.readBigUInt64LE(0)))
  }

  /** bpf_map__set_initial_value: `buf.length` must equal the map's value size. Before load only. */
  setInitialValue(buf: Buffer): void {
    check(libbpf().bpf_map__set_initial_value(this.h(), buf, buf.length), `bpf_map__set_initial_value(${this.name})`)
  }

  /** The map's fd (after load); owned by the object. */
  fd(): number {
    return check(libbpf().bpf_map__fd(this.h()), `bpf_map__fd(${this.name})`)
  }

  /** Where libbpf pins (or has pinned) this map, or null. */
  pinPath(): string | null {
    return libbpf().bpf_map__pin_path(this.h())
  }

  /** bpf_map__set_pin_path (before load; libbpf then pins/reuses at load). */
  setPinPath(path: string | null): void {
    check(libbpf().bpf_map__set_pin_path(this.h(), path), `bpf_map__set_pin_path(${this.name})`)
  }

  /** bpf_map__pin(path ?? pinPath()). */
  pin(path?: string): void {
    check(libbpf().bpf_map__pin(this.h(), path ?? null), `bpf_map__pin(${this.name}, ${path ?? this.pinPath() ?? ''})`)
  }

  /** bpf_map__unpin(path ?? pinPath()). */
  unpin(path?: string): void {
    check(libbpf().bpf_map__unpin(this.h(), path ?? null), `bpf_map__unpin(${this.name}, ${path ?? this.pinPath() ?? ''})`)
  }

  /** bpf_map__reuse_fd: use an existing map (e.g. from a pin) instead of creating one at load. */
  reuseFd(fd: number): void {
    check(libbpf().bpf_map__reuse_fd(this.h(), fd), `bpf_map__reuse_fd(${this.name}, ${fd})`)
  }
}

/** A struct bpf_program* inside a BpfObject. */
export class BpfProgram extends BpfObjectPart {
  /** C function name. */
  get name(): string {
    return libbpf().bpf_program__name(this.h()) ?? ''
  }

  /** ELF section, e.g. "tc". */
  get sectionName(): string {
    return libbpf().bpf_program__section_name(this.h()) ?? ''
  }

  /** bpf_program__set_autoload (before load). */
  setAutoload(on: boolean): void {
    check(libbpf().bpf_program__set_autoload(this.h(), on), `bpf_program__set_autoload(${this.name})`)
  }

  /** Program fd (after load); owned by the object. */
  fd(): number {
    return check(libbpf().bpf_program__fd(this.h()), `bpf_program__fd(${this.name})`)
  }

  /** Kernel program id. */
  id(): number {
    return progInfoByFd(this.fd()).id
  }

  pin(path: string): void {
    check(libbpf().bpf_program__pin(this.h(), path), `bpf_program__pin(${this.name}, ${path})`)
  }

  unpin(path: string): void {
    check(libbpf().bpf_program__unpin(this.h(), path), `bpf_program__unpin(${this.name}, ${path})`)
  }
}
