#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Build a Vagrant box (provider libvirt) for the podnet-bpf VM suite, offline:
# Debian 12 from the apt mirror this machine uses (debootstrap), a `vagrant`
# user with Vagrant's published insecure key, ssh, sudo and the runtime packages,
# and Node 20 copied from this machine (Debian 12 ships only Node 18; the node
# binary is self-contained apart from libc/libstdc++). The disk is a bare ext4
# filesystem (mke2fs -d, no loop mount) converted to qcow2; the box carries the
# kernel and initrd and its Vagrantfile boots them directly.
#
#   scripts/vm/build-box.sh [--force]      prints the path of the (cached) .box
# The box goes to $PODNET_BOX_DIR (default $VM_CACHE/box). Stdout carries
# exactly one line, the box path (callers capture it): every tool's own output
# (mke2fs -d prints "Creating regular file …") goes to stderr.
set -euo pipefail
exec 3>&1 1>&2
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$REPO/scripts/vm/lib.sh"
FORCE=0; [[ ${1:-} == --force ]] && FORCE=1
need debootstrap mke2fs qemu-img tar sha256sum

NODE_BIN=$(readlink -f "$(command -v node)")
KEY=${PODNET_VAGRANT_PUBKEY:-$(ls /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub /opt/vagrant/embedded/gems/*/gems/vagrant-*/keys/vagrant.pub 2>/dev/null | head -1 || true)}
[[ -n $KEY ]] || die "Vagrant's insecure public key not found (install the vagrant package)"
"$NODE_BIN" -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' || die "host node must be >= 20 (it is copied into the box)"
PACKAGES=systemd-sysv,udev,dbus,openssh-server,sudo,iproute2,iputils-ping,kmod,libbpf1,bpftool,tcpdump,rsync,procps,netbase,ca-certificates,linux-image-amd64,initramfs-tools,libstdc++6,curl,gnupg,python3
# The box is rebuilt when this script, the node binary or the key changes.
HASH=$( (cat "${BASH_SOURCE[0]}"; echo "$PACKAGES"; sha256sum "$NODE_BIN" "$KEY") | sha256sum | cut -c1-12)
BOX=${PODNET_BOX_DIR:-$VM_CACHE/box}/podnet-debian12-$HASH.box
if [[ -f $BOX && $FORCE == 0 ]]; then progress "box cached: $BOX"; echo "$BOX" >&3; exit 0; fi

MIRROR=${PODNET_DEBIAN_MIRROR:-$(awk '/^URIs:/ && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)}
[[ -n $MIRROR ]] || MIRROR=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[[ -n $MIRROR ]] || die "no Debian mirror found in apt sources; set PODNET_DEBIAN_MIRROR"

WORK=$(mktemp -d /var/tmp/podnet-box.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
ROOT=$WORK/root
progress "debootstrap bookworm from $MIRROR (log: $WORK/debootstrap.log)"
mkdir -p "$ROOT/etc/initramfs-tools/conf.d"
# Small initrd: only what a virtio disk + ext4 root needs.
echo MODULES=list > "$ROOT/etc/initramfs-tools/conf.d/podnet.conf"
printf '%s\n' virtio_pci virtio_blk virtio_net ext4 > "$ROOT/etc/initramfs-tools/modules.podnet"
if ! debootstrap --variant=minbase --include="$PACKAGES" bookworm "$ROOT" "$MIRROR" > "$WORK/debootstrap.log" 2>&1; then
  tail -n 20 "$WORK/debootstrap.log" >&2; die "debootstrap failed"
fi

progress "configuring the box root"
install -m 0755 "$NODE_BIN" "$ROOT/usr/local/bin/node"
cat "$ROOT/etc/initramfs-tools/modules.podnet" >> "$ROOT/etc/initramfs-tools/modules"
echo podnet-box > "$ROOT/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 podnet-box\n' > "$ROOT/etc/hosts"
echo '/dev/vda / ext4 defaults,noatime 0 1' > "$ROOT/etc/fstab"
echo "deb $MIRROR bookworm main" > "$ROOT/etc/apt/sources.list"
mkdir -p "$ROOT/etc/systemd/network"
cat > "$ROOT/etc/systemd/network/10-mgmt.network" <<'NET'
[Match]
Name=eth0
[Network]
DHCP=ipv4
[DHCPv4]
# The box is cloned: identify by MAC, not by the (shared) machine-id.
ClientIdentifier=mac
NET
cat > "$ROOT/etc/ssh/sshd_config.d/podnet.conf" <<'SSH'
UseDNS no
HostKey /etc/ssh/ssh_host_ed25519_key
SSH
# chroot steps run in a private mount namespace: nothing to unmount on failure.
unshare --mount --propagation private bash -euc '
  ROOT=$1
  mount -t proc proc "$ROOT/proc"; mount --rbind /sys "$ROOT/sys"; mount --rbind /dev "$ROOT/dev"
  chroot "$ROOT" /bin/bash -euc "
    export DEBIAN_FRONTEND=noninteractive
    useradd -m -s /bin/bash -G sudo vagrant
    echo vagrant:vagrant | chpasswd
    echo \"vagrant ALL=(ALL) NOPASSWD: ALL\" > /etc/sudoers.d/vagrant; chmod 0440 /etc/sudoers.d/vagrant
    rm -f /etc/ssh/ssh_host_*; ssh-keygen -q -t ed25519 -N \"\" -f /etc/ssh/ssh_host_ed25519_key
    systemctl enable systemd-networkd ssh >/dev/null 2>&1
    systemctl mask e2scrub_reap.service systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1
    update-initramfs -u -k all >/dev/null 2>&1
    apt-get clean
    rm -rf /usr/share/doc/* /usr/share/man/* /usr/share/info/*
    # Every clone must get its own machine-id (DHCP client id, journal).
    : > /etc/machine-id; rm -f /var/lib/dbus/machine-id
  "
' _ "$ROOT"
install -d -m 0700 "$ROOT/home/vagrant/.ssh"
install -m 0600 "$KEY" "$ROOT/home/vagrant/.ssh/authorized_keys"
chroot "$ROOT" chown -R vagrant:vagrant /home/vagrant/.ssh
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin

progress "making the disk (mke2fs -d + qemu-img convert)"
mkdir -p "$WORK/box"
cp "$(ls "$ROOT"/boot/vmlinuz-* | head -1)" "$WORK/box/vmlinuz"
cp "$(ls "$ROOT"/boot/initrd.img-* | head -1)" "$WORK/box/initrd.img"
mke2fs -q -t ext4 -L root -d "$ROOT" "$WORK/disk.raw" 6G
qemu-img convert -c -O qcow2 "$WORK/disk.raw" "$WORK/box/box.img"
rm -f "$WORK/disk.raw"
echo '{"provider":"libvirt","format":"qcow2","virtual_size":6}' > "$WORK/box/metadata.json"
cat > "$WORK/box/Vagrantfile" <<'VF'
# Box defaults: boot the shipped kernel+initrd directly (the disk has no bootloader).
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |lv|
    lv.kernel = File.join(File.dirname(__FILE__), "vmlinuz")
    lv.initrd = File.join(File.dirname(__FILE__), "initrd.img")
    lv.cmd_line = "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet"
  end
end
VF
mkdir -p "$(dirname "$BOX")"
tar -C "$WORK/box" -cf "$BOX.tmp" metadata.json Vagrantfile vmlinuz initrd.img box.img
mv "$BOX.tmp" "$BOX"
progress "box built: $BOX ($(du -h "$BOX" | cut -f1))"
echo "$BOX" >&3
