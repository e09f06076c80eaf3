// What services need from the kernel besides podnet's own maps and hooks:
// feature probes, bpffs, interface names, program info and test runs, netkit
// devices. Only src/datapath imports src/libbpf; this is its door for these.
import { MapFd, ProgFd, tcHookCreate, tcHookDestroy, type ProgInfo, type TestRunOptions, type TestRunResult } from '../libbpf/index.js'

export {
  createNetkit,
  getLink,
  ifIndexToName,
  ifNameToIndex,
  isBpffs,
  libbpfVersion,
  mountBpffs,
  type NetkitSpec,
} from '../libbpf/index.js'
export type { ProgInfo, TestRunOptions, TestRunResult }

/** Creates and frees a one-slot array map: the bpf() syscall works here. */
export function probeBpfSyscall(): void {
  MapFd.create(2 /* BPF_MAP_TYPE_ARRAY */, 'pn_probe', 4, 4, 1).close()
}

/** The clsact qdisc exists in this kernel (probed on loopback; removed again only if created here). */
export function probeClsact(): void {
  if (tcHookCreate(1)) tcHookDestroy(1)
}

/** Info of a loaded program by id. */
export function programInfo(id: number): ProgInfo {
  const p = ProgFd.fromId(id)
  try {
    return p.info()
  } finally {
    p.close()
  }
}

/** BPF_PROG_TEST_RUN of a loaded program by id. */
export function testRunProgram(id: number, opts: TestRunOptions): TestRunResult {
  const p = ProgFd.fromId(id)
  try {
    return p.testRun(opts)
  } finally {
    p.close()
  }
}
