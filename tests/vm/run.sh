#!/usr/bin/env bash
# The vm level's end-to-end tests (`make test` runs them last, `make
# test-vm` alone). They boot guests, so on a host whose /dev/kvm cannot
# (these machines' KVM-PVM) they run inside the QEMU-emulated test VM of
# scripts/test-vm.sh: minutes per run. With ATOLL_VM_DIRECT=1 they run
# on this host itself (one whose /dev/kvm boots guests, assets installed).
#
# usage: tests/vm/run.sh [cri|net]   (ATOLL: the binary; default
#        $CARGO_TARGET_DIR/release/atoll). With `cri`, only the check of
#        containerd's CRI with the atoll-vm handler (tests/vm/cri.sh) runs;
#        with `net`, only the network checks (tests/vm/net.sh).
set -euo pipefail
CHECKS=in-vm
case "${1:-}" in
  "") ;;
  cri) CHECKS=cri ;;
  net) CHECKS=net ;;
  *) echo "tests/vm/run.sh: unknown argument '$1' (usage: tests/vm/run.sh [cri|net])" >&2; exit 2 ;;
esac
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
# Its network namespace is a new one (no path): its guest has loopback
# only, which it records.
bundle exit7 sh -c 'cat /proc/sys/kernel/random/boot_id > /boot_id; ip -o link > /links; echo to-stdout; echo to-stderr >&2; exit 7'
# Runs until signalled; SIGTERM ends it with status 143 (pid 1 of its pid
# namespace gets no default action, so it traps the signal). /boot_id
# appears once the trap is set: a signal before that would be ignored.
bundle long sh -c 'trap "exit 143" TERM; cat /proc/sys/kernel/random/boot_id > /boot_id; while :; do sleep 0.2; done'
# The network checks' container (tests/vm/net.sh): it joins the network
# namespace net.sh makes, records what its guest's eth0 is, serves files
# from a tmpfs, and may ping (CAP_NET_RAW).
bundle net sh -c 'ip -o -4 addr show eth0 > /net.addr; ip -o -6 addr show eth0 scope global > /net.addr6; ip -6 route > /net.route6; cat /sys/class/net/eth0/address > /net.mac; cat /sys/class/net/eth0/mtu > /net.mtu; ip route > /net.route; mkdir -p /dev/shm/www; echo guest-hello > /dev/shm/www/hello; dd if=/dev/urandom of=/dev/shm/www/big bs=65536 count=256 2>/dev/null; httpd -p 8081 -h /dev/shm/www; trap "exit 143" TERM; echo up > /net.ready; while :; do sleep 0.2; done'
python3 - "$W/net/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
for n in c["linux"]["namespaces"]:
    if n["type"] == "network":
        n["path"] = "/run/netns/vme2e-net"
caps = c["process"]["capabilities"]
for k in ("bounding", "effective", "permitted"):
    caps[k] = sorted(set(caps.get(k, [])) | {"CAP_NET_RAW"})
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
# A directory any guest user may write (exec --user checks).
mkdir -p -m 1777 "$W/long/rootfs/shared"
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
# One VM per pod: a sandbox container and members carrying containerd's
# CRI annotations. The sandbox and the first member write their guest's
# boot id and run until signalled; the second member talks on both
# streams, tries a mkdir its own seccomp profile refuses, and exits 9.
# The sandbox carries the pod's memory as containerd's CRI gives it (the
# sum of its containers' limits, 448 MiB) and no limit of its own: its VM
# is sized from it, which it records (/meminfo). The third member has a
# memory limit of its own (32 MiB) and writes 56 MiB to its /dev/shm
# (a 64 MiB tmpfs): its guest cgroup stops it. First it tries to raise
# its own limit and to leave its group through its (read-only) cgroup
# mount.
bundle podsb sh -c 'trap "exit 143" TERM; grep MemTotal /proc/meminfo > /meminfo; cat /proc/sys/kernel/random/boot_id > /boot_id; while :; do sleep 0.2; done'
bundle podm1 sh -c 'trap "exit 143" TERM; cat /proc/sys/kernel/random/boot_id > /boot_id; while :; do sleep 0.2; done'
bundle podm2 sh -c 'echo m2-out; echo m2-err >&2; mkdir /m2dir 2>/dev/null || echo mkdir-refused; exit 9'
bundle podm4 sh -c 'cat /proc/self/cgroup; { echo max > /sys/fs/cgroup/atoll-vme2e-pm4/memory.max && echo raised-own-limit; echo $$ > /sys/fs/cgroup/cgroup.procs && echo left-own-cgroup; } 2>/dev/null; dd if=/dev/zero of=/dev/shm/hog bs=1M count=56 2>/dev/null; echo "dd $?"'
bundle podbad true
bundle podsb2 true
bundle podm3 true
python3 - "$W" <<'PY'
import json, sys
w = sys.argv[1]
def annotate(name, kind, sandbox, profile=None, extra=None, memory=None):
    p = f"{w}/{name}/config.json"
    c = json.load(open(p))
    c["annotations"] = {"io.kubernetes.cri.container-type": kind,
                        "io.kubernetes.cri.sandbox-id": sandbox, **(extra or {})}
    if profile:
        c.setdefault("linux", {})["seccomp"] = profile
    if memory:
        c.setdefault("linux", {}).setdefault("resources", {})["memory"] = {"limit": memory}
    json.dump(c, open(p, "w"), indent=2)
