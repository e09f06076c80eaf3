#!/usr/bin/env -S node --max-semi-space-size=2
// --max-semi-space-size: a short-lived CLI does not need V8's default 16 MB
// young-generation halves; 2 MB keeps peak RSS ~10 MB lower at no measurable
// cost in run time (see BENCHMARKS.md, control plane).
import { execute } from '@oclif/core'

await execute({ dir: import.meta.url })
