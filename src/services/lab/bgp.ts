// The lab's BGP mode (`lab up --routing bgp`): the router namespace runs BIRD
// as the top-of-rack router, in eBGP with every node's agent; nodes do not
// mesh with each other, they learn every pod CIDR from the router, whose own
// kernel table (inside its namespace) forwards between the two subnets.
import { execFileSync } from 'node:child_process'
import { writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { UserError } from '../../errors.js'
import { renderRouterBird } from './bgp-router.js'
import { ROUTER_HOST, SUBNETS } from './plan.js'

export const LAB_ROUTER_ASN = 65000
export const LAB_NODE_ASN = 64512

export interface BgpLabNode {
  name: string
  ip: string
  subnet: 'a' | 'b'
}

export const routerIp = (subnet: 'a' | 'b') => `${SUBNETS[subnet]}.${ROUTER_HOST}`

/** Extra agent flags: peer with the router on the node's subnet (no mesh), or mesh when there is no router. */
export function bgpAgentArgs(node: BgpLabNode, hasRouter: boolean): string[] {
  const base = ['--routing', 'bgp', '--bgp-asn', String(LAB_NODE_ASN)]
  return hasRouter ? [...base, '--no-bgp-mesh', '--bgp-peer', `${routerIp(node.subnet)}:${LAB_ROUTER_ASN}`] : base
}

export interface LabRouterFiles {
  config: string
  socket: string
  log: string
}

export function labRouterFiles(dir: string): LabRouterFiles {
  return { config: join(dir, 'router-bird.conf'), socket: join(dir, 'router-bird.ctl'), log: join(dir, 'router-bird.log') }
}

/** Writes the router's BIRD config (checked by `bird -p`); returns the command that runs it. */
export function prepareLabRouter(dir: string, nodes: readonly BgpLabNode[]): { files: LabRouterFiles; cmd: string[] } {
  const files = labRouterFiles(dir)
  mkdirSync(dir, { recursive: true })
  writeFileSync(
    files.config,
    renderRouterBird({
      routerId: routerIp('a'),
      asn: LAB_ROUTER_ASN,
      neighbors: nodes.map((n) => ({ name: n.name, address: n.ip, asn: LAB_NODE_ASN, local: routerIp(n.subnet) })),
      holdTime: 9,
      restartTime: 120,
    }),
  )
  try {
    execFileSync('bird', ['-p', '-c', files.config], { stdio: ['ignore', 'ignore', 'pipe'] })
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: Buffer }
    if (err.code === 'ENOENT')
      throw new UserError('BIRD (bird2) is not installed', 'install it: apt-get install bird2 (scripts/setup.sh does)')
    throw new Error(`lab router config does not parse: ${err.stderr?.toString().trim() ?? err.message}`)
  }
  return { files, cmd: ['bird', '-f', '-c', files.config, '-s', files.socket] }
}
