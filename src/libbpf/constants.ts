// SPDX-License-Identifier: Apache-2.0
// Numbers from linux/bpf.h (uapi, stable ABI) used with this wrapper.

/** enum bpf_map_type */
export const BPF_MAP_TYPE = {
  UNSPEC: 0,
  HASH: 1,
  ARRAY: 2,
  PROG_ARRAY: 3,
  PERF_EVENT_ARRAY: 4,
  PERCPU_HASH: 5,
  PERCPU_ARRAY: 6,
  STACK_TRACE: 7,
  CGROUP_ARRAY: 8,
  LRU_HASH: 9,
  LRU_PERCPU_HASH: 10,
  LPM_TRIE: 11,
  ARRAY_OF_MAPS: 12,
  HASH_OF_MAPS: 13,
  DEVMAP: 14,
  SOCKMAP: 15,
  CPUMAP: 16,
  XSKMAP: 17,
  SOCKHASH: 18,
  CGROUP_STORAGE: 19,
  REUSEPORT_SOCKARRAY: 20,
  PERCPU_CGROUP_STORAGE: 21,
  QUEUE: 22,
  STACK: 23,
  SK_STORAGE: 24,
  DEVMAP_HASH: 25,
  STRUCT_OPS: 26,
  RINGBUF: 27,
  INODE_STORAGE: 28,
  TASK_STORAGE: 29,
  BLOOM_FILTER: 30,
  USER_RINGBUF: 31,
} as const

/** enum bpf_prog_type (the ones this project meets) */
export const BPF_PROG_TYPE = {
  SOCKET_FILTER: 1,
  KPROBE: 2,
  SCHED_CLS: 3,
  SCHED_ACT: 4,
  TRACEPOINT: 5,
  XDP: 6,
} as const

/** Map update flags. */
export const BPF_ANY = 0
export const BPF_NOEXIST = 1
export const BPF_EXIST = 2
export const BPF_F_LOCK = 4

/** Map creation flags. */
export const BPF_F_NO_PREALLOC = 1
export const BPF_F_RDONLY_PROG = 1 << 7

/** statfs f_type of bpffs. */
export const BPF_FS_MAGIC = 0xcafe4a11

/** enum bpf_stats_type */
export const BPF_STATS_RUN_TIME = 0

/** tc verdicts (linux/pkt_cls.h). */
export const TC_ACT = {
  UNSPEC: -1,
  OK: 0,
  RECLASSIFY: 1,
  SHOT: 2,
  PIPE: 3,
  STOLEN: 4,
  QUEUED: 5,
  REPEAT: 6,
  REDIRECT: 7,
} as const
