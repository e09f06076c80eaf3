#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Quick check of a VM pair: underlay ping both ways and a tc BPF program loaded
# and attached on each node. Same environment as test/vm/suite.sh.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/runner.sh"
fail=0
for n in $VM_NODES; do
  for m in $VM_NODES; do
    [[ $n == "$m" ]] && continue
    ipvar=VM_NODE_IP_$m
    if node_exec "$n" "ping -c1 -W5 ${!ipvar} >/dev/null"; then echo "ok: $n pings $m"; else echo "FAIL: $n pings $m"; fail=1; fi
  done
  obj=$(ls "$VM_REPO"/bpf/build/*.bpf.o | head -1)
  if out=$(node_exec "$n" "bpftool prog loadall $obj /sys/fs/bpf/smoke type tc && ls /sys/fs/bpf/smoke && rm -rf /sys/fs/bpf/smoke"); then
    echo "ok: $n loads $(basename "$obj") ($(echo $out))"
  else echo "FAIL: $n loads $(basename "$obj"): $out"; fail=1; fi
done
exit $fail
