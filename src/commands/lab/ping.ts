import { spawnSync } from 'node:child_process'
import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import { LabCommand, labNameFlag } from '../../cli/lab.js'
import { DEFAULT_LAB } from '../../services/lab/plan.js'
import { planPing, requireLab } from '../../services/lab/lab.js'
import { nsenterArgs } from '../../services/lab/netns.js'

export default class LabPing extends LabCommand {
  static override summary = 'Ping from a lab pod or node to another pod, node or IP, and say which path it takes'
  static override description = "SRC is a pod or node (name or IP); DST a pod, a node, or any IP. Exits with ping's status."
  static override examples = [
    '<%= config.bin %> lab ping node1-pod1 node2-pod1',
    '<%= config.bin %> lab ping node1-pod1 10.244.3.10 --count 5',
    '<%= config.bin %> lab ping node2 node3-pod2',
    '<%= config.bin %> lab ping node1-pod2 node3',
  ]
  static override args = {
    src: Args.string({ description: 'pod or node to ping from', required: true }),
    dst: Args.string({ description: 'pod, node or IP to ping', required: true }),
  }
  static override flags = {
    name: labNameFlag(DEFAULT_LAB),
    count: Flags.integer({ char: 'c', description: 'echo requests to send', default: 3 }),
    size: Flags.integer({ char: 's', description: 'ICMP payload bytes' }),
    df: Flags.boolean({ description: "set don't-fragment (ping -M do)", default: false }),
  }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(LabPing)
    const lab = requireLab(flags.name)
    const p = planPing(lab, args.src, args.dst)
    this.log(`${p.src.name} (${p.src.ip}) → ${p.dstName} (${p.dstIp}): ${p.path}`)
    const ping = ['ping', '-n', '-c', String(flags.count), '-i', '0.2', '-W', '2']
    if (flags.size !== undefined) ping.push('-s', String(flags.size))
    if (flags.df) ping.push('-M', 'do')
    const r = spawnSync('nsenter', nsenterArgs(p.src.ns, [...ping, p.dstIp]), { stdio: 'inherit' })
    this.exit(r.status ?? 1)
  }
}
