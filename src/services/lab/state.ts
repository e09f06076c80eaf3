// A lab's state file, so separate CLI invocations agree on what exists:
// `<state dir>/labs/<name>.json`, written before anything is created
// (status "creating") so `lab down` can clean up after a crashed `lab up`.
import { readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { z } from '../../util/zod.js'
import { ModeSchema } from '../config.js'
import { LabRoutingSchema } from './plan.js'
import { stateDir } from '../state.js'
import { readJsonFile, writeJsonAtomic } from '../../util/jsonfile.js'

const PodSchema = z.object({ name: z.string(), node: z.string(), ns: z.string(), ip: z.string(), hostIf: z.string() })
const PathSchema = z.object({
  peer: z.string(),
  cidr: z.string(),
  /** next hop: the peer node, or (BGP) the router that leads to it */
  nodeIp: z.string(),
  encap: z.enum(['direct', 'vxlan']),
  via: z.enum(['node', 'router']).default('node'),
})

export const LabStateSchema = z.object({
  version: z.literal(1),
  name: z.string(),
  mode: ModeSchema,
  /** absent in labs made before netkit pods existed */
  podDevice: z.enum(['veth', 'netkit']).default('veth'),
  status: z.enum(['creating', 'ready']),
  /** etcd: agents with etcd leases (the default); static: routes typed in by the lab (labs before agents) */
  datastore: z.enum(['etcd', 'static']).default('static'),
  /** bgp: the router runs BIRD as top-of-rack router and the agents learn routes from it */
  routing: LabRoutingSchema.default('datastore'),
  createdAt: z.string(),
  /** pid of the `lab up` that is (or was) creating it */
  pid: z.number(),
  underlayNs: z.string(),
  routerNs: z.string().nullable(),
  nodes: z.array(
    z.object({
      name: z.string(),
      ns: z.string(),
      ip: z.string(),
      subnet: z.enum(['a', 'b']),
      podCidr: z.string(),
      pinDir: z.string(),
      underlayPort: z.string(),
      pods: z.array(PodSchema),
      /** filled once the node is attached */
      podMtu: z.number().nullable(),
      paths: z.array(PathSchema),
    }),
  ),
})
export type LabState = z.infer<typeof LabStateSchema>
export type LabNode = LabState['nodes'][number]
export type LabPod = z.infer<typeof PodSchema>
export type LabPath = z.infer<typeof PathSchema>

export function labsDir(): string {
  return join(stateDir(), 'labs')
}

export function labStatePath(name: string): string {
  return join(labsDir(), `${name}.json`)
}

export function loadLab(name: string): LabState | null {
  return readJsonFile(labStatePath(name), LabStateSchema)
}

export function saveLab(s: LabState): void {
  writeJsonAtomic(labStatePath(s.name), s)
}

export function removeLab(name: string): void {
  rmSync(labStatePath(name), { force: true })
}

/** Names of labs that have a state file. */
export function listLabNames(): string[] {
  try {
    return readdirSync(labsDir())
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -5))
      .sort()
  } catch {
    return []
  }
}
