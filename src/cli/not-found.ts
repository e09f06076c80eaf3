// oclif hook for a command line that names no command: one error line and a
// fix (oclif's own answer has no fix line and ignores --json). With spaces
// as topic separator, a command followed by a stray word lands here too.
import type { Hook } from '@oclif/core/hooks'

const hook: Hook<'command_not_found'> = async function (opts) {
  const words = opts.id.split(':')
  let message = `unknown command "${words.join(' ')}"`
  let hint = 'see `podnet-bpf --help` for the commands'
  for (let i = words.length - 1; i > 0; i--) {
    const cmd = words.slice(0, i).join(' ')
    if (opts.config.findCommand(words.slice(0, i).join(':'))) {
      message = `unexpected argument "${words.slice(i).join(' ')}" for ${cmd}`
      hint = `see \`podnet-bpf ${cmd} --help\``
      break
    }
  }
  if ((opts.argv ?? []).includes('--json')) process.stdout.write(`${JSON.stringify({ error: { message, hint } }, null, 2)}\n`)
  else process.stderr.write(`Error: ${message}\nFix: ${hint}\n`)
  process.exit(2)
}

export default hook
