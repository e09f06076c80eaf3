import { spawnSync } from 'node:child_process'
import * as Args from '@oclif/core/args'
import { LabCommand, labNameFlag } from '../../cli/lab.js'
import { DEFAULT_LAB } from '../../services/lab/plan.js'
import { UserError } from '../../errors.js'
import { execContext, requireLab } from '../../services/lab/lab.js'

export default class LabExec extends LabCommand {
  static override summary = "Run a command in a lab pod's or node's network namespace"
  static override description =
    "TARGET is a pod (node1-pod1 or its IP), a node (node2 or its underlay IP), `underlay` or `router`. Runs with nsenter --net, so bpffs pins stay visible; on a node, PODNET_PIN_DIR is set to that node's pin dir, so podnet-bpf commands there need no --pin-dir. Exits with the command's status."
  static override examples = [
    '<%= config.bin %> lab exec node1-pod1 -- ip addr show eth0',
    '<%= config.bin %> lab exec node1-pod1 -- ping -c 3 10.244.2.10',
    '<%= config.bin %> lab exec node1 -- <%= config.bin %> routes list',
    '<%= config.bin %> lab exec node1 -- tc filter show dev eth0 ingress',
    '<%= config.bin %> lab exec underlay -- tcpdump -ni br-a -c 10',
  ]
  static override strict = false
  static override args = {
    target: Args.string({ description: 'pod, node, underlay or router', required: true }),
  }
  static override flags = {
    name: labNameFlag(DEFAULT_LAB),
  }

  async run(): Promise<void> {
    const { args, argv, flags } = await this.parse(LabExec)
    const cmd = (argv as string[]).slice(1)
    if (cmd.length === 0)
      throw new UserError('no command given', `put it after --, e.g. ${this.config.bin} lab exec ${args.target} -- ip addr`)
    const lab = requireLab(flags.name)
    const ctx = execContext(lab, args.target)
    const r = spawnSync('nsenter', [...ctx.argsPrefix, ...cmd], { stdio: 'inherit', env: ctx.env })
    if (r.error) throw new UserError(`cannot run ${cmd[0]}: ${r.error.message}`, 'check the command name')
    this.exit(r.status ?? 1)
  }
}
