// scripts/vm/build-box.sh prints exactly one line, the path of the box it
// built, whatever the tools it runs print: callers capture it as the box
// path (`vagrant box add "$(build-box.sh)"`). The slow tools (debootstrap,
// the chroot steps, mke2fs, qemu-img) are stand-ins that behave like the real
// ones on stdout: mke2fs -d prints a "Creating regular file" line per file.
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import { ROOT } from '../support/sys.js'

const dir = mkdtempSync(join(tmpdir(), 'pngd-box-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function stub(name: string, body: string): void {
  const p = join(dir, 'bin', name)
  writeFileSync(p, `#!/bin/bash\n${body}\n`)
  chmodSync(p, 0o755)
}

it('build-box.sh prints only the path of the box, which exists', () => {
  mkdirSync(join(dir, 'bin'))
  // debootstrap SUITE TARGET MIRROR: a root with what the script copies out
  stub(
    'debootstrap',
    'for a; do t=$p; p=$a; done; r=$t\nmkdir -p "$r"/boot "$r"/etc/ssh/sshd_config.d "$r"/etc/apt "$r"/usr/local/bin "$r"/home/vagrant "$r"/var/lib/apt/lists "$r"/var/cache/apt\n' +
      'echo kernel > "$r"/boot/vmlinuz-6.1.0-stub; echo initrd > "$r"/boot/initrd.img-6.1.0-stub; echo "I: Base system installed successfully."',
  )
  stub('unshare', 'echo "unshare: chroot steps"')
  stub('chroot', 'echo "chroot: $*"')
  // mke2fs -q ... -d ROOT IMAGE SIZE: like the real one, -q does not silence -d
  stub('mke2fs', 'img=${@: -2:1}; echo "Copying files into the device: done"; echo "Creating regular file /usr/local/bin/node"; : > "$img"')
  stub('qemu-img', 'echo "    (100.00/100%)"; : > "${@: -1}"')
  writeFileSync(join(dir, 'key.pub'), 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPngdStubKeyOnlyForThisTest pngd@test\n')
  const r = spawnSync('bash', [join(ROOT, 'scripts/vm/build-box.sh')], {
    encoding: 'utf8',
    env: {
      ...process.env,
      PATH: `${join(dir, 'bin')}:${process.env.PATH}`,
      PODNET_VAGRANT_PUBKEY: join(dir, 'key.pub'),
      PODNET_DEBIAN_MIRROR: 'http://deb.example.invalid/debian',
      PODNET_BOX_DIR: join(dir, 'box'),
      PODNET_VM_CACHE: join(dir, 'cache'),
    },
    timeout: 120_000,
  })
  expect(r.status, r.stderr).toBe(0)
  const lines = r.stdout.split('\n').filter((l) => l !== '')
  expect(lines).toHaveLength(1)
  expect(lines[0]).toMatch(new RegExp(`^${join(dir, 'box')}/podnet-debian12-[0-9a-f]{12}\\.box$`))
  expect(existsSync(lines[0]!)).toBe(true)
  // the tools' chatter went to stderr, where the operator still sees it
  expect(r.stderr).toContain('Creating regular file')
  // a second run finds the box cached and still prints only its path
  const again = spawnSync('bash', [join(ROOT, 'scripts/vm/build-box.sh')], {
    encoding: 'utf8',
    env: {
      ...process.env,
      PATH: `${join(dir, 'bin')}:${process.env.PATH}`,
      PODNET_VAGRANT_PUBKEY: join(dir, 'key.pub'),
      PODNET_BOX_DIR: join(dir, 'box'),
      PODNET_VM_CACHE: join(dir, 'cache'),
    },
  })
  expect(again.stdout).toBe(`${lines[0]}\n`)
})
