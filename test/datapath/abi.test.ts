// SPDX-License-Identifier: Apache-2.0
// The TypeScript mirror of bpf/include/podnet_abi.h (src/datapath/abi.ts)
// against the BTF of every built object: struct sizes, every field's offset
// and size by C name, and the reason/dir/event-type enums.

import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  ABI_LAYOUTS,
  ConfigLayout,
  DIR_MAX,
  Dir,
  DROP_BASE,
  EVENT_DROP,
  EVENT_TRACE,
  EndpointLayout,
  IPV4_KEY_SIZE,
  METRICS_ENTRIES,
  MapName,
  MetricLayout,
  PeerLayout,
  Programs,
  REASON_MAX,
  Reason,
  RouteKeyLayout,
  RouteLayout,
  SettingsLayout,
  SkBuffLayout,
  dirLabels,
  isDrop,
  reasonLabel,
} from '../../src/datapath/abi.js'
import { objectDir } from '../../src/datapath/objects.js'
import { BpfObject, btfRawFromFile, parseBtf, type Btf } from '../../src/libbpf/index.js'

const objects = readdirSync(objectDir())
  .filter((f) => f.endsWith('.bpf.o'))
  .sort()

function btfOf(file: string): Btf {
  return parseBtf(btfRawFromFile(join(objectDir(), file)))
}

function enumValues(btf: Btf, name: string): Record<string, number> {
  const e = btf.findByName(name, 'ENUM')
  if (!e) throw new Error(`enum ${name} not in BTF`)
  return Object.fromEntries(e.values.map((v) => [v.name, v.value]))
}

describe('ABI mirror (src/datapath/abi.ts) vs. BTF of the built objects', () => {
  it('has objects to check', () => {
    expect(objects).toEqual(
      Object.values(Programs)
        .map((p) => p.object)
        .sort(),
    )
  })

  describe.each(objects)('%s', (file) => {
    const btf = btfOf(file)

    it.each(ABI_LAYOUTS.map((l) => [l.cName, l] as const))('struct %s: size and every field offset and size match', (_n, layout) => {
      const st = btf.findByName(layout.cName, 'STRUCT')
      expect(st, `struct ${layout.cName} missing from ${file}'s BTF`).toBeDefined()
      expect(st!.size, `sizeof(struct ${layout.cName})`).toBe(layout.size)
      const fields = Object.fromEntries(btf.fields(st!.id).map((f) => [f.name, [f.offset, f.size] as const]))
      expect(fields, `fields of struct ${layout.cName}`).toEqual(Object.fromEntries(Object.entries(layout.fields)))
      for (const f of btf.fields(st!.id)) expect(f.bitfieldSize, `${layout.cName}.${f.name} is a bitfield`).toBe(0)
    })

    it('enum podnet_reason has exactly the values of Reason (REASON_X / FWD_X / DROP_X) and PODNET_REASON_MAX', () => {
      const c = enumValues(btf, 'podnet_reason')
      const ts: Record<string, number> = { PODNET_REASON_MAX: REASON_MAX }
      for (const [k, v] of Object.entries(Reason)) ts[/^(FWD|DROP)_/.test(k) ? k : `REASON_${k}`] = v
      expect(c).toEqual(ts)
    })

    it('enum podnet_dir has exactly the values of Dir and PODNET_DIR_MAX', () => {
      const c = enumValues(btf, 'podnet_dir')
      const ts: Record<string, number> = { PODNET_DIR_MAX: DIR_MAX }
      for (const [k, v] of Object.entries(Dir)) ts[`DIR_${k}`] = v
      expect(c).toEqual(ts)
    })

    it('enum podnet_event_type matches EVENT_DROP and EVENT_TRACE', () => {
      expect(enumValues(btf, 'podnet_event_type')).toEqual({ EVENT_DROP, EVENT_TRACE })
    })

    it('has CONFIG in .rodata as a struct podnet_config', () => {
      const sec = btf.findByName('.rodata', 'DATASEC')
      const vars = (sec?.vars ?? []).map((v) => btf.get(v.type))
      const cfg = vars.find((v) => v.name === 'CONFIG')
      expect(cfg).toBeDefined()
      expect(btf.typeName(btf.resolve(cfg!.id).id)).toBe(`struct ${ConfigLayout.cName}`)
    })

    it('struct __sk_buff has the fields a test-run ctx uses where SkBuffLayout puts them', () => {
      const st = btf.findByName(SkBuffLayout.cName, 'STRUCT')
      expect(st, `struct __sk_buff missing from ${file}'s BTF`).toBeDefined()
      expect(st!.size).toBe(SkBuffLayout.size)
      const fields = Object.fromEntries(btf.fields(st!.id).map((f) => [f.name, [f.offset, f.size] as const]))
      for (const [name, f] of Object.entries(SkBuffLayout.fields)) expect(fields[name], `__sk_buff.${name}`).toEqual(f)
    })

    it('sizes every map key and value as the layouts do, and podnet_metrics for every dir × reason', () => {
      const obj = BpfObject.open(join(objectDir(), file))
      try {
        const sizes = (name: string) => [obj.map(name).keySize, obj.map(name).valueSize]
        expect(sizes(MapName.endpoints)).toEqual([IPV4_KEY_SIZE, EndpointLayout.size])
        expect(sizes(MapName.routes)).toEqual([RouteKeyLayout.size, RouteLayout.size])
        expect(sizes(MapName.peers)).toEqual([IPV4_KEY_SIZE, PeerLayout.size])
        expect(sizes(MapName.metrics)).toEqual([4, MetricLayout.size])
        expect(sizes(MapName.settings)).toEqual([4, SettingsLayout.size])
        expect(obj.map(MapName.metrics).maxEntries).toBe(METRICS_ENTRIES)
      } finally {
        obj.close()
      }
    })
  })
})

describe('ABI helpers', () => {
  it('keeps forward reasons below DROP_BASE and drops at or above it', () => {
    for (const [k, v] of Object.entries(Reason)) {
      expect(isDrop(v), k).toBe(k.startsWith('DROP_'))
      expect(v).toBeLessThan(REASON_MAX)
    }
    expect(DROP_BASE).toBe(128)
  })

  it('never reuses a reason number', () => {
    const vals = Object.values(Reason)
    expect(new Set(vals).size).toBe(vals.length)
  })

  it('labels reasons and dirs for humans', () => {
    expect(reasonLabel(Reason.DROP_SPOOFED_SRC)).toBe('spoofed-src')
    expect(reasonLabel(Reason.FWD_LOCAL)).toBe('local')
    expect(reasonLabel(200)).toBe('unknown-200')
    expect(dirLabels).toHaveLength(DIR_MAX)
  })
})
