// What is attached on a device's ingress/egress inside a namespace, as the
// kernel reports it: tc filters (`tc filter show`) and the names of the
// programs on its tcx hook (BPF_PROG_QUERY through the libbpf layer only, so
// none of the datapath/services code under test is involved).
import { readdirSync, existsSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, must, sh } from './sys.js'

export interface HookView {
  /** `tc filter show` output ('' when none) */
  tc: string
  /** names of the programs on the tcx hook, in run order */
  tcx: string[]
}

const READER = `
const m = await import(process.argv[1]);
const out = [];
for (const [dev, point] of JSON.parse(process.argv[2])) {
  let names = [];
  try {
    names = m.tcxQuery(m.ifNameToIndex(dev), point).map((id) => { const p = m.ProgFd.fromId(id); try { return p.info().name } finally { p.close() } });
  } catch (e) {
    if (!m.isBpfError(e, 'EINVAL', 'ENODEV')) throw e; // no tcx in this kernel, or no such device
  }
  out.push(names);
}
console.log(JSON.stringify(out));`

/** Views of several hooks of namespace `ns` (one process for all of them). */
export function hookView(ns: string, hooks: [dev: string, point: 'ingress' | 'egress'][]): HookView[] {
  const lib = join(ROOT, 'dist', 'libbpf', 'index.js')
  const tcx = JSON.parse(
    must('nsenter', [`--net=/run/netns/${ns}`, 'node', '--input-type=module', '-e', READER, lib, JSON.stringify(hooks)]),
  ) as string[][]
  return hooks.map(([dev, point], i) => ({
    tc: sh('ip', ['netns', 'exec', ns, 'tc', 'filter', 'show', 'dev', dev, point]).stdout.trim(),
    tcx: tcx[i]!,
  }))
}

/** Everything on one hook as text: tc filters, then "tcx: NAME …" ('' when nothing is attached). */
export function hookPrograms(ns: string, dev: string, point: 'ingress' | 'egress'): string {
  const v = hookView(ns, [[dev, point]])[0]!
  return [v.tc, v.tcx.length ? `tcx: ${v.tcx.join(' ')}` : ''].filter(Boolean).join('\n')
}

/** Link pins in a pin dir (tcx_<point>_<ifindex>). */
export function linkPins(pinDir: string): string[] {
  return existsSync(pinDir)
    ? readdirSync(pinDir)
        .filter((f) => /^tcx_/.test(f))
        .sort()
    : []
}

/** Takes our program off a device hook behind podnet's back, as a crash or
 * another tool would: the tcx link goes with its pin (nothing else holds it),
 * a tc filter with `tc filter del`. */
export function removeHookProgram(ns: string, pinDir: string, dev: string, point: 'ingress' | 'egress'): void {
  const ifindex = (JSON.parse(must('ip', ['-n', ns, '-j', 'link', 'show', dev])) as { ifindex: number }[])[0]!.ifindex
  const pin = join(pinDir, `tcx_${point}_${ifindex}`)
  if (existsSync(pin)) rmSync(pin)
  else must('tc', ['-n', ns, 'filter', 'del', 'dev', dev, point])
  if (hookView(ns, [[dev, point]])[0]!.tcx.length) throw new Error(`a program is still on ${dev} ${point} in ${ns}`)
}
