// What every `lab` command shares: its pin dirs are per lab node
// (pnlab-LAB-NODE), never chosen by the user, so no --pin-dir; and --name.
import * as Flags from '@oclif/core/flags'
import { BaseCommand } from './base.js'

export abstract class LabCommand extends BaseCommand {
  static override baseFlags = {} as typeof BaseCommand.baseFlags
}

/** --name; the default comes from the lab service (src/cli knows no services). */
export const labNameFlag = (defaultLab: string) =>
  Flags.string({
    description: 'lab name (lowercase letters and digits)',
    env: 'PODNET_LAB',
    default: defaultLab,
    helpValue: 'LAB',
  })
