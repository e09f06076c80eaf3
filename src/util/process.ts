// Whether a process still exists, for state files that record the pid of
// their writer (agent status, lab up).

/** True while pid exists; a process of another user (EPERM) exists too. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}
