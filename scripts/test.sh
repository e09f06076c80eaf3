#!/usr/bin/env bash
# The whole test suite, as root on Debian 12: installs and builds what it
# needs first. Unit (packet-level, libbpf layer) and integration (network
# namespaces, real traffic) suites run against the real kernel.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
npx vitest run --project unit
npx vitest run --project integration
