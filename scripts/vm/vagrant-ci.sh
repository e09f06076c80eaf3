#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# CI path for ./Vagrantfile, offline: build (or reuse) the project's own box,
# then in a network namespace created here (never a bridge in the root
# namespace) and a private mount namespace, start virtlogd + libvirtd, run
# `vagrant up` (libvirt, driver qemu unless PODNET_LIBVIRT_DRIVER says kvm), the
# suite over `vagrant ssh-config`, and `vagrant destroy -f`. Everything is
# removed afterwards, also on failure and Ctrl-C; logs are kept on failure.
#   scripts/vm/vagrant-ci.sh [--mode direct|vxlan|all] [--keep-logs]
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$REPO/scripts/vm/lib.sh"
BOX_NAME=podnet-bpf/debian12-local

if [[ ${1:-} != --inner ]]; then
  MODE=all KEEP=0
  while (( $# )); do
    case $1 in --mode) MODE=${2:?}; shift ;; --keep-logs) KEEP=1 ;; *) die "unknown argument $1" ;; esac; shift
  done
  [[ $(id -u) == 0 ]] || die "run as root"
  need vagrant libvirtd virtlogd virsh ip nsenter unshare ssh rsync
  RUN=$(mktemp -d /var/tmp/podnet-vagrant.XXXXXX)
  # PODNET_FRESH_BOX=1 (.ci/run): build the box into an empty directory, so
  # a cached box can never hide a broken build; it is removed afterwards.
  BOX_DIR=
  if [[ ${PODNET_FRESH_BOX:-0} == 1 ]]; then BOX_DIR=$RUN/box; mkdir -p "$BOX_DIR"; fi
  NS=podnet-vagrant-$$
  export VM_T0
  STATUS=1
  outer_cleanup() {
    local pid
    # Anything still running in our namespace was started by this run.
    for pid in $(ip netns pids "$NS" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    sleep 1
    for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
    if [[ $STATUS != 0 || $KEEP == 1 ]]; then
      local keep=$VM_CACHE/logs/vagrant-$(date +%Y%m%d-%H%M%S)
      mkdir -p "$keep" && cp -r "$RUN"/*.log "$RUN"/suite "$RUN"/run-libvirt/../log-libvirt "$keep"/ 2>/dev/null || true
      progress "logs kept in $keep"
    fi
    rm -rf "$RUN"
  }
  trap outer_cleanup EXIT
  trap 'progress "interrupted"; exit 130' INT TERM
  BOX=$(PODNET_BOX_DIR=$BOX_DIR bash "$REPO/scripts/vm/build-box.sh")
  [[ $BOX == *.box && -f $BOX ]] || die "build-box.sh printed '$BOX', not the path of a box file"
  export PODNET_FRESH_BOX
  ip netns add "$NS"
  progress "network namespace $NS; work dir $RUN"
  set +e
  nsenter --net="/run/netns/$NS" unshare --mount --propagation private \
    bash "${BASH_SOURCE[0]}" --inner "$RUN" "$BOX" "$MODE"
  STATUS=$?
  set -e
  progress "done ($( ((STATUS==0)) && echo PASS || echo FAIL))"
  exit "$STATUS"
fi

# --- inner: new netns + private mounts --------------------------------------
RUN=$2 BOX=$3 MODE=$4
ip link set lo up
# libvirt's state, config and logs live in $RUN for this run only.
for d in run-libvirt lib-libvirt etc-libvirt log-libvirt; do mkdir -p "$RUN/$d"; done
cp -a /etc/libvirt/. "$RUN/etc-libvirt/"
cp -a /var/lib/libvirt/. "$RUN/lib-libvirt/"
rm -f "$RUN"/etc-libvirt/qemu/networks/autostart/*
printf 'user = "root"\ngroup = "root"\ndynamic_ownership = 0\nsecurity_driver = "none"\n' >> "$RUN/etc-libvirt/qemu.conf"
mkdir -p /run/libvirt /var/log/libvirt
mount --bind "$RUN/run-libvirt" /run/libvirt
mount --bind "$RUN/lib-libvirt" /var/lib/libvirt
mount --bind "$RUN/etc-libvirt" /etc/libvirt
mount --bind "$RUN/log-libvirt" /var/log/libvirt
# The box image volume is kept between runs (upload is slow); VM disks are not.
mkdir -p "$VM_CACHE/libvirt-images"
find "$VM_CACHE/libvirt-images" -maxdepth 1 -type f ! -name '*vagrant_box_image*' -delete
mount --bind "$VM_CACHE/libvirt-images" /var/lib/libvirt/images

export VAGRANT_HOME=$VM_CACHE/vagrant.d VAGRANT_DOTFILE_PATH=$RUN/dot VAGRANT_CWD=$REPO
export VAGRANT_DEFAULT_PROVIDER=libvirt VAGRANT_CHECKPOINT_DISABLE=1 VAGRANT_BOX_UPDATE_CHECK_DISABLE=1
export PODNET_BOX=$BOX_NAME PODNET_LIBVIRT_DRIVER=${PODNET_LIBVIRT_DRIVER:-qemu} PODNET_SYNC_NODE_MODULES=1
export PODNET_VM_NET=${PODNET_VM_NET:-192.168.56}

inner_cleanup() {
  set +e
  progress "vagrant destroy -f"
  timeout 180 vagrant destroy -f >> "$RUN/vagrant.log" 2>&1
  local d
  for d in $(virsh -q list --all --name 2>/dev/null); do virsh destroy "$d"; virsh undefine "$d" --nvram; done >/dev/null 2>&1
  for d in $(virsh -q net-list --name 2>/dev/null); do virsh net-destroy "$d"; done >/dev/null 2>&1
  find "$VM_CACHE/libvirt-images" -maxdepth 1 -type f ! -name '*vagrant_box_image*' -delete
  [[ -f $RUN/libvirtd.pid ]] && kill "$(cat "$RUN/libvirtd.pid")" 2>/dev/null
  [[ -f $RUN/virtlogd.pid ]] && kill "$(cat "$RUN/virtlogd.pid")" 2>/dev/null
  sleep 1
}
trap inner_cleanup EXIT
trap 'exit 130' INT TERM

progress "starting virtlogd and libvirtd"
virtlogd -d -p "$RUN/virtlogd.pid"
libvirtd -d -p "$RUN/libvirtd.pid"
for _ in $(seq 50); do virsh -q version >/dev/null 2>&1 && break; sleep 0.2; done
virsh -q version >/dev/null 2>&1 || die "libvirtd did not start"

# Add the box to Vagrant once per built box (every time for a fresh build:
# `vagrant box add` of the path build-box.sh printed is what must work).
BOX_ID=$(basename "$BOX" .box)
if [[ $(cat "$VAGRANT_HOME/podnet-box-id" 2>/dev/null) != "$BOX_ID" ]] || ! vagrant box list 2>/dev/null | grep -q "^$BOX_NAME "; then
  progress "vagrant box add $BOX_NAME ($BOX_ID)"
  vagrant box add --force --name "$BOX_NAME" "$BOX" >> "$RUN/vagrant.log" 2>&1 || die "vagrant box add failed (see $RUN/vagrant.log)"
  rm -f "$VM_CACHE"/libvirt-images/*vagrant_box_image*
  echo "$BOX_ID" > "$VAGRANT_HOME/podnet-box-id"
elif [[ ${PODNET_FRESH_BOX:-0} == 1 ]]; then
  # same build as the box libvirt already holds: re-add, keep the uploaded image
  progress "vagrant box add $BOX_NAME ($BOX_ID, fresh build)"
  vagrant box add --force --name "$BOX_NAME" "$BOX" >> "$RUN/vagrant.log" 2>&1 || die "vagrant box add failed (see $RUN/vagrant.log)"
fi

progress "vagrant up (libvirt driver $PODNET_LIBVIRT_DRIVER); log: $RUN/vagrant.log"
t=$(date +%s)
if ! timeout 900 vagrant up >> "$RUN/vagrant.log" 2>&1; then
  tail -n 30 "$RUN/vagrant.log" >&2; die "vagrant up failed"
fi
progress "vagrant up took $(( $(date +%s) - t ))s"
VM_LABEL="vagrant libvirt/$PODNET_LIBVIRT_DRIVER" VM_LOG_DIR=$RUN/suite bash "$REPO/scripts/vm/vagrant-suite.sh" --mode "$MODE"
