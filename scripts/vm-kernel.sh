#!/usr/bin/env bash
# Fetches Debian's cloud kernel package (the one linux-image-cloud-amd64
# depends on) and unpacks it, never installing it on this host.
# usage: scripts/vm-kernel.sh CACHEDIR   → prints the unpacked directory
# Also extracts the uncompressed vmlinux from the bzImage as
# DIR/vmlinux (the vm level boots it straight into 64-bit mode).
set -euo pipefail
CACHE=${1:?usage: vm-kernel.sh CACHEDIR}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)

pkg() { apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}'; }
PKG=$(pkg)
if [ -z "$PKG" ]; then
  apt-get update -qq >&2
  PKG=$(pkg)
fi
[ -n "$PKG" ] || { echo "vm-kernel.sh: no linux-image-cloud-amd64 in the package lists" >&2; exit 1; }
DIR=$CACHE/$PKG
if [ ! -f "$DIR/vmlinux" ]; then
  DEB=$(ls "$CACHE"/"${PKG}"_*.deb 2>/dev/null | head -n1 || true)
  if [ -z "$DEB" ]; then
    (cd "$CACHE" && apt-get download "$PKG" >&2 2>/dev/null) || (cd "$CACHE" && apt-get download "$PKG" >&2)
    DEB=$(ls "$CACHE"/"${PKG}"_*.deb | head -n1)
  fi
  rm -rf "$DIR.tmp"
  dpkg -x "$DEB" "$DIR.tmp"
  BZ=$(ls "$DIR.tmp"/boot/vmlinuz-* | head -n1)
  # The bzImage's setup header says where the compressed payload is
  # (payload_offset/payload_length at 0x248); its magic says how.
  perl -e '
    open(F, "<:raw", $ARGV[0]) or die; local $/; my $d = <F>;
    my $setup = (unpack("C", substr($d, 0x1f1, 1)) || 4) + 1; $setup *= 512;
    my ($off, $len) = unpack("VV", substr($d, 0x248, 8));
    print substr($d, $setup + $off, $len);' "$BZ" > "$DIR.tmp/payload"
  MAGIC=$(od -An -tx1 -N6 "$DIR.tmp/payload" | tr -d ' \n')
  case "$MAGIC" in
    02214c18*) lz4 -dc "$DIR.tmp/payload" > "$DIR.tmp/vmlinux" 2>/dev/null || true ;;
    fd377a585a00) xz -dc "$DIR.tmp/payload" > "$DIR.tmp/vmlinux" 2>/dev/null || true ;;
    1f8b*) gzip -dc "$DIR.tmp/payload" > "$DIR.tmp/vmlinux" 2>/dev/null || true ;;
    28b52ffd*) zstd -dc "$DIR.tmp/payload" > "$DIR.tmp/vmlinux" 2>/dev/null || true ;;
    *) echo "vm-kernel.sh: unknown kernel compression ($MAGIC)" >&2; exit 1 ;;
  esac
  rm -f "$DIR.tmp/payload"
  head -c 4 "$DIR.tmp/vmlinux" | od -An -c | grep -q 'E   L   F' \
    || { echo "vm-kernel.sh: could not extract vmlinux from $BZ" >&2; exit 1; }
  rm -rf "$DIR"
  mv "$DIR.tmp" "$DIR"
fi
echo "$DIR"
