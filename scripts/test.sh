#!/usr/bin/env bash
# The whole test suite, as root on Debian 12: installs and builds what it
# needs first, then runs, against the real kernel:
#   unit         libbpf layer, packet-level tests of every BPF program
#                (BPF_PROG_TEST_RUN), fuzzing, verifier and ABI checks
#   integration  datapath, CLI, inspect commands, the lab's end-to-end suite
#                and the benchmark's reference setups, in network namespaces
#   vm           the cross-node suite on two VM nodes: qemu with a second
#                kernel (Debian 12's 6.12), and the Vagrantfile with a
#                self-built Debian 12 box (6.1) — skip with PODNET_SKIP_VM=1
# PODNET_FUZZ_COUNT sets the number of fuzzed frames (CI: 100000).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${PODNET_SKIP_VM:-0}" = 1 ]; then ./scripts/setup.sh; else ./scripts/setup.sh --vm; fi

echo "== lint and format (layer order of src/, one code style)"
npm run lint
npm run format:check
echo "== unit tests"
npx vitest run --project unit
echo "== integration tests (network namespaces)"
npx vitest run --project integration
if [ "${PODNET_SKIP_VM:-0}" != 1 ]; then
  echo "== VM tests: qemu, second kernel"
  bash scripts/vm/run.sh --kernel-deb 6.12 --pod-devices 'veth netkit'
  echo "== VM tests: Vagrantfile (libvirt/qemu, self-built box)"
  bash scripts/vm/vagrant-ci.sh
fi
