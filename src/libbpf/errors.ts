// SPDX-License-Identifier: Apache-2.0
// Errors raised by the libbpf/libc wrapper: one class, carrying the failed
// operation, the errno and its symbolic name.

import { libc } from './ffi.js'

/** Linux errno numbers (asm-generic/errno*.h), kernel-internal ones and libbpf's own. */
const ERRNO_NAMES: Record<number, string> = {
  1: 'EPERM',
  2: 'ENOENT',
  3: 'ESRCH',
  4: 'EINTR',
  5: 'EIO',
  6: 'ENXIO',
  7: 'E2BIG',
  8: 'ENOEXEC',
  9: 'EBADF',
  10: 'ECHILD',
  11: 'EAGAIN',
  12: 'ENOMEM',
  13: 'EACCES',
  14: 'EFAULT',
  15: 'ENOTBLK',
  16: 'EBUSY',
  17: 'EEXIST',
  18: 'EXDEV',
  19: 'ENODEV',
  20: 'ENOTDIR',
  21: 'EISDIR',
  22: 'EINVAL',
  23: 'ENFILE',
  24: 'EMFILE',
  25: 'ENOTTY',
  26: 'ETXTBSY',
  27: 'EFBIG',
  28: 'ENOSPC',
  29: 'ESPIPE',
  30: 'EROFS',
  31: 'EMLINK',
  32: 'EPIPE',
  33: 'EDOM',
  34: 'ERANGE',
  35: 'EDEADLK',
  36: 'ENAMETOOLONG',
  37: 'ENOLCK',
  38: 'ENOSYS',
  39: 'ENOTEMPTY',
  40: 'ELOOP',
  42: 'ENOMSG',
  43: 'EIDRM',
  44: 'ECHRNG',
  45: 'EL2NSYNC',
  46: 'EL3HLT',
  47: 'EL3RST',
  48: 'ELNRNG',
  49: 'EUNATCH',
  50: 'ENOCSI',
  51: 'EL2HLT',
  52: 'EBADE',
  53: 'EBADR',
  54: 'EXFULL',
  55: 'ENOANO',
  56: 'EBADRQC',
  57: 'EBADSLT',
  59: 'EBFONT',
  60: 'ENOSTR',
  61: 'ENODATA',
  62: 'ETIME',
  63: 'ENOSR',
  64: 'ENONET',
  65: 'ENOPKG',
  66: 'EREMOTE',
  67: 'ENOLINK',
  68: 'EADV',
  69: 'ESRMNT',
  70: 'ECOMM',
  71: 'EPROTO',
  72: 'EMULTIHOP',
  73: 'EDOTDOT',
  74: 'EBADMSG',
  75: 'EOVERFLOW',
  76: 'ENOTUNIQ',
  77: 'EBADFD',
  78: 'EREMCHG',
  79: 'ELIBACC',
  80: 'ELIBBAD',
  81: 'ELIBSCN',
  82: 'ELIBMAX',
  83: 'ELIBEXEC',
  84: 'EILSEQ',
  85: 'ERESTART',
  86: 'ESTRPIPE',
  87: 'EUSERS',
  88: 'ENOTSOCK',
  89: 'EDESTADDRREQ',
  90: 'EMSGSIZE',
  91: 'EPROTOTYPE',
  92: 'ENOPROTOOPT',
  93: 'EPROTONOSUPPORT',
  94: 'ESOCKTNOSUPPORT',
  95: 'EOPNOTSUPP',
  96: 'EPFNOSUPPORT',
  97: 'EAFNOSUPPORT',
  98: 'EADDRINUSE',
  99: 'EADDRNOTAVAIL',
  100: 'ENETDOWN',
  101: 'ENETUNREACH',
  102: 'ENETRESET',
  103: 'ECONNABORTED',
  104: 'ECONNRESET',
  105: 'ENOBUFS',
  106: 'EISCONN',
  107: 'ENOTCONN',
  108: 'ESHUTDOWN',
  109: 'ETOOMANYREFS',
  110: 'ETIMEDOUT',
  111: 'ECONNREFUSED',
  112: 'EHOSTDOWN',
  113: 'EHOSTUNREACH',
  114: 'EALREADY',
  115: 'EINPROGRESS',
  116: 'ESTALE',
  117: 'EUCLEAN',
  118: 'ENOTNAM',
  119: 'ENAVAIL',
  120: 'EISNAM',
  121: 'EREMOTEIO',
  122: 'EDQUOT',
  123: 'ENOMEDIUM',
  124: 'EMEDIUMTYPE',
  125: 'ECANCELED',
  126: 'ENOKEY',
  127: 'EKEYEXPIRED',
  128: 'EKEYREVOKED',
  129: 'EKEYREJECTED',
  130: 'EOWNERDEAD',
  131: 'ENOTRECOVERABLE',
  132: 'ERFKILL',
  133: 'EHWPOISON',
  // kernel-internal (include/linux/errno.h); the bpf() syscall leaks some of them
  512: 'ERESTARTSYS',
  513: 'ERESTARTNOINTR',
  514: 'ERESTARTNOHAND',
  515: 'ENOIOCTLCMD',
  516: 'ERESTART_RESTARTBLOCK',
  517: 'EPROBE_DEFER',
  518: 'EOPENSTALE',
  519: 'ENOPARAM',
  521: 'EBADHANDLE',
  522: 'ENOTSYNC',
  523: 'EBADCOOKIE',
  524: 'ENOTSUPP',
  525: 'ETOOSMALL',
  526: 'ESERVERFAULT',
  527: 'EBADTYPE',
  528: 'EJUKEBOX',
  529: 'EIOCBQUEUED',
  530: 'ERECALLCONFLICT',
  // libbpf's own (enum libbpf_errno in libbpf.h)
  4000: 'LIBBPF_ERRNO__LIBELF',
  4001: 'LIBBPF_ERRNO__FORMAT',
  4002: 'LIBBPF_ERRNO__KVERSION',
  4003: 'LIBBPF_ERRNO__ENDIAN',
  4004: 'LIBBPF_ERRNO__INTERNAL',
  4005: 'LIBBPF_ERRNO__RELOC',
  4006: 'LIBBPF_ERRNO__LOAD',
  4007: 'LIBBPF_ERRNO__VERIFY',
  4008: 'LIBBPF_ERRNO__PROG2BIG',
  4009: 'LIBBPF_ERRNO__KVER',
  4010: 'LIBBPF_ERRNO__PROGTYPE',
  4011: 'LIBBPF_ERRNO__WRNGPID',
  4012: 'LIBBPF_ERRNO__INVSEQ',
  4013: 'LIBBPF_ERRNO__NLPARSE',
}

