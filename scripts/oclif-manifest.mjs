// Writes oclif.manifest.json after the TypeScript build, so the CLI loads
// only the command it runs instead of importing every command (and with it
// libbpf, zod, prom-client, …) to learn their flags: faster start, less RSS.
import { writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Plugin } from '@oclif/core'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const plugin = new Plugin({ root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true })
await plugin.load()
writeFileSync(join(root, 'oclif.manifest.json'), JSON.stringify(plugin.manifest, null, 1))
console.log(`oclif.manifest.json: ${Object.keys(plugin.manifest.commands).length} commands`)