annotate("podsb", "sandbox", "vme2e-pod", extra={"io.kubernetes.cri.sandbox-memory": str(448 << 20)})
annotate("podm4", "container", "vme2e-pod", memory=32 << 20)
annotate("podm1", "container", "vme2e-pod")
annotate("podm2", "container", "vme2e-pod", {
    "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]})
annotate("podbad", "container", "vme2e-nosuchpod")
annotate("podsb2", "sandbox", "vme2e-pod2")
annotate("podm3", "container", "vme2e-pod2")
PY
# The attack battery at the vm level: a subset of tests/attacks (those
# that need no host-side hooks while they run), compiled statically here
# (the test VM has no compiler) and run one after the other by one
# container, as root with Docker's default capabilities; then virtio-fs
# symlink attacks (tests/vm/fs-attacks.sh). Host-specific parameters are
# placeholders in-vm.sh fills in.
ATTACKS="proc_root proc_sys sys_write shocker kernel_module keyctl bpf userns setns dev_mem ptrace_host loopback chroot_escape leaked_fd raw_socket io_uring userfaultfd"
bundle attacks sh /fs-attacks.sh
mkdir -p "$W/attacks/rootfs/attacks"
for a in $ATTACKS; do
  gcc -O2 -Wall -static -pthread -o "$W/attacks/rootfs/attacks/$a" "$ROOT/tests/attacks/$a.c" ||
    { echo "tests/vm/run.sh: compiling tests/attacks/$a.c failed" >&2; exit 2; }
done
cp "$ROOT/tests/vm/fs-attacks.sh" "$W/attacks/rootfs/fs-attacks.sh"
# Links planted in the rootfs before the guest boots: to the test VM's
# secret by absolute and relative path, and to its directory.
ln -s /tmp/atoll-vm-attack/secret "$W/attacks/rootfs/link-abs"
ln -s ../../../../../../tmp/atoll-vm-attack/secret "$W/attacks/rootfs/link-rel"
ln -s /tmp/atoll-vm-attack "$W/attacks/rootfs/link-dir"
python3 - "$W/attacks/config.json" "$ATTACKS" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
p = c["process"]
caps = ["CAP_" + n for n in "CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP".split()]
p["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted")}
p["env"] += [
    "ATTACKS=" + sys.argv[2],
    "ATTACK_MARKER=/tmp/atoll-vm-attack/secret",
    "ATTACK_SECRET=@SECRET@",
    "ATTACK_KEY=atoll-vm-attack-key",
    "ATTACK_ADD_KEY=atoll-vm-attack-added",
    "ATTACK_PID=@PID@",
    "ATTACK_PORT=47123",
    "ATTACK_ABSTRACT=atoll-vm-attack",
    "ATTACK_KMSG_TAG=@KMSG@",
    "ATTACK_DISK=@DISK@",
]
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
# A console socket's receiver for exec with a terminal.
gcc -O2 -Wall -static -o "$W/recvtty" "$ROOT/tests/vm/recvtty.c" ||
  { echo "tests/vm/run.sh: compiling tests/vm/recvtty.c failed" >&2; exit 2; }
# containerd's CRI with the atoll-vm handler (tests/vm/cri.sh): the shim
# tests' binary, run in the test VM for its scenario cri_pod_vm, with the
# shim and atoll it names at their paths here, containerd, ctr and the CNI
# plugins from Debian's packages, and the images it imports (built here:
# the test VM has no compiler for the pause binary).
if [ "$CHECKS" != net ] && command -v containerd >/dev/null && command -v ctr >/dev/null && [ -x /usr/lib/cni/bridge ]; then
  mkdir -p "$W/cri/testkit"
  CRI_TEST=$(cd "$ROOT" && ${CARGO:-cargo} test --release -p atoll-shim --test ecosystem_cri --no-run --message-format=json |
    python3 -c 'import json, sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "ecosystem_cri" and m.get("executable"):
        print(m["executable"])')
  [ -x "$CRI_TEST" ] || { echo "tests/vm/run.sh: building the CRI test binary failed" >&2; exit 2; }
  cp "$CRI_TEST" "$W/cri/ecosystem_cri"
  for a in $(cd "$ROOT" && ${CARGO:-cargo} run -q --release -p atoll-testkit --example cri-images); do
    cp "$a" "$W/cri/testkit/"
  done
  SHARES+=(--share "$TARGET/release/containerd-shim-atoll-v2" --share "$TARGET/release/atoll")
  for f in "$(command -v containerd)" "$(command -v ctr)" /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/loopback; do
    SHARES+=(--share "$f")
  done
else
  echo "tests/vm/run.sh: containerd, ctr or /usr/lib/cni/bridge missing (scripts/deps.sh --all): the CRI check is skipped" >&2
fi
cp "$ROOT/tests/vm/cri.sh" "$W/cri.sh"
cp "$ROOT/tests/vm/net.sh" "$W/net.sh"
cp "$ROOT/tests/vm/in-vm.sh" "$W/in-vm.sh"
if [ "${ATOLL_VM_DIRECT:-0}" = 1 ]; then
  PATH=$(dirname "$(readlink -f "$ATOLL")"):$PATH sh "$W/$CHECKS.sh" "$W"
else
  ATOLL=$ATOLL "$ROOT/scripts/test-vm.sh" "${SHARES[@]}" -- sh "$W/$CHECKS.sh" "$W"
fi
