#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# PID 1 of a qemu test guest (started by scripts/vm/initramfs-init). The root is
# the host's filesystem (9p, read-only) under a tmpfs overlay. Sets up the node
# and serves commands from the host through the 9p "xfer" share:
#   host writes cmd.<id>.sh  ->  guest runs it, writes out.<id> then rc.<id>.
# Commands run one at a time; a command that starts a background job must
# redirect its output (the agent never waits for it).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
arg() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
NAME=$(arg podnet.name) IP=$(arg podnet.ip) KTREE=$(arg podnet.ktree) REPO=$(arg podnet.repo)
poweroff_now() { sync; echo o > /proc/sysrq-trigger; sleep 5; }
trap poweroff_now EXIT

for d in /run /tmp /var/tmp /var/log /root; do mount -t tmpfs -o mode=0755 tmpfs "$d"; done
chmod 1777 /tmp /var/tmp
# the working tree has its own share: it may sit under a directory the tmpfs
# mounts above just hid (a clone in /tmp or /root)
if [[ -n $REPO ]]; then
  mkdir -p "$REPO" && mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 repo "$REPO"
fi
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
mkdir -p /run/netns /xfer
hostname "$NAME"
# The guest kernel's modules live in the kernel cache tree (visible through 9p).
KVER=$(uname -r)
if [[ -d $KTREE/lib/modules/$KVER ]]; then
  mkdir -p /lib/modules/$KVER && mount --bind "$KTREE/lib/modules/$KVER" /lib/modules/$KVER
fi
for m in veth vxlan sch_ingress cls_bpf; do modprobe "$m" 2>/dev/null; done
ip link set lo up
ip addr add "$IP" dev eth0 && ip link set eth0 up
sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 kernel.sysrq=1

mount -t 9p -o trans=virtio,version=9p2000.L,cache=none,msize=512000 xfer /xfer || exit 1
echo "podnet-vm $NAME ready kernel=$KVER" > /dev/console
echo "$KVER" > /xfer/ready
exec 7<> <(:)   # a pipe nobody writes: `read -t` on it is a sleep without fork
while :; do
  for f in /xfer/cmd.*.sh; do
    [[ -e $f ]] || continue
    id=${f#/xfer/cmd.}; id=${id%.sh}
    if [[ $id == poweroff ]]; then rm -f "$f"; exit 0; fi
    (cd /root && exec setsid bash "$f") > "/xfer/out.$id" 2>&1 < /dev/null
    echo $? > "/xfer/rc.$id.tmp" && mv "/xfer/rc.$id.tmp" "/xfer/rc.$id"
    rm -f "$f"
  done
  read -t 0.1 -u 7
done
