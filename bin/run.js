#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS PODNET_NODE_EXTRA_CA_CERTS=${NODE_EXTRA_CA_CERTS} node --max-semi-space-size=2
// --max-semi-space-size: a short-lived CLI does not need V8's default 16 MB
// young-generation halves; 2 MB keeps peak RSS ~10 MB lower at no measurable
// cost in run time (see BENCHMARKS.md, control plane).
// -u NODE_EXTRA_CA_CERTS: Node 20 parses that bundle (and OpenSSL's config)
// at process start, ~50 ms, even in a process that never opens a TLS
// connection; this CLI opens none. The value is kept aside for the commands
// `lab exec` runs (src/services/lab/lab.ts, execContext).
import { execute } from '@oclif/core/execute'

await execute({ dir: import.meta.url })
