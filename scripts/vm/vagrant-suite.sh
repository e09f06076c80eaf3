#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Run the VM suite (test/vm/suite.sh) on the Vagrant nodes of ./Vagrantfile,
# which must be up (`vagrant up`). Commands go over ssh (`vagrant ssh-config`).
#   scripts/vm/vagrant-suite.sh [--mode direct|vxlan|all]
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$REPO/scripts/vm/lib.sh"
MODE=all
[[ ${1:-} == --mode ]] && MODE=${2:?}
[[ $MODE == all ]] && MODE="direct vxlan"
need vagrant ssh
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
cd "$REPO"
progress "reading vagrant ssh-config"
vagrant ssh-config node1 node2 > "$TMP/ssh_config" || die "vagrant ssh-config failed: are the VMs up? (vagrant up)"
NET=${PODNET_VM_NET:-192.168.56}
export VM_RUNNER=ssh VM_SSH_CONFIG=$TMP/ssh_config VM_NODES="node1 node2"
export VM_NODE_IP_node1=$NET.11 VM_NODE_IP_node2=$NET.12 VM_REPO=/home/vagrant/podnet-bpf
export VM_MODES=$MODE VM_LABEL=${VM_LABEL:-vagrant} VM_LOG_DIR=${VM_LOG_DIR:-$TMP/suite} VM_T0
bash "$REPO/test/vm/suite.sh"
