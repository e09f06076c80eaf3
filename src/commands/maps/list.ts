import { BaseCommand, table } from '../../cli/base.js'
import { listMaps, type MapSummary } from '../../services/inspect/maps.js'

export default class MapsList extends BaseCommand {
  static override summary = 'List the pinned datapath maps with their BTF types and sizes'
  static override examples = ['<%= config.bin %> maps list', '<%= config.bin %> maps list --json']
  static override enableJsonFlag = true

  async run(): Promise<MapSummary[]> {
    const { flags } = await this.parse(MapsList)
    const ms = listMaps(flags['pin-dir'])
    this.log(
      table(
        ['NAME', 'ID', 'TYPE', 'KEY', 'VALUE', 'ENTRIES', 'MAX'],
        ms.map((m) => [m.name, m.id, m.type, m.keyType ?? '-', m.valueType ?? '-', m.entries ?? '-', m.maxEntries]),
      ),
    )
    return ms
  }
}
