#!/usr/bin/env bash
# `make bench-vm`: the vm level's figures, measured inside the test VM of
# scripts/test-vm.sh (QEMU software emulation with nested SVM: absolute
# times are 10-30x those of hardware KVM; read the ratio to QEMU and the
# counts). Minutes of emulation per run; `make bench` runs it as its vm
# section (bench/run.sh), `make bench-vm` alone.
#
#   boot to first output   `atoll --isolation vm run` of a busybox `echo`
#                          until its first line, and to its exit
#   exec round trip        `atoll exec ID true` into a running guest
#   VMM memory overhead    the VMM's resident memory beyond guest RAM
#                          (/proc/PID/smaps of the container's init)
#   VM exits               exits to the VMM (atoll-vmm --stats): a boot,
#                          a boot running a syscall-heavy workload
#   QEMU -M microvm        QEMU/KVM booting the same kernel (the vmlinux
#                          through its PVH entry) and initramfs to /init
#                          (the agent's first console line), against atoll
#                          run's first output: the ratio; and to exit,
#                          against atoll-vmm's self-test boot
#
# usage: bench/vm.sh   (ATOLL, ATOLL_VMM: the binaries; VM_BENCH_ROUNDS,
#        default 3; VM_BENCH_RESULTS: a file for the figures as `KEY VALUE`
#        lines, which bench/run.sh's vm section renders into
#        docs/benchmarks.md)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
ATOLL=${ATOLL:-$TARGET/release/atoll}
ATOLL_VMM=${ATOLL_VMM:-$TARGET/release/atoll-vmm}
for b in "$ATOLL" "$ATOLL_VMM"; do
  [ -x "$b" ] || { echo "bench/vm.sh: $b is not built (cargo build --release -p atoll -p atoll-vmm)" >&2; exit 2; }
done
W=$(mktemp -d "${TMPDIR:-/tmp}/atoll-vm-bench.XXXXXX")
trap 'rm -rf "$W"' EXIT
bundle() { # NAME ARGS...
  local name=$1; shift
  "$ROOT/scripts/default-bundle.sh" "$ATOLL" "$W/$name" "$@" >/dev/null
  sed -i 's/"readonly": true/"readonly": false/' "$W/$name/config.json"
}
bundle first sh -c 'echo first'
bundle long sh -c 'while :; do sleep 1; done'
mkdir -p "$W/tools"
cp "$ATOLL_VMM" "$W/tools/atoll-vmm"
KX=$("$ROOT/scripts/vm-kernel.sh" "$TARGET/vm-cache")
cp "$KX"/boot/vmlinuz-* "$W/tools/bzImage"
if command -v qemu-system-x86_64 >/dev/null; then
  cp "$(command -v qemu-system-x86_64)" "$W/tools/"
  cp -r /usr/share/qemu "$W/tools/qemu-share"
fi
cp "$ROOT/bench/vm-in.sh" "$W/vm-in.sh"
echo "bench/vm.sh: host load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
set +e
ATOLL=$ATOLL ROUNDS=${VM_BENCH_ROUNDS:-3} "$ROOT/scripts/test-vm.sh" --share "$W" -- sh "$W/vm-in.sh" "$W" "${VM_BENCH_ROUNDS:-3}" |
  tr -d '\r' | tee "$W/out" | grep -v '^vm-result '
st=${PIPESTATUS[0]}
set -e
[ -z "${VM_BENCH_RESULTS:-}" ] || sed -n 's/^vm-result //p' "$W/out" > "$VM_BENCH_RESULTS"
echo "bench/vm.sh: host load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
exit "$st"
