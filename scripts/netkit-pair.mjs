#!/usr/bin/env node
// A pod's netkit pair for the VM suite and the benchmark: HOST_IF in this
// process's network namespace (run it under nsenter --net=…), its peer as eth0
// in /run/netns/POD_NS. The lab's own code does it (iproute2 6.1 cannot), so
// run `npm run build` first. Prints one `error: …` line and exits 1 on failure.
//   node scripts/netkit-pair.mjs POD_NS HOST_IF [MTU]
import { createNetkitPod } from '../dist/services/lab/netns.js'

const [pod, hostIf, mtu] = process.argv.slice(2)
if (!pod || !hostIf) {
  process.stderr.write('usage: node scripts/netkit-pair.mjs POD_NS HOST_IF [MTU]\n')
  process.exit(2)
}
try {
  createNetkitPod(hostIf, pod, mtu ? Number(mtu) : undefined)
} catch (e) {
  process.stderr.write(`error: ${e.message}\n`)
  process.exit(1)
}
