// Real traffic between namespaces: ping, a TCP listener that reports the
// peer address it sees (no NAT check), UDP, and underlay capture.
import { spawn } from 'node:child_process'
import { inNs, sleep, type Result } from './sys.js'

export function ping(
  ns: string,
  dst: string,
  opts: { count?: number; size?: number; df?: boolean; src?: string; timeoutS?: number } = {},
): Result {
  const args = ['-n', '-q', '-c', String(opts.count ?? 2), '-i', '0.2', '-W', String(opts.timeoutS ?? 2)]
  if (opts.size !== undefined) args.push('-s', String(opts.size))
  if (opts.df) args.push('-M', 'do')
  if (opts.src) args.push('-I', opts.src)
  return inNs(ns, 'ping', [...args, dst], { timeoutMs: 30_000 })
}

const SERVER = `
const net = require('net'), dgram = require('dgram');
const [proto, host, port] = process.argv.slice(1);
if (proto === 'tcp') {
  net.createServer((s) => { s.end(s.remoteAddress + '\\n') }).listen(+port, host, () => console.log('ready'));
} else {
  const u = dgram.createSocket('udp4');
  u.on('message', (m, r) => u.send(r.address + '\\n', r.port, r.address));
  u.bind(+port, host, () => console.log('ready'));
}`

const CLIENT = `
const net = require('net'), dgram = require('dgram');
const [proto, host, port] = process.argv.slice(1);
const t = setTimeout(() => { console.error('timeout'); process.exit(3) }, 5000);
if (proto === 'tcp') {
  const c = net.connect(+port, host); let out = '';
  c.on('data', (d) => out += d); c.on('end', () => { clearTimeout(t); process.stdout.write(out); });
  c.on('error', (e) => { console.error(e.message); process.exit(2) });
} else {
  const u = dgram.createSocket('udp4');
  u.on('message', (m) => { clearTimeout(t); process.stdout.write(m.toString()); u.close(); });
  u.send('x', +port, host);
}`

/** Connects from clientNs to server (ip:port in serverNs); returns the
 * client address the server saw, or throws. */
export async function peerAddressSeen(
  proto: 'tcp' | 'udp',
  serverNs: string,
  serverIp: string,
  clientNs: string,
  port = 7000,
): Promise<string> {
  const srv = spawn('ip', ['netns', 'exec', serverNs, 'node', '-e', SERVER, proto, serverIp, String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  try {
    await new Promise<void>((res, rej) => {
      const to = setTimeout(() => rej(new Error('server did not start')), 10_000)
      srv.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && (clearTimeout(to), res()))
      srv.on('exit', (c) => rej(new Error(`server exited ${c}`)))
    })
    const r = inNs(clientNs, 'node', ['-e', CLIENT, proto, serverIp, String(port)], { timeoutMs: 15_000 })
    if (r.status !== 0) throw new Error(`${proto} client in ${clientNs} → ${serverIp}:${port} failed: ${r.stderr}`)
    return r.stdout.trim()
  } finally {
    srv.kill('SIGKILL')
  }
}

/** Captures on an interface (text, numeric) while fn runs. */
export async function capture(ns: string, iface: string, filter: string[], fn: () => unknown | Promise<unknown>): Promise<string[]> {
  const td = spawn('ip', ['netns', 'exec', ns, 'tcpdump', '-i', iface, '-nn', '-l', '-U', ...filter], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  td.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  try {
    await new Promise<void>((res, rej) => {
      const to = setTimeout(() => rej(new Error('tcpdump did not start')), 10_000)
      td.stderr!.on('data', (d: Buffer) => d.toString().includes('listening on') && (clearTimeout(to), res()))
      td.on('exit', (c) => rej(new Error(`tcpdump exited ${c}`)))
    })
    await fn()
    await sleep(300)
  } finally {
    td.kill('SIGINT')
    await new Promise((r) => td.once('exit', r))
  }
  return out.split('\n').filter(Boolean)
}

/** Programs on a hook however attached (tc filters, tcx links): see hooks.ts. */
export { hookPrograms } from './hooks.js'
