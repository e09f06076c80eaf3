// Two kinds of failure: what the operator can fix (UserError: a one-line
// problem and a hint, printed without a stack) and bugs (anything else).

export class UserError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message)
    this.name = 'UserError'
  }

  override toString(): string {
    return this.hint ? `${this.message} — ${this.hint}` : this.message
  }
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError
}

// Kernel/libbpf call failures, for every layer above src/datapath (the CLI
// prints their symbolic code; services classify them by it).
export { BpfError, isBpfError } from './libbpf/errors.js'
