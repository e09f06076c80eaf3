#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build and run podnet-bpf,
# then builds it. Idempotent: skips what is already there.
#   --vm   also what the VM tests need (qemu, debootstrap, vagrant, libvirt)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "setup: run as root (podnet-bpf loads BPF programs and creates namespaces)" >&2
  exit 1
fi

PKGS=(clang llvm libc6-dev libbpf-dev libbpf1 bpftool iproute2 iputils-ping tcpdump iperf3 sockperf ethtool util-linux make etcd-server etcd-client)
# Kubernetes tests: the API test server's TLS certificate (openssl), agents probed inside node namespaces (curl)
PKGS+=(curl openssl)
# hand-made packets from raw sockets in the hostile-pod tests (test/support/rawpkt.py)
PKGS+=(python3)
# CNI: host-local/portmap (the plugin's IPAM and chained plugin), iptables for portmap,
# containerd and libcni's Go sources + Go for the runtime tests, gcc for their pause image
PKGS+=(containernetworking-plugins iptables containerd golang-go golang-github-appc-cni-dev gcc libc6-dev)
if [ "${1:-}" = --vm ]; then
  PKGS+=(qemu-system-x86 qemu-utils busybox-static cpio kmod debootstrap e2fsprogs rsync openssh-client
         vagrant vagrant-libvirt libvirt-daemon-system libvirt-clients dnsmasq-base iptables zstd xz-utils)
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  # bird2: the agent (--routing bgp), the tests and the lab start their own
  # BIRD instances in namespaces; Debian's bird service must not start in the
  # host's namespace. A temporary policy-rc.d (when none exists) stops the
  # package from starting it; one that exists already decides as it always does.
  policy=/usr/sbin/policy-rc.d
  ours=
  if [[ " ${missing[*]} " == *" bird2 "* ]] && [ ! -e "$policy" ]; then
    ours=1
    printf '#!/bin/sh\n# podnet-bpf setup: no service starts during this install\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  if [ -n "$ours" ]; then rm -f "$policy"; trap - EXIT; fi
fi
# whatever installed it: no root-namespace BIRD from Debian's unit, now or at boot
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  for unit in bird.service bird6.service; do
    if systemctl is-enabled "$unit" >/dev/null 2>&1 || systemctl is-active "$unit" >/dev/null 2>&1; then
      systemctl disable --now "$unit" >/dev/null 2>&1 || true
      echo "setup: disabled $unit (podnet-bpf runs its own BIRD instances)"
    fi
  done
fi

if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "setup: Node.js >= 20 is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

if [ ! -d node_modules/@2060.io/ffi-napi ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  # the committed lock is complete (every optional per-platform package):
  # npm ci must take it as is; never rewrite a tracked file on a user's machine
  if ! npm ci --no-audit --no-fund --loglevel=error; then
    echo "setup: npm ci refused package-lock.json. Fix: regenerate it with 'npm install' on a development machine and commit it" >&2
    exit 1
  fi
fi
# the FFI addon is native: make sure it really loads on this machine
node -e "require('@2060.io/ffi-napi'); require('@2060.io/ref-napi')" || {
  echo "setup: the ffi-napi native addon does not load; rebuilding" >&2
  npm rebuild @2060.io/ffi-napi @2060.io/ref-napi
}

mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

echo "setup: building BPF objects and TypeScript"
npm run build --silent

# the CLI on PATH, pointing at this checkout
if [ "$(readlink -f /usr/local/bin/podnet-bpf 2>/dev/null)" != "$PWD/bin/run.js" ]; then
  ln -sf "$PWD/bin/run.js" /usr/local/bin/podnet-bpf
  echo "setup: linked /usr/local/bin/podnet-bpf → $PWD/bin/run.js"
fi