/** Messages libc has no text for (it prints "Unknown error N"). */
const EXTRA_MESSAGES: Record<number, string> = {
  512: 'Restart system call',
  515: 'No ioctl command',
  524: 'Operation not supported by this object',
  525: 'Buffer too small',
  527: 'Type not supported by server',
  4000: 'Something wrong in libelf',
  4001: 'BPF object format invalid',
  4002: "Incorrect or no 'version' section",
  4003: 'Endian mismatch',
  4004: 'Internal error in libbpf',
  4005: 'Relocation failed',
  4006: 'Load program failure for unknown reason',
  4007: 'Kernel verifier blocks program loading',
  4008: 'Program too big',
  4009: 'Incorrect kernel version',
  4010: "Kernel doesn't support this program type",
  4011: 'Wrong pid in netlink message',
  4012: 'Invalid netlink sequence',
  4013: 'Netlink parsing error',
}

/** Symbolic name of an errno value ('ENOENT'); accepts -errno too. Unknown → 'E<n>'. */
export function errnoName(n: number): string {
  const e = Math.abs(n)
  return ERRNO_NAMES[e] ?? `E${e}`
}

/** errno value for a symbolic name ('EEXIST' → 17), or undefined. */
export function errnoNumber(name: string): number | undefined {
  for (const [k, v] of Object.entries(ERRNO_NAMES)) if (v === name) return Number(k)
  return undefined
}

/** Human-readable text for an errno (libc strerror, with kernel/libbpf extras). */
export function strerror(n: number): string {
  const e = Math.abs(n)
  const extra = EXTRA_MESSAGES[e]
  if (extra !== undefined) return extra
  let s: string | null = null
  try {
    s = libc().strerror(e)
  } catch {
    // libc not loadable: fall back to the symbolic name
  }
  return s ?? errnoName(e)
}

/**
 * A failed libbpf/libc/bpf() call. `message` is "<op> failed: <code> (<strerror>)".
 * `log` holds libbpf's log lines emitted during the failing call when there were
 * any (verifier output on a failed load, for instance).
 */
export class BpfError extends Error {
  readonly op: string
  readonly errno: number
  readonly code: string
  readonly log: string | undefined

  constructor(op: string, errno: number, log?: string) {
    const e = Math.abs(errno)
    super(`${op} failed: ${errnoName(e)} (${strerror(e)})`)
    this.name = 'BpfError'
    this.op = op
    this.errno = e
    this.code = errnoName(e)
    this.log = log !== undefined && log.length > 0 ? log : undefined
  }
}

/** True if `e` is a BpfError with one of the given codes. */
export function isBpfError(e: unknown, ...codes: string[]): e is BpfError {
  return e instanceof BpfError && (codes.length === 0 || codes.includes(e.code))
}
