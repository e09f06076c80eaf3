// SPDX-License-Identifier: Apache-2.0
// Every shipped object in bpf/build goes through this kernel's verifier with
// several node configs (the VM runner repeats this on other kernels).

import { readdirSync } from 'node:fs'
import { afterAll, describe, expect, it } from 'vitest'
import { MapName, Programs, encodeConfig, type DatapathConfig, type ProgramKey } from '../../src/datapath/abi.js'
import { loadProgram, objectDir, type LoadedProgram } from '../../src/datapath/objects.js'
import { BPF_PROG_TYPE, BpfObject, mapInfoByFd, progInfoByFd } from '../../src/libbpf/index.js'
import { ALL_PROGRAMS, DIRECT_ONLY_CONFIG, OTHER_VXLAN_CONFIG, TEST_CONFIG, makePinDir, removePinDir } from '../support/bpf-harness.js'

const CONFIGS: Record<string, DatapathConfig> = {
  'VXLAN and direct': TEST_CONFIG,
  'direct only (vxlan_ifindex 0)': DIRECT_ONLY_CONFIG,
  'all zero': { nodeIp: '0.0.0.0', deviceIfindex: 0, vxlanIfindex: 0, vni: 0, deviceMtu: 0, overlayMtu: 0 },
  'jumbo frames, largest VNI': {
    nodeIp: '10.255.255.254',
    deviceIfindex: 0x7fffffff,
    vxlanIfindex: 2,
    vni: 0xffffff,
    deviceMtu: 9000,
    overlayMtu: 8950,
  },
  'VXLAN on port 4789, largest VNI': OTHER_VXLAN_CONFIG,
  'VXLAN on the highest port': { ...TEST_CONFIG, vxlanPort: 65535 },
  'VXLAN peers on the node subnet (own next hop)': { ...TEST_CONFIG, nodePrefixLen: 24 },
}

const pinDirs: string[] = []
const loaded: LoadedProgram[] = []
afterAll(() => {
  for (const lp of loaded) lp.obj.close()
  for (const d of pinDirs) removePinDir(d)
})

function load(key: ProgramKey, cfg: DatapathConfig, pinDir?: string): LoadedProgram {
  const dir = pinDir ?? makePinDir('verifier')
  if (!pinDir) pinDirs.push(dir)
  const lp = loadProgram(key, cfg, dir)
  loaded.push(lp)
  return lp
}

describe('prebuilt BPF objects', () => {
  it('ships exactly one object per program', () => {
    const shipped = readdirSync(objectDir())
      .filter((f) => f.endsWith('.bpf.o'))
      .sort()
    expect(shipped).toEqual(
      Object.values(Programs)
        .map((p) => p.object)
        .sort(),
    )
  })

  it.each(ALL_PROGRAMS)('%s declares its program and every shared map, pinned by name', (key) => {
    const obj = BpfObject.open(`${objectDir()}/${Programs[key].object}`)
    try {
      expect(obj.programNames()).toEqual([Programs[key].program])
      expect(obj.program(Programs[key].program).sectionName).toBe('tc')
      for (const name of Object.values(MapName)) expect(obj.mapNames()).toContain(name)
    } finally {
      obj.close()
    }
  })

  for (const [cname, cfg] of Object.entries(CONFIGS)) {
    it.each(ALL_PROGRAMS)(`%s passes the verifier with config "${cname}"`, (key) => {
      const lp = load(key, cfg)
      const info = progInfoByFd(lp.prog.fd())
      expect(info.type).toBe(BPF_PROG_TYPE.SCHED_CLS)
      expect(info.name).toBe(Programs[key].program.slice(0, 15))
      expect(info.verifiedInsns).toBeGreaterThan(0)
      // The config went into .rodata as written.
      const ro = lp.obj.rodata().initialValue()
      expect(ro.includes(encodeConfig(cfg))).toBe(true)
    })
  }

  it('loads all four objects into one pin dir, sharing the same maps', () => {
    const dir = makePinDir('verifier-shared')
    pinDirs.push(dir)
    const progs = ALL_PROGRAMS.map((k) => load(k, TEST_CONFIG, dir))
    // Same kernel map (id) behind each name in every object.
    const ids = progs.map((lp) => Object.values(MapName).map((n) => mapInfoByFd(lp.obj.map(n).fd()).id))
    for (const other of ids.slice(1)) expect(other).toEqual(ids[0])
    expect(new Set(ids[0]).size).toBe(Object.keys(MapName).length)
    expect(readdirSync(dir).sort()).toEqual(Object.values(MapName).sort())
  })

  it.each(ALL_PROGRAMS)('%s is JIT-compiled', (key) => {
    expect(progInfoByFd(load(key, TEST_CONFIG).prog.fd()).jited).toBe(true)
  })
})
