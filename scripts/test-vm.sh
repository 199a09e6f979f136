#!/usr/bin/env bash
# Runs a command as root inside a test VM that has a working /dev/kvm, so
# that the vm level can be tested on hosts whose own /dev/kvm cannot boot
# a guest (these machines' KVM-PVM). QEMU emulates the CPU in software
# (TCG) as `-cpu max`, which includes AMD SVM with nested paging; Debian's
# cloud kernel boots as the test VM and loads kvm_amd.
#
# usage: scripts/test-vm.sh [--share DIR]... -- COMMAND [ARG...]
#
# In the test VM: the freshly built atoll on PATH, the vm assets where
# atoll looks (/usr/local/lib/atoll/vm), each DIR copied in at the same
# path (a file may be given too), cgroup v2, the tun, veth, bridge and
# overlay modules (containerd's overlayfs snapshotter, CNI's bridge) and
# tc's ingress qdisc, u32 filter and mirred action (the vm level's
# network).
# COMMAND's output is printed; the script exits with its status (125 if
# the test VM failed to report one, with the end of its console log).
#
# Environment: ATOLL (the binary; default $CARGO_TARGET_DIR/release/atoll),
# VM_ASSETS (default: built into $CARGO_TARGET_DIR/vm-assets),
# TEST_VM_MEM (MiB, default 3072), TEST_VM_CPUS (default 2),
# TEST_VM_TIMEOUT (seconds, default 1800), TEST_VM_CONSOLE=1 (show the
# test VM's console).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
SHARES=()
while [ $# -gt 0 ]; do
  case "$1" in
    --share) SHARES+=("$(readlink -f "${2:?--share needs a directory}")"); shift 2 ;;
    --) shift; break ;;
    *) echo "test-vm.sh: usage: test-vm.sh [--share DIR]... -- COMMAND [ARG...]" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "test-vm.sh: no command given (usage: test-vm.sh [--share DIR]... -- COMMAND [ARG...])" >&2; exit 2; }
command -v qemu-system-x86_64 >/dev/null || { echo "test-vm.sh: qemu-system-x86_64 is missing (scripts/deps.sh --all installs qemu-system-x86)" >&2; exit 2; }
ATOLL=${ATOLL:-$TARGET/release/atoll}
[ -x "$ATOLL" ] || { echo "test-vm.sh: $ATOLL is not built (cargo build --release -p atoll)" >&2; exit 2; }
ATOLL=$(readlink -f "$ATOLL")
VM_ASSETS=${VM_ASSETS:-$TARGET/vm-assets}
[ -f "$VM_ASSETS/vmlinux" ] && [ -f "$VM_ASSETS/initramfs.cpio" ] || "$ROOT/scripts/vm-assets.sh" "$VM_ASSETS" >&2
KX=$("$ROOT/scripts/vm-kernel.sh" "$TARGET/vm-cache")
KVER=$(basename "$(ls -d "$KX"/lib/modules/*)")
MODDIR=$KX/lib/modules/$KVER/kernel
mod() { find "$MODDIR" -name "$1.ko" | head -n1; }

W=$(mktemp -d "${TMPDIR:-/tmp}/atoll-test-vm.XXXXXX")
trap 'rm -rf "$W"' EXIT

# Stage 1: a small initramfs that mounts the root disk and switches to it
# (the container runtime needs a real root file system: pivot_root does
# not work on the initramfs).
I=$W/initrd
mkdir -p "$I"/{bin,proc,sys,dev,newroot,lib/modules}
cp /bin/busybox "$I/bin/busybox"
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk; do
  cp "$(mod $m)" "$I/lib/modules/"
done
cat > "$I/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk; do
  /bin/busybox insmod /lib/modules/$m.ko
done
i=0; while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do /bin/busybox sleep 0.05; i=$((i+1)); done
/bin/busybox mount -t ext4 /dev/vda /newroot || { echo "test VM: no root disk"; /bin/busybox poweroff -f; }
/bin/busybox umount /proc
/bin/busybox mount --move /dev /newroot/dev
exec /bin/busybox switch_root /newroot /sbin/test-vm-init
INIT
chmod +x "$I/init"
(cd "$I" && find . | busybox cpio -o -H newc -R 0:0 2>/dev/null | gzip -1) > "$W/initrd.gz"

