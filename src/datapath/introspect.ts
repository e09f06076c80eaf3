// Map introspection for `maps list|dump` and `monitor`: any pinned map opened
// by path, its info, its BTF (from the kernel, by the map's btf_id) and a
// decoder for its keys and values; the event ring buffer.
import { btfRawFromKernel, parseBtf, type Btf, type MapInfo } from '../libbpf/index.js'

export { BPF_MAP_TYPE, MapFd, RingBuffer, decodeValue, numPossibleCpus, type Btf, type BtfValue, type MapInfo } from '../libbpf/index.js'

/** The BTF a map was created with, or null for a map without. */
export function mapBtf(info: MapInfo): Btf | null {
  if (!info.btfId) return null
  return parseBtf(btfRawFromKernel(info.btfId))
}
