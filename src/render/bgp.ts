// One BGP session as table cells, the same in `status` (a node's sessions)
// and `lab status` (the router's and every node's).
import type { BgpSession } from '../services/bird.js'

export const BGP_SESSION_HEADERS = ['STATE', 'UPTIME', 'RECEIVED', 'ACCEPTED', 'REJECTED']

/** State (with BIRD's info when the session is not up), uptime and prefix counts. */
export function bgpSessionCells(x: Pick<BgpSession, 'state' | 'info' | 'uptimeSeconds' | 'prefixes'>): string[] {
  return [
    x.state === 'Established' ? x.state : `${x.state}${x.info && x.info !== x.state ? ` (${x.info})` : ''}`,
    `${x.uptimeSeconds}s`,
    String(x.prefixes.received),
    String(x.prefixes.accepted),
    String(x.prefixes.rejected),
  ]
}
