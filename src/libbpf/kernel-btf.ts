// SPDX-License-Identifier: Apache-2.0
// Raw BTF blobs through libbpf (parse them with ./btf.ts).

import { checkPtr } from './check.js'
import { libbpf, readMem, type Ptr } from './ffi.js'

/** Copy of the raw (serialized) BTF of a struct btf*. */
export function btfRaw(btf: Ptr): Buffer {
  const size = Buffer.alloc(4)
  const p = checkPtr(libbpf().btf__raw_data(btf, size), 'btf__raw_data')
  return readMem(p, size.readUInt32LE(0))
}

function rawAndFree(btf: Ptr): Buffer {
  try {
    return btfRaw(btf)
  } finally {
    libbpf().btf__free(btf)
  }
}

/** The BTF object with this kernel id (e.g. MapInfo.btfId, ProgInfo.btfId). Module BTF is split BTF: parse with the vmlinux base. */
export function btfRawFromKernel(id: number): Buffer {
  return rawAndFree(checkPtr(libbpf().btf__load_from_kernel_by_id(id), `btf__load_from_kernel_by_id(${id})`))
}

/**
 * .BTF of an ELF object file (or a raw BTF file), as written by clang: DATASEC
 * sizes/offsets may still be 0 (libbpf fixes them at open time; use
 * BpfObject.btfRaw() for the fixed-up BTF). Struct layouts are exact.
 */
export function btfRawFromFile(path: string): Buffer {
  return rawAndFree(checkPtr(libbpf().btf__parse(path, null), `btf__parse(${path})`))
}

/** vmlinux BTF (/sys/kernel/btf/vmlinux). */
export function kernelBtfRaw(): Buffer {
  return rawAndFree(checkPtr(libbpf().btf__load_vmlinux_btf(), 'btf__load_vmlinux_btf'))
}
