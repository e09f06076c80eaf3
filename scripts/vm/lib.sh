# SPDX-License-Identifier: Apache-2.0
# Shared helpers for the VM launchers (sourced, not executed).

VM_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VM_CACHE=${PODNET_VM_CACHE:-/var/cache/podnet-bpf}
VM_T0=${VM_T0:-$(date +%s)}

# Progress line: "[  12s] message" on stderr.
progress() { printf '[%4ss] %s\n' "$(( $(date +%s) - VM_T0 ))" "$*" >&2; }
die() { progress "ERROR: $*"; exit 1; }

need() {
  local c
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 || die "missing command '$c' (see docs/vm.md for the packages to install)"; done
}

# Cleanup stack: cleanup_push "cmd"; run in reverse order by cleanup_run (trap EXIT).
CLEANUP_STACK=()
cleanup_push() { CLEANUP_STACK+=("$1"); }
cleanup_run() {
  local i
  for (( i=${#CLEANUP_STACK[@]}-1; i>=0; i-- )); do eval "${CLEANUP_STACK[$i]}" >/dev/null 2>&1 || true; done
  CLEANUP_STACK=()
}

# Resolve a kernel spec (a .deb path, a package name, or a meta package such as
# linux-image-amd64) to an extracted tree under $VM_CACHE/kernels/<pkg>/ and
# print that directory. The tree has boot/vmlinuz-* and lib/modules/<kver>/.
kernel_fetch() {
  local spec=$1 pkg deb dir
  if [[ -f $spec ]]; then
    deb=$(readlink -f "$spec")
    pkg=$(dpkg-deb -f "$deb" Package)_$(dpkg-deb -f "$deb" Version)
  else
    pkg=$spec
    # "6.12": the newest Debian 12 build of that kernel series (e.g. from bookworm-security).
    if [[ $pkg =~ ^[0-9]+\.[0-9]+$ ]]; then
      pkg=$(apt-cache search --names-only "^linux-image-${pkg//./\\.}\\.[0-9]+.*-amd64\$" | awk '{print $1}' \
        | grep -v -e '-rt-' -e '-cloud-' -e 'dbg' -e 'unsigned' | sort -V | tail -n 1)
      [[ -n $pkg ]] || die "no Debian package for kernel series $spec (apt-get update?)"
    fi
    # A meta package (linux-image-amd64) depends on the real image package.
    # read the whole record first: `| grep -q` under pipefail fails when grep
    # stops reading before apt-cache has written everything (SIGPIPE)
    local record
    record=$(apt-cache show "$pkg" 2>/dev/null || true)
    if ! grep -q '^Filename:.*linux-image-[0-9]' <<<"$record"; then
      local real
      real=$(apt-cache depends "$pkg" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
      [[ -n $real ]] || die "cannot resolve kernel package '$spec' (apt-get update? see docs/vm.md)"
      pkg=$real
    fi
  fi
  dir=$VM_CACHE/kernels/$pkg
  if [[ ! -f $dir/.complete ]]; then
    mkdir -p "$VM_CACHE/debs" && rm -rf "$dir" && mkdir -p "$dir"
    if [[ -z ${deb:-} ]]; then
      progress "downloading kernel package $pkg (apt-get download)"
      ( cd "$VM_CACHE/debs" && apt-get download -q "$pkg" >/dev/null ) || die "apt-get download $pkg failed"
      deb=$(ls -t "$VM_CACHE/debs/${pkg}_"*.deb | head -1)
    fi
    progress "extracting $(basename "$deb")"
    dpkg-deb -x "$deb" "$dir" || die "dpkg-deb -x $deb failed"
    local kver
    kver=$(ls "$dir/lib/modules" | head -1)
    depmod -b "$dir" "$kver" || die "depmod failed for $kver"
    touch "$dir/.complete"
  fi
  echo "$dir"
}

kernel_version() { ls "$1/lib/modules" | head -1; }
kernel_image() { ls "$1"/boot/vmlinuz-* | head -1; }

# Module names the guests need, loaded in dependency order.
GUEST_MODULES=(virtio_pci virtio_net virtio_console 9pnet_virtio 9p overlay veth vxlan udp_tunnel ip6_udp_tunnel sch_ingress cls_bpf af_packet crc32c_generic)

# Print the ordered .ko list (paths relative to the kernel tree) for GUEST_MODULES.
kernel_module_list() {
  local dir=$1 kver m
  kver=$(kernel_version "$dir")
  for m in "${GUEST_MODULES[@]}"; do
    modprobe -d "$dir" -S "$kver" --show-depends "$m" 2>/dev/null | awk '$1=="insmod" {print $2}'
  done | awk '!seen[$0]++' | sed "s|^$dir/||"
}

# Build (once per kernel) an initramfs with busybox and the modules for a 9p root.
kernel_initramfs() {
  local dir=$1 out=$1/podnet-initrd.img tmp m
  if [[ -f $out && $out -nt $VM_LIB_DIR/initramfs-init ]]; then echo "$out"; return; fi
  need cpio gzip
  [[ -x /bin/busybox ]] || die "busybox-static is not installed (/bin/busybox)"
  tmp=$(mktemp -d)
  mkdir -p "$tmp"/{bin,proc,sys,dev,mods}
  cp /bin/busybox "$tmp/bin/busybox"
  install -m 0755 "$VM_LIB_DIR/initramfs-init" "$tmp/init"
  : > "$tmp/modules.order"
  while read -r m; do
    local base=mods/$(basename "${m%.xz}"); base=${base%.zst}
    case $m in
      *.xz) xz -dc "$dir/$m" > "$tmp/$base" ;;
      *.zst) zstd -qdc "$dir/$m" > "$tmp/$base" ;;
      *) cp "$dir/$m" "$tmp/$base" ;;
    esac
    echo "$base" >> "$tmp/modules.order"
  done < <(GUEST_MODULES=(virtio_pci virtio_net virtio_console 9pnet_virtio 9p overlay); kernel_module_list "$dir")
  ( cd "$tmp" && find . | cpio -o -H newc --quiet | gzip -1 ) > "$out.tmp" && mv "$out.tmp" "$out"
  rm -rf "$tmp"
  echo "$out"
}
