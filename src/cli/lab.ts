// What every `lab` command shares: its pin dirs are per lab node
// (pnlab-LAB-NODE), never chosen by the user, so no --pin-dir; and --name.
import * as Flags from '@oclif/core/flags'
import { BaseCommand } from './base.js'
import { DEFAULT_LAB } from '../services/lab/plan.js'

export abstract class LabCommand extends BaseCommand {
  static override baseFlags = {} as typeof BaseCommand.baseFlags
}

export const labNameFlag = Flags.string({
  description: 'lab name (lowercase letters and digits)',
  env: 'PODNET_LAB',
  default: DEFAULT_LAB,
  helpValue: 'LAB',
})
