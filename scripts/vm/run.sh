#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Boot two qemu VMs straight from a Debian kernel package and run the VM suite
# (test/vm/suite.sh) across them. See docs/vm.md.
#
#   scripts/vm/run.sh [--kernel-deb PATH|PKG] [--mode direct|vxlan|all]
#                     [--pod-devices "veth netkit"] [--accel auto|kvm|tcg] [--smoke] [--keep-logs]
#
# The guests' root is this machine's filesystem, read-only over 9p, with a tmpfs
# overlay, so they run the working tree's build with the host's node, libbpf and
# iproute2. The VM-to-VM link is a qemu UDP socket netdev on 127.0.0.1.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$REPO/scripts/vm/lib.sh"

KERNEL=linux-image-amd64 MODE=all POD_DEVICES=veth ACCEL=${PODNET_VM_ACCEL:-auto} SMOKE=0 KEEP=0 MEM=${PODNET_VM_MEM:-1024}
usage() { sed -n '5,8p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while (( $# )); do
  case $1 in
    --kernel-deb) KERNEL=${2:?}; shift ;;
    --mode) MODE=${2:?}; shift ;;
    --pod-devices) POD_DEVICES=${2:?}; shift ;;
    --accel) ACCEL=${2:?}; shift ;;
    --smoke) SMOKE=1 ;;
    --keep-logs) KEEP=1 ;;
    -h|--help) usage 0 ;;
    *) echo "unknown argument: $1" >&2; usage 2 ;;
  esac
  shift
done
[[ $MODE == all ]] && MODE="direct vxlan"
[[ $(id -u) == 0 ]] || die "run as root (qemu 9p export of / and guest root inside)"
need qemu-system-x86_64 dpkg-deb depmod modprobe apt-get cpio

RUN=$(mktemp -d /tmp/podnet-vm.XXXXXX)
QEMU_PIDS=()
STATUS=1
finish() {
  local pid
  for pid in "${QEMU_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${QEMU_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ $STATUS != 0 || $KEEP == 1 ]]; then
    local keep=$VM_CACHE/logs/qemu-$(date +%Y%m%d-%H%M%S)
    mkdir -p "$keep" && cp -r "$RUN"/*.log "$RUN"/suite "$keep"/ 2>/dev/null || true
    progress "logs kept in $keep"
  fi
  rm -rf "$RUN"
}
trap finish EXIT
trap 'progress "interrupted"; exit 130' INT TERM

KTREE=$(kernel_fetch "$KERNEL")
KVER=$(kernel_version "$KTREE")
INITRD=$(kernel_initramfs "$KTREE")
VMLINUZ=$(kernel_image "$KTREE")
progress "kernel $KVER ($KTREE)"

free_port() { local p; while :; do p=$(( 20000 + RANDOM % 30000 )); ss -Hlun "sport = :$p" | grep -q . || { echo "$p"; return; }; done; }

qemu_base() { # accel
  local cpu=max; [[ $1 == kvm ]] && cpu=host
  echo qemu-system-x86_64 -machine q35,accel="$1" -cpu "$cpu" -smp 1 -m "$MEM" -nodefaults -no-user-config \
    -display none -no-reboot -kernel "$VMLINUZ" -initrd "$INITRD"
}

# KVM here may exist and still fail to run a guest (e.g. "failed to set MSR"), so
# probe it with a boot that powers off at once.
if [[ $ACCEL == auto ]]; then
  ACCEL=tcg
  if [[ -w /dev/kvm ]]; then
    progress "probing KVM"
    if timeout 10 $(qemu_base kvm) -serial stdio -append "console=ttyS0 panic=-1 podnet.probe=1" 2>&1 \
        </dev/null | grep -q PODNET-PROBE-OK; then ACCEL=kvm; fi
  fi
fi
progress "accelerator: $ACCEL"

P1=$(free_port); P2=$(free_port)
boot() { # name ip mac lport rport
  local name=$1
  mkdir -p "$RUN/$name"
  $(qemu_base "$ACCEL") \
    -append "console=ttyS0 panic=-1 quiet net.ifnames=0 podnet.name=$name podnet.ip=$2/24 podnet.ktree=$KTREE podnet.init=$REPO/scripts/vm/guest-init.sh podnet.repo=$REPO" \
    -serial "file:$RUN/$name.console.log" \
    -fsdev local,id=root,path=/,security_model=none,readonly=on,multidevs=remap \
    -device virtio-9p-pci,fsdev=root,mount_tag=hostroot \
    -fsdev local,id=repo,path="$REPO",security_model=none,readonly=on,multidevs=remap \
    -device virtio-9p-pci,fsdev=repo,mount_tag=repo \
    -fsdev local,id=xfer,path="$RUN/$name",security_model=none,multidevs=remap \
    -device virtio-9p-pci,fsdev=xfer,mount_tag=xfer \
    -netdev socket,id=n0,udp=127.0.0.1:"$5",localaddr=127.0.0.1:"$4" \
    -device virtio-net-pci,netdev=n0,mac="$3" \
    > "$RUN/$name.qemu.log" 2>&1 </dev/null &
  QEMU_PIDS+=($!)
}
progress "booting node1 and node2 (link: udp 127.0.0.1:$P1 <-> 127.0.0.1:$P2)"
boot node1 192.168.77.1 52:54:00:77:00:01 "$P1" "$P2"
boot node2 192.168.77.2 52:54:00:77:00:02 "$P2" "$P1"
deadline=$(( $(date +%s) + ${PODNET_VM_BOOT_TIMEOUT:-240} ))
for n in node1 node2; do
  until [[ -e $RUN/$n/ready ]]; do
    (( $(date +%s) < deadline )) || die "$n did not boot (see $RUN/$n.console.log)"
    for pid in "${QEMU_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null || die "qemu exited early: $(tail -n 3 "$RUN"/*.qemu.log "$RUN"/*.console.log)"; done
    sleep 0.5
  done
done
progress "both VMs up (kernel $(cat "$RUN/node1/ready"))"

export VM_RUNNER=qemu VM_XFER_node1=$RUN/node1 VM_XFER_node2=$RUN/node2
export VM_NODES="node1 node2" VM_NODE_IP_node1=192.168.77.1 VM_NODE_IP_node2=192.168.77.2
export VM_REPO=$REPO VM_LABEL="qemu $KVER $ACCEL" VM_T0
mkdir -p "$RUN/suite"
if (( SMOKE )); then
  bash "$REPO/test/vm/smoke.sh" 2>&1 | tee "$RUN/suite/smoke.log"; STATUS=${PIPESTATUS[0]}
else
  VM_MODES="$MODE" VM_POD_DEVICES="$POD_DEVICES" VM_LOG_DIR=$RUN/suite bash "$REPO/test/vm/suite.sh"; STATUS=$?
fi || true

progress "powering off"
for n in node1 node2; do : > "$RUN/$n/cmd.poweroff.sh"; done
for pid in "${QEMU_PIDS[@]}"; do
  for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
done
progress "done ($( ((STATUS==0)) && echo PASS || echo FAIL))"
exit "$STATUS"
