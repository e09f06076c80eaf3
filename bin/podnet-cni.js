#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS node --max-semi-space-size=2
// The CNI plugin (type "podnet"): its own small entry, no CLI framework.
// `podnet-bpf cni install` puts a launcher of this file into the runtime's
// CNI bin dir. Flags as in run.js: short-lived, opens no TLS.
import '../dist/cni/main.js'
