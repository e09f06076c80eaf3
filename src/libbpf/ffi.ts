// SPDX-License-Identifier: Apache-2.0
// The ONLY module that declares C signatures (libbpf.so.1 and libc.so.6).
// Everything else in src/libbpf/ goes through the functions exported here;
// nothing outside src/libbpf/ imports this file.
//
// Libraries are loaded lazily on first use. Pointers returned by C are
// zero-length Buffers (ref-napi convention); use isNull()/readMem() below.
// Pointers *passed* to C are Buffers (their data address is passed) or null.

import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

/** A native pointer as returned from C (zero-length Buffer). */
export type Ptr = Buffer
/** A pointer argument: a Buffer whose memory C reads/writes, or NULL. */
type InPtr = Buffer | null

// ---------------------------------------------------------------------------
// Minimal typings of ffi-napi / ref-napi: only what this file uses.

interface RefApi {
  NULL: Buffer
  isNull(b: Buffer): boolean
  address(b: Buffer): number
  reinterpret(b: Buffer, size: number, offset?: number): Buffer
}
type NativeFn = (...args: unknown[]) => unknown
interface FfiApi {
  Library(name: string, defs: Record<string, readonly [string, readonly string[]]>): Record<string, NativeFn>
  Callback: new (ret: string, args: readonly string[], fn: (...args: never[]) => unknown) => Buffer
  errno(): number
}

let refApi: RefApi | undefined
let ffiApi: FfiApi | undefined

function ffi(): FfiApi {
  if (ffiApi === undefined) {
    ffiApi = require('@2060.io/ffi-napi') as FfiApi
    refApi = require('@2060.io/ref-napi') as RefApi
  }
  return ffiApi
}
function ref(): RefApi {
  if (refApi === undefined) ffi()
  return refApi as RefApi
}

// ---------------------------------------------------------------------------
// libbpf.so.1 (libbpf 1.1 ABI; symbols checked with `nm -D`).
// int APIs return -errno (libbpf 1.0 mode); pointer APIs return NULL + errno.

export interface Libbpf {
  libbpf_major_version(): number
  libbpf_minor_version(): number
  libbpf_num_possible_cpus(): number
  libbpf_set_print(fn: InPtr): Ptr

  bpf_object__open_file(path: string, opts: InPtr /* bpf_object_open_opts */): Ptr
  bpf_object__load(obj: Ptr): number
  bpf_object__close(obj: Ptr): void
  bpf_object__name(obj: Ptr): string | null
  bpf_object__btf(obj: Ptr): Ptr
  bpf_object__find_map_by_name(obj: Ptr, name: string): Ptr
  bpf_object__next_map(obj: Ptr, prev: InPtr): Ptr
  bpf_object__find_program_by_name(obj: Ptr, name: string): Ptr
  bpf_object__next_program(obj: Ptr, prev: InPtr): Ptr

  bpf_map__name(map: Ptr): string | null
  bpf_map__type(map: Ptr): number
  bpf_map__key_size(map: Ptr): number
  bpf_map__value_size(map: Ptr): number
  bpf_map__max_entries(map: Ptr): number
  bpf_map__set_max_entries(map: Ptr, n: number): number
  bpf_map__map_flags(map: Ptr): number
  bpf_map__is_internal(map: Ptr): boolean
  bpf_map__initial_value(map: Ptr, psize: Buffer /* size_t* */): Ptr
  bpf_map__set_initial_value(map: Ptr, data: Buffer, size: number): number
  bpf_map__fd(map: Ptr): number
  bpf_map__pin_path(map: Ptr): string | null
  bpf_map__set_pin_path(map: Ptr, path: string | null): number
  bpf_map__pin(map: Ptr, path: string | null): number
  bpf_map__unpin(map: Ptr, path: string | null): number
  bpf_map__reuse_fd(map: Ptr, fd: number): number

  bpf_program__name(prog: Ptr): string | null
  bpf_program__section_name(prog: Ptr): string | null
  bpf_program__fd(prog: Ptr): number
  bpf_program__pin(prog: Ptr, path: string): number
  bpf_program__unpin(prog: Ptr, path: string): number
  bpf_program__set_autoload(prog: Ptr, autoload: boolean): number

