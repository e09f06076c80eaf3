// One LIFO list of synchronous undo steps (kill a server, detach podnet,
// delete a namespace). Runs on normal exit, on error, and on SIGINT/SIGTERM,
// so an interrupted benchmark leaves nothing behind.
import { killRunning } from './exec.js'

interface Step {
  label: string
  fn: () => void
}

const steps: Step[] = []
let installed = false

/** Register an undo step; returns a function that runs it now (once). */
export function onCleanup(label: string, fn: () => void): () => void {
  const step: Step = { label, fn }
  steps.push(step)
  return () => {
    const i = steps.indexOf(step)
    if (i >= 0) {
      steps.splice(i, 1)
      fn()
    }
  }
}

/** Run every registered step, newest first; returns the failures. Children
 * still running (a client mid-measurement) are killed first. */
export function runCleanup(): string[] {
  const failures: string[] = []
  killRunning()
  while (steps.length > 0) {
    const step = steps.pop()!
    try {
      step.fn()
    } catch (e) {
      failures.push(`${step.label}: ${(e as Error).message}`)
    }
  }
  return failures
}

/** Clean up on exit and on the usual termination signals (idempotent). */
export function installCleanupHandlers(): void {
  if (installed) return
  installed = true
  process.on('exit', () => {
    runCleanup()
  })
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\n${sig}: cleaning up namespaces and pins…\n`)
      for (const f of runCleanup()) process.stderr.write(`cleanup: ${f}\n`)
      process.exit(130)
    })
  }
}
