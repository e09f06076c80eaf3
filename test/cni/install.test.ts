// `cni install|uninstall` on temporary directories: what install writes, that
// it refuses to overwrite a foreign plugin, and that uninstall removes exactly
// what install wrote.
import { afterEach, describe, expect, it } from 'vitest'
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { installCni, uninstallCni } from '../../src/services/cni-install.js'

const dirs: string[] = []
function temp(): { binDir: string; confDir: string } {
  const d = mkdtempSync(join(tmpdir(), 'pncni-install-'))
  dirs.push(d)
  return { binDir: join(d, 'bin'), confDir: join(d, 'net.d') }
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

describe('cni install', () => {
  it('writes the launcher and a conflist with podnet then portmap, and links the delegates it lacks', () => {
    const t = temp()
    const r = installCni({ ...t, pinDir: '/sys/fs/bpf/n1' })
    expect(readFileSync(r.launcher, 'utf8')).toMatch(
      /^#!\/bin\/sh\n# podnet-bpf CNI plugin launcher[\s\S]*exec '.*node' --max-semi-space-size=2 '.*\/dist\/cni\/main\.js' "\$@"\n$/,
    )
    expect(lstatSync(r.launcher).mode & 0o111).not.toBe(0)
    expect(JSON.parse(readFileSync(r.conflist, 'utf8'))).toEqual({
      cniVersion: '1.0.0',
      name: 'podnet',
      plugins: [
        { type: 'podnet', pinDir: '/sys/fs/bpf/n1', ipam: { type: 'host-local', ranges: [[{ subnet: 'usePodCidr' }]] } },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    })
    for (const l of r.linked) expect(readlinkSync(join(t.binDir, l))).toBe(`/usr/lib/cni/${l}`)
    // again: same files, nothing linked twice
    expect(installCni({ ...t, pinDir: '/sys/fs/bpf/n1' }).linked).toEqual([])
  })

  it('refuses to overwrite a plugin named podnet that it did not write', () => {
    const t = temp()
    mkdirSync(t.binDir, { recursive: true })
    writeFileSync(join(t.binDir, 'podnet'), '#!/bin/sh\necho other\n')
    expect(() => installCni(t)).toThrow(/exists and is not podnet-bpf's launcher/)
    expect(readFileSync(join(t.binDir, 'podnet'), 'utf8')).toContain('echo other')
    expect(existsSync(join(t.confDir, '10-podnet.conflist'))).toBe(false)
  })

  it('uninstall removes what install wrote and keeps what it did not', () => {
    const t = temp()
    mkdirSync(t.binDir, { recursive: true })
    writeFileSync(join(t.binDir, 'portmap'), 'mine')
    const r = installCni(t)
    expect(r.linked).not.toContain('portmap')
    writeFileSync(join(t.confDir, '20-other.conflist'), '{}')
    const u = uninstallCni(t)
    expect(u.removed.sort()).toEqual([r.conflist, r.launcher, ...r.linked.map((l) => join(t.binDir, l))].sort())
    expect(readFileSync(join(t.binDir, 'portmap'), 'utf8')).toBe('mine')
    expect(existsSync(join(t.confDir, '20-other.conflist'))).toBe(true)
    expect(uninstallCni(t).removed).toEqual([])
  })
})