  bpf_obj_get(path: string): number
  bpf_obj_pin(fd: number, path: string): number
  bpf_obj_get_info_by_fd(fd: number, info: Buffer, infoLen: Buffer /* __u32* */): number
  bpf_map_create(type: number, name: string | null, keySize: number, valueSize: number, maxEntries: number, opts: InPtr): number
  bpf_map_get_fd_by_id(id: number): number
  bpf_prog_get_fd_by_id(id: number): number
  bpf_map_lookup_elem(fd: number, key: InPtr, value: Buffer): number
  bpf_map_update_elem(fd: number, key: InPtr, value: Buffer, flags: number): number
  bpf_map_delete_elem(fd: number, key: InPtr): number
  bpf_map_get_next_key(fd: number, key: InPtr, nextKey: Buffer): number
  bpf_map_freeze(fd: number): number
  bpf_map_lookup_batch(fd: number, inBatch: InPtr, outBatch: Buffer, keys: Buffer, values: Buffer, count: Buffer, opts: InPtr): number
  bpf_map_update_batch(fd: number, keys: Buffer, values: Buffer, count: Buffer, opts: InPtr): number
  bpf_map_delete_batch(fd: number, keys: Buffer, count: Buffer, opts: InPtr): number
  bpf_prog_test_run_opts(fd: number, opts: Buffer): number
  bpf_enable_stats(type: number): number

  bpf_tc_hook_create(hook: Buffer): number
  bpf_tc_hook_destroy(hook: Buffer): number
  bpf_tc_attach(hook: Buffer, opts: Buffer): number
  bpf_tc_detach(hook: Buffer, opts: Buffer): number
  bpf_tc_query(hook: Buffer, opts: Buffer): number

  // netkit peer/primary hooks (bpf_mprog): target_fd carries the ifindex
  bpf_prog_attach_opts(progFd: number, target: number, type: number, opts: Buffer /* bpf_prog_attach_opts */): number
  bpf_prog_detach2(progFd: number, target: number, type: number): number
  bpf_prog_query(target: number, type: number, queryFlags: number, attachFlags: InPtr, progIds: InPtr, progCnt: Buffer): number

  // BPF links (tcx): target_fd carries the ifindex; opts NULL
  bpf_link_create(progFd: number, target: number, type: number, opts: InPtr /* bpf_link_create_opts */): number
  bpf_link_update(linkFd: number, newProgFd: number, opts: InPtr /* bpf_link_update_opts */): number
  bpf_link_detach(linkFd: number): number

  btf__load_from_kernel_by_id(id: number): Ptr
  btf__load_vmlinux_btf(): Ptr
  btf__parse(path: string, btfExt: InPtr): Ptr
  btf__raw_data(btf: Ptr, size: Buffer /* __u32* */): Ptr
  btf__free(btf: Ptr): void

  ring_buffer__new(mapFd: number, sampleCb: Buffer, ctx: InPtr, opts: InPtr): Ptr
  ring_buffer__poll(rb: Ptr, timeoutMs: number): number
  ring_buffer__consume(rb: Ptr): number
  ring_buffer__epoll_fd(rb: Ptr): number
  ring_buffer__free(rb: Ptr): void
}

