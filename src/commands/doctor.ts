import { BaseCommand, table } from '../cli/base.js'
import { runChecks, type Check } from '../services/preflight.js'

export default class Doctor extends BaseCommand {
  static override summary = 'Check that this kernel and process can run podnet-bpf'
  static override description =
    'Reports the BPF syscall, bpffs, BTF, clsact, tcx links (optional: tc filters without them), every shipped object loading through the verifier, VXLAN support and privileges, and whether pods may use netkit pairs (optional). Exits non-zero when something needed is missing.'
  static override examples = ['<%= config.bin %> doctor', '<%= config.bin %> doctor --json']
  static override enableJsonFlag = true

  async run(): Promise<{ ok: boolean; checks: Check[] }> {
    await this.parse(Doctor)
    const checks = runChecks()
    const status = (c: Check) => (c.ok ? 'ok' : c.optional ? 'absent (optional)' : 'MISSING')
    this.log(
      table(
        ['CHECK', 'STATUS', 'DETAIL'],
        checks.map((c) => [c.name, status(c), c.ok ? c.detail : `${c.detail} — ${c.optional ? 'needs' : 'fix'}: ${c.fix}`]),
      ),
    )
    const ok = checks.every((c) => c.ok || c.optional)
    if (!ok) {
      if (this.jsonEnabled()) this.logJson({ ok, checks })
      this.exit(1)
    }
    return { ok, checks }
  }
}
