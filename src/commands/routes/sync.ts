import * as Flags from '@oclif/core/flags'
import { z } from '../../util/zod.js'
import { BaseCommand } from '../../cli/base.js'
import { formatZodError, EncapSchema } from '../../services/config.js'
import { readRoutesFile, syncRoutes, type SyncResult } from '../../services/routes.js'

const RoutesFile = z.array(z.object({ cidr: z.string(), nodeIp: z.string(), encap: EncapSchema.optional() }).strict())

export default class RoutesSync extends BaseCommand {
  static override summary = 'Make the route set exactly the one in a JSON file (adds, changes, removes)'
  static override description =
    'Validates every route before changing anything. Interrupted syncs leave forwarding working; running the sync again converges.'
  static override examples = ['<%= config.bin %> routes sync --file routes.json   # [{"cidr":"10.244.2.0/24","nodeIp":"192.168.77.2"}]']
  static override enableJsonFlag = true
  static override flags = {
    file: Flags.string({ description: 'JSON array of {cidr, nodeIp, encap?}', required: true, helpValue: 'FILE' }),
  }

  async run(): Promise<SyncResult> {
    const { flags } = await this.parse(RoutesSync)
    const parsed = RoutesFile.safeParse(readRoutesFile(flags.file))
    if (!parsed.success) throw formatZodError(parsed.error, `routes file ${flags.file}`)
    const r = syncRoutes(parsed.data, flags['pin-dir'])
    this.log(`routes: ${r.added} added, ${r.changed} changed, ${r.removed} removed, ${r.unchanged} unchanged`)
    return r
  }
}