# Stage 2: the root disk.
R=$W/root
mkdir -p "$R"/{bin,sbin,proc,sys,dev,run,tmp,root,etc,lib/modules,usr/local/bin,usr/local/lib/atoll/vm}
cp /bin/busybox "$R/bin/busybox"
for a in $(/bin/busybox --list); do [ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"; done
for m in irqbypass kvm kvm-amd tun veth overlay llc stp bridge sch_ingress cls_u32 act_mirred; do cp "$(mod $m)" "$R/lib/modules/"; done
cp "$ATOLL" "$R/usr/local/bin/atoll"
cp "$VM_ASSETS"/vmlinux "$VM_ASSETS"/initramfs.cpio "$R/usr/local/lib/atoll/vm/"
[ -f "$VM_ASSETS/VERSION" ] && cp "$VM_ASSETS/VERSION" "$R/usr/local/lib/atoll/vm/"
echo "root:x:0:0:root:/root:/bin/sh" > "$R/etc/passwd"
echo "root:x:0:" > "$R/etc/group"
echo "test-vm" > "$R/etc/hostname"
# (containerd's CRI copies both into every pod)
printf '127.0.0.1 localhost\n::1 localhost\n' > "$R/etc/hosts"
: > "$R/etc/resolv.conf"
for s in "${SHARES[@]}"; do
  mkdir -p "$R$(dirname "$s")"
  cp -a "$s" "$R$(dirname "$s")/"
done
# Shared libraries of every dynamically linked program copied in.
{
  echo "$ATOLL"
  for s in "${SHARES[@]}"; do find "$s" -type f -perm -u+x 2>/dev/null; done
} | while read -r f; do
  ldd "$f" 2>/dev/null | grep -o '/[^ )]*' || true
done | sort -u | while read -r l; do
  [ -e "$R$l" ] || { mkdir -p "$R$(dirname "$l")"; cp -L "$l" "$R$l"; }
done
printf '%q ' "$@" > "$R/cmd"
echo >> "$R/cmd"
cat > "$R/sbin/test-vm-init" <<'INIT'
#!/bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
# (a shared directory under /tmp or /run stays visible)
[ -n "$(ls -A /run)" ] || mount -t tmpfs tmpfs /run
[ -n "$(ls -A /tmp)" ] || mount -t tmpfs tmpfs /tmp
echo "+cpu +memory +pids +io" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
# As docs/architecture.md asks of a host that runs the vm level: huge
# pages for shared memory, which guest RAM is (Debian's default: never).
echo within_size > /sys/kernel/mm/transparent_hugepage/shmem_enabled 2>/dev/null
for m in irqbypass kvm kvm-amd tun veth overlay llc stp bridge sch_ingress cls_u32 act_mirred; do insmod /lib/modules/$m.ko 2>/dev/null; done
ip link set lo up
hostname test-vm
stty -F /dev/ttyS1 raw -echo 2>/dev/null
stty -F /dev/ttyS2 raw -echo 2>/dev/null
cd /root
sh /cmd </dev/null >/dev/ttyS1 2>&1
echo "status $?" >/dev/ttyS2
sync
poweroff -f
INIT
chmod +x "$R/sbin/test-vm-init"
SIZE=$(( $(du -sm "$R" | cut -f1) * 5 / 4 + 256 ))
mke2fs -q -t ext4 -O ^has_journal -d "$R" "$W/root.img" "${SIZE}M"
rm -rf "$R"

CONSOLE=$W/console.log
[ "${TEST_VM_CONSOLE:-0}" = 1 ] && CONSOLE=/dev/stderr
set +e
timeout "${TEST_VM_TIMEOUT:-1800}" qemu-system-x86_64 \
  -accel tcg,thread=multi -cpu max -smp "${TEST_VM_CPUS:-2}" -m "${TEST_VM_MEM:-3072}" \
  -nodefaults -no-user-config -display none -no-reboot \
  -kernel "$KX/boot/vmlinuz-$KVER" -initrd "$W/initrd.gz" \
  -append "console=ttyS0 panic=-1 quiet loglevel=3" \
  -drive file="$W/root.img",format=raw,if=virtio,cache=unsafe \
  -serial file:"$CONSOLE" -serial stdio -serial file:"$W/status" \
  </dev/null
QEMU=$?
set -e
if ! grep -q '^status ' "$W/status" 2>/dev/null; then
  echo "test-vm.sh: the test VM reported no status (qemu exit $QEMU); its console ended with:" >&2
  tail -n 20 "$CONSOLE" >&2 2>/dev/null || true
  exit 125
fi
exit "$(tr -d '\r' < "$W/status" | sed -n 's/^status //p' | head -n1)"