const P = 'pointer'
const LIBBPF_DEFS = {
  libbpf_major_version: ['uint32', []],
  libbpf_minor_version: ['uint32', []],
  libbpf_num_possible_cpus: ['int', []],
  libbpf_set_print: [P, [P]],

  bpf_object__open_file: [P, ['string', P]],
  bpf_object__load: ['int', [P]],
  bpf_object__close: ['void', [P]],
  bpf_object__name: ['string', [P]],
  bpf_object__btf: [P, [P]],
  bpf_object__find_map_by_name: [P, [P, 'string']],
  bpf_object__next_map: [P, [P, P]],
  bpf_object__find_program_by_name: [P, [P, 'string']],
  bpf_object__next_program: [P, [P, P]],

  bpf_map__name: ['string', [P]],
  bpf_map__type: ['int', [P]],
  bpf_map__key_size: ['uint32', [P]],
  bpf_map__value_size: ['uint32', [P]],
  bpf_map__max_entries: ['uint32', [P]],
  bpf_map__set_max_entries: ['int', [P, 'uint32']],
  bpf_map__map_flags: ['uint32', [P]],
  bpf_map__is_internal: ['bool', [P]],
  bpf_map__initial_value: [P, [P, P]],
  bpf_map__set_initial_value: ['int', [P, P, 'size_t']],
  bpf_map__fd: ['int', [P]],
  bpf_map__pin_path: ['string', [P]],
  bpf_map__set_pin_path: ['int', [P, 'string']],
  bpf_map__pin: ['int', [P, 'string']],
  bpf_map__unpin: ['int', [P, 'string']],
  bpf_map__reuse_fd: ['int', [P, 'int']],

  bpf_program__name: ['string', [P]],
  bpf_program__section_name: ['string', [P]],
  bpf_program__fd: ['int', [P]],
  bpf_program__pin: ['int', [P, 'string']],
  bpf_program__unpin: ['int', [P, 'string']],
  bpf_program__set_autoload: ['int', [P, 'bool']],

  bpf_obj_get: ['int', ['string']],
  bpf_obj_pin: ['int', ['int', 'string']],
  bpf_obj_get_info_by_fd: ['int', ['int', P, P]],
  bpf_map_create: ['int', ['int', 'string', 'uint32', 'uint32', 'uint32', P]],
  bpf_map_get_fd_by_id: ['int', ['uint32']],
  bpf_prog_get_fd_by_id: ['int', ['uint32']],
  bpf_map_lookup_elem: ['int', ['int', P, P]],
  bpf_map_update_elem: ['int', ['int', P, P, 'uint64']],
  bpf_map_delete_elem: ['int', ['int', P]],
  bpf_map_get_next_key: ['int', ['int', P, P]],
  bpf_map_freeze: ['int', ['int']],
  bpf_map_lookup_batch: ['int', ['int', P, P, P, P, P, P]],
  bpf_map_update_batch: ['int', ['int', P, P, P, P]],
  bpf_map_delete_batch: ['int', ['int', P, P, P]],
  bpf_prog_test_run_opts: ['int', ['int', P]],
  bpf_enable_stats: ['int', ['int']],

  bpf_tc_hook_create: ['int', [P]],
  bpf_tc_hook_destroy: ['int', [P]],
  bpf_tc_attach: ['int', [P, P]],
  bpf_tc_detach: ['int', [P, P]],
  bpf_tc_query: ['int', [P, P]],

  bpf_prog_attach_opts: ['int', ['int', 'int', 'int', P]],
  bpf_prog_detach2: ['int', ['int', 'int', 'int']],
  bpf_prog_query: ['int', ['int', 'int', 'uint32', P, P, P]],

  bpf_link_create: ['int', ['int', 'int', 'int', P]],
  bpf_link_update: ['int', ['int', 'int', P]],
  bpf_link_detach: ['int', ['int']],

  btf__load_from_kernel_by_id: [P, ['uint32']],
  btf__load_vmlinux_btf: [P, []],
  btf__parse: [P, ['string', P]],
  btf__raw_data: [P, [P, P]],
  btf__free: ['void', [P]],

  ring_buffer__new: [P, ['int', P, P, P]],
  ring_buffer__poll: ['int', [P, 'int']],
  ring_buffer__consume: ['int', [P]],
  ring_buffer__epoll_fd: ['int', [P]],
  ring_buffer__free: ['void', [P]],
} as const satisfies Record<keyof Libbpf, readonly [string, readonly string[]]>

// ---------------------------------------------------------------------------
// libc.so.6. Functions return -1 and set errno on failure.

export interface Libc {
  close(fd: number): number
  statfs(path: string, buf: Buffer /* struct statfs, 120 bytes on x86_64/arm64 */): number
  mount(source: string, target: string, fstype: string, flags: number, data: InPtr): number
  umount2(target: string, flags: number): number
  if_nametoindex(name: string): number
  if_indextoname(index: number, buf: Buffer /* char[IF_NAMESIZE] */): Ptr
  strerror(errnum: number): string | null
  vsnprintf(buf: Buffer, size: number, fmt: Ptr, ap: Ptr /* va_list decays to a pointer */): number
  socket(domain: number, type: number, protocol: number): number
  send(fd: number, buf: Buffer, len: number, flags: number): number
  recv(fd: number, buf: Buffer, len: number, flags: number): number
  bind(fd: number, addr: Buffer, len: number): number
  setsockopt(fd: number, level: number, name: number, val: Buffer, len: number): number
  poll(fds: Buffer, nfds: number, timeoutMs: number): number
  flock(fd: number, operation: number): number
}

const LIBC_DEFS = {
  close: ['int', ['int']],
  statfs: ['int', ['string', P]],
  mount: ['int', ['string', 'string', 'string', 'ulong', P]],
  umount2: ['int', ['string', 'int']],
  if_nametoindex: ['uint32', ['string']],
  if_indextoname: [P, ['uint32', P]],
  strerror: ['string', ['int']],
  vsnprintf: ['int', [P, 'size_t', P, P]],
  socket: ['int', ['int', 'int', 'int']],
  send: ['long', ['int', P, 'size_t', 'int']],
  recv: ['long', ['int', P, 'size_t', 'int']],
  bind: ['int', ['int', P, 'uint32']],
  setsockopt: ['int', ['int', 'int', 'int', P, 'uint32']],
  poll: ['int', [P, 'ulong', 'int']],
  flock: ['int', ['int', 'int']],
} as const satisfies Record<keyof Libc, readonly [string, readonly string[]]>

