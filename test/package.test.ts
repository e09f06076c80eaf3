// The npm package ships the prebuilt BPF objects (running needs no clang)
// and the compiled CLI.
import { describe, expect, it } from 'vitest'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { must, ROOT } from './support/sys.js'

describe('npm pack', () => {
  it('contains every prebuilt BPF object, the ABI header and the compiled CLI', () => {
    const out = must('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { env: { ...process.env, npm_config_loglevel: 'silent' } })
    const files = new Set((JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path))
    const objects = readdirSync(join(ROOT, 'bpf')).filter((f) => f.endsWith('.bpf.c'))
    expect(objects.length).toBeGreaterThanOrEqual(4)
    for (const src of objects) expect(files).toContain(`bpf/build/${src.replace(/\.c$/, '.o')}`)
    expect(files).toContain('bpf/include/podnet_abi.h')
    expect(files).toContain('dist/commands/attach.js')
    expect(files).toContain('bin/run.js')
    expect(files).toContain('oclif.manifest.json')
    expect([...files].some((f) => f.endsWith('.bpf.c'))).toBe(false)
  })
})
