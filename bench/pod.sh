#!/usr/bin/env bash
# One pod (a pause-like sandbox container and two busybox containers that
# join it through the CRI annotations) created the way containerd's shim
# drives a runtime, side by side: atoll's userspace level (one kernel per
# pod) and gVisor's runsc (one Sentry per pod). Prints, per runtime, the
# time from the sandbox's create to both containers running, the host
# processes the pod needs and their summed PSS once idle.
#
# usage: bench/pod.sh   (ATOLL=path to atoll, RUNSC_PEER=path to runsc)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
ATOLL=${ATOLL:-$REPO/target/release/atoll}
# `make bench` passes a path relative to the repository; the bundles are
# made in their own directories.
[[ $ATOLL == /* ]] || ATOLL=$REPO/$ATOLL
RUNSC=${RUNSC_PEER:-$REPO/../shared/peers/runsc}
WORK=$(mktemp -d /tmp/atoll-bench-pod.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
BUSYBOX=$(command -v busybox)

rootfs() { # DIR: a busybox rootfs
  mkdir -p "$1/bin" "$1/proc" "$1/dev" "$1/sys" "$1/tmp"
  cp "$BUSYBOX" "$1/bin/busybox"
  for t in sh sleep cat; do ln -sf busybox "$1/bin/$t"; done
}

bundle() { # DIR TYPE SANDBOX-ID ARGS...
  local dir=$1 type=$2 sid=$3; shift 3
  mkdir -p "$dir"
  rootfs "$dir/rootfs"
  (cd "$dir" && "$ATOLL" spec >/dev/null 2>&1 || "$ATOLL" spec)
  python3 "$REPO/bench/mkbundle.py" "$dir/config.json" "$@"
  python3 - "$dir/config.json" "$type" "$sid" <<'PY'
import json, sys
p, t, sid = sys.argv[1:]
c = json.load(open(p))
c.setdefault("annotations", {}).update({
    "io.kubernetes.cri.container-type": t,
    "io.kubernetes.cri.sandbox-id": sid})
json.dump(c, open(p, "w"), indent=1)
PY
}

pss_of() { # EXE: summed PSS (KiB) and count of processes running EXE
  python3 - "$1" <<'PY'
import os, sys
exe = os.path.realpath(sys.argv[1]); total = n = 0
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        if os.path.realpath(f"/proc/{pid}/exe") != exe: continue
        for l in open(f"/proc/{pid}/smaps_rollup"):
            if l.startswith("Pss:"): total += int(l.split()[1]); n += 1
    except OSError: pass
print(total, n)
PY
}

measure() { # NAME RUNTIME-CMD...
  local name=$1; shift
  local sid="pod-$name" t0 t1 before after
  read -r before _ < <(pss_of "$1")
  t0=$(date +%s%N)
  "$@" create --bundle "$WORK/sb" "$sid" </dev/null >/dev/null 2>&1
  "$@" start "$sid"
  for c in c1 c2; do
    sed -i "s/\"io.kubernetes.cri.sandbox-id\": \"[^\"]*\"/\"io.kubernetes.cri.sandbox-id\": \"$sid\"/" "$WORK/$c/config.json"
    "$@" create --bundle "$WORK/$c" "$name-$c" </dev/null >/dev/null 2>&1
    "$@" start "$name-$c"
  done
  until "$@" state "$name-c1" | grep -q '"running"' && "$@" state "$name-c2" | grep -q '"running"'; do sleep 0.01; done
  t1=$(date +%s%N)
  sleep 3
  read -r after n < <(pss_of "$1")
  printf '| %s | %d | %d | %.1f |\n' "$name" $(((t1 - t0) / 1000000)) "$n" "$(echo "($after - $before) / 1024" | bc -l)"
  for c in c1 c2; do "$@" delete --force "$name-$c" >/dev/null 2>&1 || true; done
  "$@" delete --force "$sid" >/dev/null 2>&1 || true
}

bundle "$WORK/sb" sandbox pod -- /bin/sleep 100000
bundle "$WORK/c1" container pod -- /bin/sleep 100000
bundle "$WORK/c2" container pod -- /bin/sh -c 'while :; do sleep 1000; done'

echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| runtime | create → both running (ms) | host processes | PSS (MiB) |"
echo "|---|---:|---:|---:|"
measure atoll-userspace "$ATOLL" --root "$WORK/state-atoll" --isolation userspace
if [ -x "$RUNSC" ]; then
  measure runsc-systrap "$RUNSC" --root "$WORK/state-runsc" --platform=systrap --network=none
else
  echo "runsc: not measured (no runsc at $RUNSC)"
fi