let libbpfLib: Libbpf | undefined
let libcLib: Libc | undefined

/** libbpf.so.1, loaded on first use. */
export function libbpf(): Libbpf {
  if (libbpfLib === undefined) {
    libbpfLib = ffi().Library('libbpf.so.1', LIBBPF_DEFS) as unknown as Libbpf
    installPrint(libbpfLib)
  }
  return libbpfLib
}

/** libc.so.6, loaded on first use. */
export function libc(): Libc {
  if (libcLib === undefined) {
    libcLib = ffi().Library('libc.so.6', LIBC_DEFS) as unknown as Libc
  }
  return libcLib
}

/**
 * poll(2) for one fd on a libuv worker thread (ffi's `.async`), so a wait for
 * kernel events does not block the event loop. Resolves to poll's return
 * value (0 = timeout); the caller then reads with MSG_DONTWAIT on the main
 * thread, where errno is reliable.
 */
export function pollAsync(fd: number, events: number, timeoutMs: number): Promise<number> {
  const pfd = Buffer.alloc(8) // struct pollfd { int fd; short events; short revents; }
  pfd.writeInt32LE(fd, 0)
  pfd.writeInt16LE(events, 4)
  const fn = (libc() as unknown as Record<string, { async: (...a: unknown[]) => void }>).poll!
  return new Promise((resolve, reject) => {
    fn.async(pfd, 1, timeoutMs, (err: Error | null, ret: number) => (err ? reject(err) : resolve(ret)))
  })
}

/** errno as left by the last C call. Call it right after the failing call. */
export function errno(): number {
  return ffi().errno()
}

// ---------------------------------------------------------------------------
// Memory helpers.

export function isNull(p: Ptr): boolean {
  return ref().isNull(p)
}

/** Address of a Buffer's data, for __u64 pointer fields of bpf() attr structs. */
export function addressOf(b: Buffer): bigint {
  return b.length === 0 ? 0n : BigInt(ref().address(b))
}

/** Copy `size` bytes of native memory at `p` into a fresh Buffer. */
export function readMem(p: Ptr, size: number): Buffer {
  if (size === 0) return Buffer.alloc(0)
  return Buffer.from(ref().reinterpret(p, size, 0))
}

/** NUL-terminated string at `buf` (a Buffer we own). */
export function cString(buf: Buffer, offset = 0, max = buf.length - offset): string {
  const end = buf.indexOf(0, offset)
  return buf.toString('utf8', offset, end < 0 || end > offset + max ? offset + max : end)
}

// ---------------------------------------------------------------------------
// Callbacks (ffi.Callback). Callers must keep the returned Buffer referenced
// for as long as C may call it.

/** `int (*ring_buffer_sample_fn)(void *ctx, void *data, size_t size)`; data is copied before `fn` sees it. */
export function ringBufferCallback(fn: (data: Buffer) => number): Buffer {
  return new (ffi().Callback)('int', [P, P, 'size_t'], (_ctx: Ptr, data: Ptr, size: number | string) => fn(readMem(data, Number(size))))
}

/** libbpf_print_level: 0 = warn, 1 = info, 2 = debug. */
export type LibbpfPrintFn = (level: number, message: string) => void

let printHandler: LibbpfPrintFn | null = null
let printCallback: Buffer | undefined // kept referenced for the process lifetime
const printBuf = Buffer.alloc(4096)

function installPrint(lb: Libbpf): void {
  const lc = libc()
  // libbpf_print_fn_t: int (*)(enum libbpf_print_level, const char *fmt, va_list ap)
  printCallback = new (ffi().Callback)('int', ['int', P, P], (level: number, fmt: Ptr, ap: Ptr) => {
    const h = printHandler
    if (h === null) return 0
    const n = lc.vsnprintf(printBuf, printBuf.length, fmt, ap)
    h(level, printBuf.toString('utf8', 0, Math.max(0, Math.min(n, printBuf.length - 1))))
    return 0
  })
  lb.libbpf_set_print(printCallback)
}

/** Route libbpf's log output to `fn` (null silences it). */
export function setLibbpfPrint(fn: LibbpfPrintFn | null): void {
  printHandler = fn
}

// Buffers whose addresses were written into attr/opts structs are not
// arguments of the C call, so nothing else keeps them alive during it.
const liveRefs: Buffer[][] = []

/** Run `fn` (a C call) while keeping `bufs` referenced. */
export function withLive<T>(bufs: Buffer[], fn: () => T): T {
  liveRefs.push(bufs)
  try {
    return fn()
  } finally {
    liveRefs.pop()
  }
}
