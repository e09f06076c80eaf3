// The request `lab up` / `lab down` send to a lab node agent (node-agent.ts)
// on stdin, as a schema: the agent parses it instead of casting it.
import { z } from '../../util/zod.js'
import { ModeSchema } from '../config.js'

const PodSchema = z.object({ ns: z.string().min(1), ip: z.string().min(1), hostIf: z.string().min(1).max(15) }).strict()
const SetupSchema = z
  .object({
    op: z.literal('setup'),
    pinDir: z.string().min(1),
    nodeIp: z.string().min(1),
    podCidr: z.string().min(1),
    device: z.string().min(1),
    mode: ModeSchema,
    podDevice: z.enum(['veth', 'netkit']),
    pods: z.array(PodSchema),
    routes: z.array(z.object({ cidr: z.string().min(1), nodeIp: z.string().min(1) }).strict()),
  })
  .strict()

/** What `lab up` / `lab down` send; parsed, never cast (the services validate the values). */
export const AgentRequestSchema = z.discriminatedUnion('op', [
  SetupSchema,
  z.object({ op: z.literal('detach'), pinDir: z.string().min(1) }).strict(),
])
export type AgentRequest = z.infer<typeof AgentRequestSchema>
