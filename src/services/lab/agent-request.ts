// The request `lab up` / `lab down` send to a lab node agent (node-agent.ts)
// on stdin, as a schema: the agent parses it instead of casting it.
import { z } from '../../util/zod.js'
import { ModeSchema } from '../config.js'

// a pod as the CNI plugin is asked to make it: its namespace (also the container ID) and the lab's IP
const PodSchema = z.object({ ns: z.string().min(1), ip: z.string().min(1) }).strict()
const SetupSchema = z
  .object({
    op: z.literal('setup'),
    nodeNs: z.string().min(1),
    pinDir: z.string().min(1),
    nodeIp: z.string().min(1),
    podCidr: z.string().min(1),
    device: z.string().min(1),
    mode: ModeSchema,
    podDevice: z.enum(['veth', 'netkit']),
    pods: z.array(PodSchema),
    /** absent: a podnet-bpf agent owns this node's routes (attach is then a no-op) */
    routes: z.array(z.object({ cidr: z.string().min(1), nodeIp: z.string().min(1) }).strict()).optional(),
  })
  .strict()

/** What `lab up` / `lab down` send; parsed, never cast (the services validate the values). */
export const AgentRequestSchema = z.discriminatedUnion('op', [
  SetupSchema,
  z
    .object({
      op: z.literal('detach'),
      nodeNs: z.string().min(1),
      pinDir: z.string().min(1),
      podDevice: z.enum(['veth', 'netkit']),
      pods: z.array(PodSchema),
    })
    .strict(),
])
export type AgentRequest = z.infer<typeof AgentRequestSchema>
