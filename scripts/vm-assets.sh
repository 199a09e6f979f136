#!/usr/bin/env bash
# Builds the vm level's guest assets from Debian's packages and atoll's
# own agent, on a fresh machine:
#   OUTDIR/vmlinux          Debian's cloud kernel, uncompressed (64-bit entry)
#   OUTDIR/initramfs.cpio   atoll's guest agent as /init, and the virtio,
#                           vsock, fuse/virtiofs and net modules it loads
#   OUTDIR/VERSION          what they were built from
# `atoll install --vm-assets OUTDIR` puts them where atoll looks.
# usage: scripts/vm-assets.sh OUTDIR
set -euo pipefail
OUT=${1:?usage: vm-assets.sh OUTDIR}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
CARGO=${CARGO:-cargo}
KX=$("$ROOT/scripts/vm-kernel.sh" "$TARGET/vm-cache")
KVER=$(basename "$(ls -d "$KX"/lib/modules/*)")

# The agent: a static glibc binary (the only Rust target installed here is
# x86_64-unknown-linux-gnu; +crt-static links glibc in).
RUSTFLAGS="-C target-feature=+crt-static" "$CARGO" build --release -q -p atoll-agent \
  --target x86_64-unknown-linux-gnu --manifest-path "$ROOT/Cargo.toml"
AGENT=$TARGET/x86_64-unknown-linux-gnu/release/atoll-agent
file -L "$AGENT" 2>/dev/null | grep -q 'static' || ldd "$AGENT" 2>&1 | grep -q 'not a dynamic' \
  || { echo "vm-assets.sh: $AGENT is not static" >&2; exit 1; }

# Modules in load order (dependencies first, from `modinfo -F depends`):
# those the agent loads at boot, and those it loads when a container
# brings a network (a guest without one does without: each costs tens of
# milliseconds of a boot under nested emulation).
BOOT_MODULES="virtio_ring virtio virtio_mmio vsock vmw_vsock_virtio_transport_common \
vmw_vsock_virtio_transport fuse virtiofs"
NET_MODULES="failover net_failover virtio_net"
MODULES="$BOOT_MODULES $NET_MODULES"

D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
mkdir -p "$D"/{proc,sys,dev,run,tmp,lib/modules}
cp "$AGENT" "$D/init"
strip "$D/init" 2>/dev/null || true
for m in $MODULES; do
  f=$(find "$KX/lib/modules/$KVER/kernel" -name "$m.ko" | head -n1)
  [ -n "$f" ] || { echo "vm-assets.sh: module $m missing from $KVER" >&2; exit 1; }
  cp "$f" "$D/lib/modules/"
done
echo $BOOT_MODULES > "$D/lib/modules/load"
echo $NET_MODULES > "$D/lib/modules/load-net"

mkdir -p "$OUT"
(cd "$D" && find . | sort | busybox cpio -o -H newc -R 0:0 2>/dev/null) > "$OUT/initramfs.cpio.tmp"
mv "$OUT/initramfs.cpio.tmp" "$OUT/initramfs.cpio"
# The kernel's zero pages (its .bss and scratch space, the padding
# between segments: a third of it) become holes, which the VMM's loader
# skips rather than copies (guest RAM is zero already).
cp "$KX/vmlinux" "$OUT/vmlinux.tmp"
fallocate --dig-holes "$OUT/vmlinux.tmp" 2>/dev/null || true
mv "$OUT/vmlinux.tmp" "$OUT/vmlinux"
{
  echo "kernel $(basename "$KX") $KVER"
  echo "agent $(sha256sum "$D/init" | cut -c1-16)"
} > "$OUT/VERSION"
echo "vm assets in $OUT: $(du -sh "$OUT/vmlinux" | cut -f1) vmlinux, $(du -sh "$OUT/initramfs.cpio" | cut -f1) initramfs ($KVER)"
