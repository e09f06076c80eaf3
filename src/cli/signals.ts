// SIGINT/SIGTERM for the duration of one command step: long-running commands
// (lab up, metrics --watch) stop or clean up on them, and leave no handler
// behind however the step ends.
export async function onInterrupt<T>(handler: (sig: NodeJS.Signals) => void, step: () => Promise<T>): Promise<T> {
  process.once('SIGINT', handler)
  process.once('SIGTERM', handler)
  try {
    return await step()
  } finally {
    process.off('SIGINT', handler)
    process.off('SIGTERM', handler)
  }
}

/** Waits ms, or less once stopped() turns true (checked every 200 ms). */
export async function sleepUnless(ms: number, stopped: () => boolean): Promise<void> {
  const until = Date.now() + ms
  while (!stopped() && Date.now() < until) await new Promise((r) => setTimeout(r, Math.min(200, until - Date.now())))
}
