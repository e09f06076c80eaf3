#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Vagrant provisioning of a podnet-bpf VM node (runs as root in the guest).
# Installs only what is missing, so a prepared box (CI, offline) needs no network:
# runtime packages (iproute2, libbpf1, bpftool, tcpdump, ping), Node >= 20
# (NodeSource's Debian repository when missing: Debian 12 ships Node 18), and the
# working tree's npm dependencies when they were not synced. No clang: the BPF
# objects are prebuilt on the host (`npm run build`) and synced.
set -euo pipefail
REPO=${1:-/home/vagrant/podnet-bpf}
export DEBIAN_FRONTEND=noninteractive
PKGS=(iproute2 iputils-ping libbpf1 bpftool tcpdump kmod ca-certificates curl gnupg)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if (( ${#missing[@]} )); then
  echo "provision: installing ${missing[*]}"
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
node_major() { node -e 'console.log(process.versions.node.split(".")[0])' 2>/dev/null || echo 0; }
if (( $(node_major) < 20 )); then
  echo "provision: installing Node 20 (NodeSource)"
  curl -fsSL "${PODNET_NODE_SETUP_URL:-https://deb.nodesource.com/setup_20.x}" | bash - >/dev/null
  apt-get install -y -qq nodejs >/dev/null
fi
echo "provision: node $(node --version), kernel $(uname -r)"
ls "$REPO"/bpf/build/*.bpf.o >/dev/null 2>&1 || { echo "provision: $REPO/bpf/build/*.bpf.o missing: run 'npm run build' on the host, then 'vagrant rsync'" >&2; exit 1; }
if [[ ! -d $REPO/node_modules ]]; then
  echo "provision: npm ci in $REPO"
  ( cd "$REPO" && if [[ -d dist ]]; then npm ci --omit=dev --no-audit --no-fund; else npm ci --no-audit --no-fund && npm run build:ts; fi )
fi
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
sysctl -qw net.ipv6.conf.all.disable_ipv6=0 || true
echo "provision: ready"
