// SPDX-License-Identifier: Apache-2.0
// The typed libbpf/libc wrapper the rest of podnet-bpf imports
// (src/libbpf/ffi.ts, which declares the C signatures, is private to this dir).

export { BpfError, errnoName, errnoNumber, isBpfError, strerror } from './errors.js'
export * from './constants.js'
export {
  libbpfVersion,
  numPossibleCpus,
  objGet,
  objPin,
  closeFd,
  ifNameToIndex,
  ifIndexToName,
  isBpffs,
  mountBpffs,
  unmount,
  enableBpfStats,
} from './system.js'
export { BpfObject, BpfObjectMap, BpfProgram, type OpenOptions } from './object.js'
export { MapFd, mapInfoByFd, type MapInfo, type BatchResult } from './map.js'
export { ProgFd, progInfoByFd, progTestRun, type ProgInfo, type TestRunOptions, type TestRunResult } from './prog.js'
export { tcHookCreate, tcHookDestroy, tcAttach, tcDetach, tcQuery, type TcPoint, type TcFilterId } from './tc.js'
export { btfRawFromKernel, btfRawFromFile, kernelBtfRaw } from './kernel-btf.js'
export {
  Btf,
  parseBtf,
  decodeValue,
  BTF_KIND,
  BTF_MAGIC,
  type BtfKind,
  type BtfType,
  type BtfTypeOf,
  type BtfMember,
  type BtfField,
  type BtfValue,
  type BtfEnumValue,
} from './btf.js'
export { RingBuffer } from './ringbuf.js'
export {
  getLink,
  getLinkByName,
  listLinks,
  routeOps,
  createNetkit,
  type LinkInfo,
  type RouteOp,
  type RouteOpError,
  type NetkitSpec,
} from './netlink.js'
export { dumpRouteTable, parseRouteMessage, RouteMonitor, type TableRoute, type RouteEvent } from './route-monitor.js'
export { netkitAttach, netkitDetach, netkitQuery, type NetkitPoint } from './netkit.js'
export { tcxLinkCreate, tcxQuery, tcxSupported, linkUpdate, linkDetach, bpfLinkInfo, type TcxPoint, type BpfLinkInfo } from './tcx.js'
export { tryFlock, unflock } from './flock.js'
export { setLibbpfLogLevel, onLibbpfLog, type LibbpfLogLevel } from './log.js'
