#!/usr/bin/env bash
# `make test-vm`: the vm level's end-to-end tests. They boot guests, so on
# a host whose /dev/kvm cannot (these machines' KVM-PVM) they run inside
# the QEMU-emulated test VM of scripts/test-vm.sh: minutes per run, which
# is why they are not part of `make test`. With ATOLL_VM_DIRECT=1 they run
# on this host itself (one whose /dev/kvm boots guests, assets installed).
#
# usage: tests/vm/run.sh   (ATOLL: the binary; default
#        $CARGO_TARGET_DIR/release/atoll)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
ATOLL=${ATOLL:-$TARGET/release/atoll}
[ -x "$ATOLL" ] || { echo "tests/vm/run.sh: $ATOLL is not built (cargo build --release -p atoll)" >&2; exit 2; }
W=$(mktemp -d "${TMPDIR:-/tmp}/atoll-vm-e2e.XXXXXX")
trap 'rm -rf "$W"' EXIT
bundle() { # NAME ARGS...: a busybox bundle running ARGS, root writable
  local name=$1; shift
  "$ROOT/scripts/default-bundle.sh" "$ATOLL" "$W/$name" "$@" >/dev/null
  sed -i 's/"readonly": true/"readonly": false/' "$W/$name/config.json"
}
# Writes its guest's boot id into its rootfs, talks on both streams, and
# exits 7.
bundle exit7 sh -c 'cat /proc/sys/kernel/random/boot_id > /boot_id; echo to-stdout; echo to-stderr >&2; exit 7'
# Runs until signalled; SIGTERM ends it with status 143 (pid 1 of its pid
# namespace gets no default action, so it traps the signal). /boot_id
# appears once the trap is set: a signal before that would be ignored.
bundle long sh -c 'trap "exit 143" TERM; cat /proc/sys/kernel/random/boot_id > /boot_id; while :; do sleep 0.2; done'
# `atoll spec`'s read-only root: a write fails and lands nowhere.
"$ROOT/scripts/default-bundle.sh" "$ATOLL" "$W/readonly" sh -c 'echo x > /written' >/dev/null
# A memory limit too small to boot a guest beside the VMM.
bundle small true
python3 - "$W/small/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c.setdefault("linux", {}).setdefault("resources", {})["memory"] = {"limit": 96 << 20}
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
# python3 from a Debian rootfs (the testkit's cached one, or DEBIAN_ROOTFS;
# the check is skipped without one): the bundle's root.path names it
# where it is, read-only, and it is shared into the test VM at that path.
SHARES=(--share "$W")
DEB=${DEBIAN_ROOTFS:-$TARGET/testkit/debian-rootfs}
if [ -x "$DEB/usr/bin/python3" ]; then
  DEB=$(readlink -f "$DEB")
  bundle python python3 -c 'import sys; print(open("/proc/sys/kernel/random/boot_id").read().strip(), sys.version.split()[0]); sys.exit(3)'
  python3 - "$W/python/config.json" "$DEB" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["root"] = {"path": sys.argv[2], "readonly": True}
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
  rm -rf "$W/python/rootfs"
  SHARES+=(--share "$DEB")
else
  echo "tests/vm/run.sh: no Debian rootfs at $DEB (DEBIAN_ROOTFS=DIR names one): the python3 check is skipped" >&2
fi
cp "$ROOT/tests/vm/in-vm.sh" "$W/in-vm.sh"
if [ "${ATOLL_VM_DIRECT:-0}" = 1 ]; then
  PATH=$(dirname "$(readlink -f "$ATOLL")"):$PATH sh "$W/in-vm.sh" "$W"
else
  ATOLL=$ATOLL "$ROOT/scripts/test-vm.sh" "${SHARES[@]}" -- sh "$W/in-vm.sh" "$W"
fi
