#!/usr/bin/env bash
# Benchmark harness: atoll's isolation levels and userspace platforms side
# by side with gVisor's runsc (both of its platforms that work here), runc
# (Debian's package) and youki (built from crates.io), in one run; results
# and charts written into docs/benchmarks.md and docs/bench/*.svg.
#
# usage: bench/run.sh [--quick] [BENCHMARK...]
#   --quick     fewer warm-up runs and samples (a smoke run, not for the docs
#               of record; the sections say when it was a quick run)
#   BENCHMARK   only these benchmarks (default: all of them): lifecycle
#               syscall ceiling idle python files pipe nginx netstack
#               runtimes vm
#
# Environment: ATOLL (default target/release/atoll), RUNC (default: runc on
# PATH), YOUKI (default: youki 0.7.0, built from crates.io into
# target/youki-0.7.0 on first use by the lifecycle benchmark: the
# release on the same libcontainer 0.7 line atoll is built on, with the
# features atoll's libcontainer has: cgroup v1 and v2, seccomp),
# RUNSC_PEER (default ../shared/peers/runsc beside the repository: gVisor's
# runsc; its columns are left out, and each section says so, when it is
# missing), BENCH_OUT (raw results and logs, default target/bench),
# DEBIAN_ROOTFS (default: the tests' cached Debian rootfs, built through
# `cargo run -p atoll-testkit --example debian-rootfs` when missing),
# DEBIAN_RUNTIMES (the same for its variant with Go, Java and Node:
# `... --example debian-rootfs runtimes`).
# The charts' matplotlib is installed on first use into a virtualenv under
# the target directory (target/bench-venv, from bench/requirements.txt).
#
# Adding a benchmark: write a function bench_NAME that measures into
# "$OUT/NAME*" (run_rounds runs a bundle at every level, in rounds) and
# renders a section with `report hyperfine DOC NAME` (whole commands, timed
# by hyperfine) or `report compare DOC NAME` (samples printed by
# bench/progs/workload at each level; "${REPORT_LEVELS[@]}" from
# report_levels gives the runtimes and ratios), then add NAME to
# ALL_BENCHMARKS.
set -euo pipefail

SELF=$(realpath "${BASH_SOURCE[0]}")
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

ALL_BENCHMARKS=(lifecycle syscall ceiling idle python files pipe nginx netstack runtimes vm)

QUICK=0
SELECTED=()
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,32p' "$SELF" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "bench/run.sh: unknown option $arg" >&2; exit 2 ;;
    *)
      if [[ " ${ALL_BENCHMARKS[*]} " != *" $arg "* ]]; then
        echo "bench/run.sh: unknown benchmark $arg (have: ${ALL_BENCHMARKS[*]})" >&2; exit 2
      fi
      SELECTED+=("$arg") ;;
  esac
done
[ ${#SELECTED[@]} -gt 0 ] || SELECTED=("${ALL_BENCHMARKS[@]}")

# hyperfine runs; rounds (one sample per measure and level each) and seconds
# per time-bounded sample of the in-container micro-benchmarks; rounds of
# the tar and find runs; python3 starts and the rounds they are spread
# over; wrk rounds and seconds.
# The lifecycle benchmark runs its hyperfine in LIFECYCLE_ROUNDS rounds
# (RUNS in all), so that a burst of other work on the shared machine does not
# fall on one runtime's runs only.
if [ "$QUICK" = 1 ]; then
  WARMUP=2; RUNS=6; LIFECYCLE_ROUNDS=2
  SAMPLES=2; SECS=0.3; TREE_ROUNDS=1; SPAWNS=6; PY_ROUNDS=2; WRK_RUNS=1; WRK_SECS=2
  IDLE_ROUNDS=1
else
  WARMUP=3; RUNS=40; LIFECYCLE_ROUNDS=5
  SAMPLES=5; SECS=1; TREE_ROUNDS=3; SPAWNS=20; PY_ROUNDS=4; WRK_RUNS=3; WRK_SECS=5
  IDLE_ROUNDS=3
fi
# Idle containers started one after another per runtime and round (the
# idle benchmark), and the seconds each is left to settle.
IDLE_CONTAINERS=4
IDLE_SETTLE=2
# The thread counts of the ceiling benchmark.
CEILING_THREADS=1,2,8
# A benchmark container that has not finished after this long has hung.
LIMIT=300

DOC=$REPO/docs/benchmarks.md
CHARTS=$REPO/docs/bench
OUT=${BENCH_OUT:-$REPO/target/bench}
LOGS=$OUT/logs
PROGS=$OUT/progs
REL_OUT=${OUT#"$REPO"/}
TARGET=${CARGO_TARGET_DIR:-$REPO/target}

./scripts/deps.sh

ATOLL=$(realpath "${ATOLL:-$REPO/target/release/atoll}")
RUNC=$(command -v "${RUNC:-runc}")
if [ ! -x "$ATOLL" ]; then
  echo "bench/run.sh: $ATOLL is missing: run 'make build' (or 'make bench')" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "bench/run.sh: needs root (every runtime runs rootful containers)" >&2
  exit 1
fi

# gVisor's runsc, a peer for comparison only (../shared/peers/README.md).
RUNSC_WANT=${RUNSC_PEER:-$REPO/../shared/peers/runsc}
RUNSC=
if [ -x "$RUNSC_WANT" ]; then
  RUNSC=$(realpath "$RUNSC_WANT")
fi

# The runtimes of the in-container sections, in the order of their columns:
# atoll native, atoll's userspace level on each platform, runsc on each.
LEVELS=(native systrap ptrace)
[ -z "$RUNSC" ] || LEVELS+=(runsc-systrap runsc-ptrace)

level_label() {
  case "$1" in
    native) echo "atoll native" ;;
    systrap|ptrace) echo "atoll $1" ;;
    systrap-overlay) echo "atoll systrap overlay" ;;
    systrap-sandbox) echo "atoll systrap sandbox" ;;
    systrap-host) echo "atoll systrap host" ;;
    runsc-*) echo "runsc ${1#runsc-}" ;;
  esac
}

# The charts' Python: a virtualenv under the target directory with the
# pinned matplotlib, made on first use (PyPI through pip; Debian's python3
# needs its venv package for that, installed here when missing).
VENV=$TARGET/bench-venv
setup_venv() {
  if "$VENV/bin/python3" -c 'import matplotlib' 2>/dev/null &&
     cmp -s "$REPO/bench/requirements.txt" "$VENV/requirements.txt"; then
    return 0
  fi
  echo "setting up $VENV (matplotlib for the charts, from PyPI)..." >&2
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    rm -rf "$VENV"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REPO/bench/requirements.txt"
  cp "$REPO/bench/requirements.txt" "$VENV/requirements.txt"
}
setup_venv

# On the host's disk (not a tmpfs): the files benchmark writes into a
# bundle's rootfs under it.
WORK=$(mktemp -d /tmp/atoll-bench.XXXXXX)
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$OUT" "$LOGS" "$PROGS" "$CHARTS"

# Container ids in a state root, from `list --quiet` (youki 0.7 prints its
# table anyway: its header is dropped and the first column kept).
list_ids() {
  { "$1" --root "$2" list --quiet 2>/dev/null || true; } |
    awk 'NR == 1 && $1 == "ID" && $2 == "PID" { next } { print $1 }'
}

# Force-deletes whatever a failed run left in a state root, then removes the
# temp dir. Runs on every exit.
cleanup() {
  local root id rt
  for root in "$WORK"/state-*; do
    [ -d "$root" ] || continue
    case "$root" in
      "$WORK"/state-atoll*) rt=$ATOLL ;;
      "$WORK"/state-runc*) rt=$RUNC ;;
      "$WORK"/state-youki*) rt=${YOUKI:-} ;;
      "$WORK"/state-runsc*) rt=$RUNSC ;;
      *) continue ;;
    esac
    [ -n "$rt" ] || continue
    for id in $(list_ids "$rt" "$root"); do
      "$rt" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
    done
  done
  # The netstack benchmark's namespaces (their veth goes with them).
  ip netns del "atoll-bench-ns-$$" 2>/dev/null || true
  ip netns del "atoll-bench-peer-$$" 2>/dev/null || true
  # tmpfs mounts (state roots, the tree benchmark's files), once their
  # containers are gone.
  local m
  for m in $(findmnt -rn -o TARGET | grep "^$WORK/" | sort -r); do
    umount "$m" || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

# (No __pycache__ next to bench/report.py and bench/charts.py.)
report() { PYTHONDONTWRITEBYTECODE=1 "$VENV/bin/python3" "$REPO/bench/report.py" "$@"; }

# Fails unless a state root holds no container: every measured command must
# clean up after itself, or it would be doing less work than it claims.
assert_empty_root() {
  local runtime=$1 root=$2 left
  left=$(list_ids "$runtime" "$root")
  if [ -n "$left" ]; then
    echo "bench/run.sh: $runtime left containers in $root: $left" >&2
    exit 1
  fi
}

# The load average when the current section started (set by the main loop).
SECTION_LOAD=
load_note() {
  echo "Load average (1, 5, 15 min): $SECTION_LOAD at the start of this section, $(cut -d' ' -f1-3 /proc/loadavg) at its end (other work on this shared machine competes with every measurement; compare within a run)."
}

# One line in every section with runsc columns when runsc is missing.
PEER_ARGS=()
[ -n "$RUNSC" ] ||
  PEER_ARGS=(--note "runsc columns: not measured, no gVisor runsc at $RUNSC_WANT (set RUNSC_PEER=).")

run_note() {
  local n="$RUNS runs each, in $LIFECYCLE_ROUNDS rounds after $WARMUP warm-up runs each per round, $(date -u '+%Y-%m-%d %H:%M UTC')"
  [ "$QUICK" = 0 ] || n="$n, **--quick run: indicative only**"
  echo "$n."
}

# Like run_note, for the sampled benchmarks: "$1, date[, quick]."
sample_note() {
  local n="$1, $(date -u '+%Y-%m-%d %H:%M UTC')"
  [ "$QUICK" = 0 ] || n="$n, **--quick run: indicative only**"
  echo "$n."
}

# The --level, --ratio-to and --subject arguments of `report compare` for
# benchmark NAME: every level's samples file, ratios to atoll native and
# (atoll's userspace columns) to runsc systrap. Extra files per level
# (NAME2...) are read as the same level's further samples.
REPORT_LEVELS=()
report_levels() {
  local level files n
  REPORT_LEVELS=()
  for level in "${LEVELS[@]}"; do
    files=
    for n in "$@"; do files="$files,$OUT/$n-$level.txt"; done
    REPORT_LEVELS+=(--level "$(level_label "$level")=${files#,}")
  done
  REPORT_LEVELS+=(--ratio-to "atoll native" --subject "atoll systrap" --subject "atoll ptrace")
  [ -z "$RUNSC" ] || REPORT_LEVELS+=(--ratio-to "runsc systrap")
}

# The C programs of bench/progs, static (they run in any rootfs), compiled
# once per run (a second each).
PROGS_BUILT=0
build_progs() {
  [ "$PROGS_BUILT" = 0 ] || return 0
  local p
  for p in workload ptrace-floor with-id bulk; do
    gcc -O2 -Wall -static -pthread -o "$PROGS/$p" "$REPO/bench/progs/$p.c"
  done
  PROGS_BUILT=1
}

# A fresh config.json from `atoll spec` in bundle DIR, edited by
# bench/mkbundle.py with the remaining arguments.
make_config() {
  local dir=$1; shift
  mkdir -p "$dir"
  rm -f "$dir/config.json"
  "$ATOLL" spec --bundle "$dir"
  python3 "$REPO/bench/mkbundle.py" "$dir/config.json" "$@"
}

# The busybox bundle of the micro-benchmarks, with the workload at
# /bench/workload and a data directory /bench/data in its rootfs (a
# directory of the host: the userspace level reaches it through the gofer).
micro_bundle() {
  local bundle=$WORK/bundle-micro
  if [ ! -x "$bundle/rootfs/bench/workload" ]; then
    ./scripts/default-bundle.sh "$ATOLL" "$bundle" /bin/true >/dev/null
    mkdir -p "$bundle/rootfs/bench/data"
    cp "$PROGS/workload" "$bundle/rootfs/bench/workload"
  fi
  echo "$bundle"
}

# The tests' Debian bookworm rootfs (python3, nginx-light), used in place
# and read-only, as the tests do.
DEBIAN=
debian_rootfs() {
  if [ -z "$DEBIAN" ]; then
    local want=${DEBIAN_ROOTFS:-$TARGET/testkit/debian-rootfs}
    if [ -e "$want/.complete" ]; then
      DEBIAN=$(realpath "$want")
    elif [ -n "${DEBIAN_ROOTFS:-}" ]; then
      echo "bench/run.sh: $DEBIAN_ROOTFS is not a complete rootfs (no .complete)" >&2
      exit 1
    else
      echo "building the tests' Debian rootfs (debootstrap, a few minutes)..." >&2
      DEBIAN=$(cargo run --release -q -p atoll-testkit --example debian-rootfs | tail -1)
    fi
  fi
}

# The variant of the tests' Debian rootfs with the Go toolchain, a JDK and
# Node.js (crates/testkit/src/debian.rs, RUNTIME_PACKAGES).
DEBIAN_RT=
debian_runtimes_rootfs() {
  if [ -z "$DEBIAN_RT" ]; then
    local want=${DEBIAN_RUNTIMES:-$TARGET/testkit/debian-runtimes}
    if [ -e "$want/.complete" ]; then
      DEBIAN_RT=$(realpath "$want")
    elif [ -n "${DEBIAN_RUNTIMES:-}" ]; then
      echo "bench/run.sh: $DEBIAN_RUNTIMES is not a complete rootfs (no .complete)" >&2
      exit 1
    else
      echo "building the Debian runtimes rootfs (debootstrap, several minutes)..." >&2
      DEBIAN_RT=$(cargo run --release -q -p atoll-testkit --example debian-rootfs runtimes | tail -1)
    fi
  fi
}

DEBIAN_ENV=(--env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env HOME=/root)

# One line for a FAILED record: reason and the end of the container's stderr.
failure_line() {
  local level=$1 name=$2 why=$3 stderr=$4 tail_
  tail_=$(tail -c 400 "$stderr" 2>/dev/null | tr '\n`' '  ')
  echo "FAILED $why; stderr: \`${tail_:-(empty)}\`; logs: $REL_OUT/logs/$name-$level.*"
}

# The runtime binary and state root of LEVEL for benchmark NAME.
level_runtime() { case "$1" in runsc-*) echo "$RUNSC" ;; *) echo "$ATOLL" ;; esac; }
level_root() { case "$1" in runsc-*) echo "$WORK/state-runsc-$2" ;; *) echo "$WORK/state-atoll-$2" ;; esac; }

# The command line that runs (foreground, deleting on exit) or, with
# `create`, creates a container of BUNDLE named ID at LEVEL. runsc gets its
# platform and no network (`--network=none`) unless NET says otherwise
# (NET host also puts atoll's userspace level on host sockets);
# atoll's userspace level writes its sandbox log next to the others.
LEVEL_CMD=()
level_cmd() {
  local level=$1 verb=$2 bundle=$3 id=$4 log=$5 net=${6:-none}
  local root
  root=$(level_root "$level" "${log##*/}")
  case "$level" in
    native)
      LEVEL_CMD=("$ATOLL" --root "$root" --log "$log.log" --isolation native "$verb" --bundle "$bundle" "$id") ;;
    systrap|ptrace)
      # NET host: the userspace level on host sockets (its default is
      # its own stack, whose loopback a client on the host cannot reach).
      local atoll_net=()
      [ "$net" != host ] || atoll_net=(--network host)
      LEVEL_CMD=("$ATOLL" --root "$root" --log "$log.log" --isolation userspace --platform "$level"
                 "${atoll_net[@]}"
                 "$verb" --sandbox-log "$log.sandbox.log" --bundle "$bundle" "$id") ;;
    systrap-overlay)
      LEVEL_CMD=("$ATOLL" --root "$root" --log "$log.log" --isolation userspace --platform systrap
                 --overlay root:memory
                 "$verb" --sandbox-log "$log.sandbox.log" --bundle "$bundle" "$id") ;;
    systrap-sandbox|systrap-host)
      LEVEL_CMD=("$ATOLL" --root "$root" --log "$log.log" --isolation userspace --platform systrap
                 --network "${level#systrap-}"
                 "$verb" --sandbox-log "$log.sandbox.log" --bundle "$bundle" "$id") ;;
    runsc-*)
      LEVEL_CMD=("$RUNSC" --root "$root" --platform="${level#runsc-}" --network="$net"
                 "$verb" --bundle "$bundle" "$id") ;;
  esac
}

# Runs the process of BUNDLE to completion at LEVEL; its stdout (the
# samples) goes to $OUT/NAME-LEVEL.txt. A failed or hung run does not stop
# the harness: the file then starts with a FAILED line that the report
# shows, and the logs stay in $OUT/logs (the runtime's log, the container's
# stderr and, at atoll's userspace level, the sandbox log).
run_level() {
  local level=$1 bundle=$2 name=$3
  local out=$OUT/$name-$level.txt log=$LOGS/$name-$level
  local id="bench-$name-$level-$$" rc=0 rt root
  rt=$(level_runtime "$level")
  root=$(level_root "$level" "$name-$level")
  mkdir -p "$root"
  rm -f "$log".log "$log".sandbox.log "$log".stderr
  level_cmd "$level" run "$bundle" "$id" "$log"
  echo "-- $name at $level"
  timeout -k 10 "$LIMIT" "${LEVEL_CMD[@]}" </dev/null >"$out.tmp" 2>"$log.stderr" || rc=$?
  if [ "$rc" = 0 ]; then
    mv "$out.tmp" "$out"
  else
    local why="exit status $rc"
    [ "$rc" != 124 ] || why="timed out after ${LIMIT}s"
    { failure_line "$level" "$name" "$why" "$log.stderr"; cat "$out.tmp"; } >"$out"
    rm -f "$out.tmp"
    "$rt" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
  fi
  cat "$out"
  assert_empty_root "$rt" "$root"
}

# Runs BUNDLE ROUNDS times at each level, one container per level and round,
# so that load from elsewhere on the shared machine hits every runtime
# alike; each round starts one level further along the list, so that no
# runtime always follows the same one. Then AFTER (a command), if given.
# Each container run adds its samples to $OUT/NAME-LEVEL.txt. A level that
# failed is not run again; its FAILED line comes first in the file, where
# the report looks for it.
run_rounds() {
  local name=$1 bundle=$2 rounds=$3 after=${4:-}
  local level r i n=${#LEVELS[@]} acc
  for level in "${LEVELS[@]}"; do : >"$OUT/$name-$level.acc"; done
  for r in $(seq "$rounds"); do
    echo "-- $name: round $r of $rounds"
    for i in $(seq 0 $((n - 1))); do
      level=${LEVELS[$(( (i + r - 1) % n ))]}
      acc=$OUT/$name-$level.acc
      ! grep -q '^FAILED' "$acc" || continue
      run_level "$level" "$bundle" "$name" >/dev/null
      cat "$OUT/$name-$level.txt" | tee -a "$acc" | sed "s/^/$level: /"
    done
    [ -z "$after" ] || $after
  done
  for level in "${LEVELS[@]}"; do
    acc=$OUT/$name-$level.acc
    { grep '^FAILED' "$acc" || true; grep -v '^FAILED' "$acc" || true; } >"$OUT/$name-$level.txt"
    rm -f "$acc"
  done
}

# youki from crates.io: the release on the libcontainer line atoll uses,
# built once into the target directory (cargo install, a few minutes), with
# the features atoll's libcontainer has (no systemd).
YOUKI_VERSION=0.7.0
YOUKI=${YOUKI:-}
ensure_youki() {
  [ -z "$YOUKI" ] || return 0
  local root=$TARGET/youki-$YOUKI_VERSION
  if [ ! -x "$root/bin/youki" ]; then
    echo "building youki $YOUKI_VERSION from crates.io (cargo install, a few minutes)..." >&2
    CARGO_TARGET_DIR=$root/build cargo install youki --version "=$YOUKI_VERSION" --locked \
      --no-default-features --features v1,v2,seccomp --root "$root" >&2
  fi
  YOUKI=$root/bin/youki
}

# create+start+wait+delete of /bin/true in the busybox bundle, one foreground
# command per runtime: `atoll run`, `youki run`, `runc run` and `runsc run`
# all delete on exit.
bench_lifecycle() {
  build_progs
  ensure_youki
  local bundle=$WORK/bundle-true
  local root_atoll=$WORK/state-atoll-lifecycle root_runc=$WORK/state-runc-lifecycle
  local root_youki=$WORK/state-youki-lifecycle root_runsc=$WORK/state-runsc-lifecycle root
  # The state roots on a tmpfs, as /run is on a standard host (where every
  # runtime keeps its state by default: /run/runc, /run/youki, /run/atoll,
  # /var/run/runsc); not on the disk under $WORK, where deleting a file can
  # wait for a synchronous discard (a disk mounted with -o discard, as here).
  for root in "$root_atoll" "$root_runc" "$root_youki" "$root_runsc"; do
    mkdir -p "$root"
    mount -t tmpfs -o size=64m,mode=0700 tmpfs "$root"
  done
  ./scripts/default-bundle.sh "$ATOLL" "$bundle" /bin/true >/dev/null

  local with_id=$PROGS/with-id
  local names=("atoll native" "atoll systrap" "atoll ptrace") cmds=()
  cmds+=("$with_id $ATOLL --root $root_atoll --isolation native run --bundle $bundle")
  cmds+=("$with_id $ATOLL --root $root_atoll --isolation userspace --platform systrap run --bundle $bundle")
  cmds+=("$with_id $ATOLL --root $root_atoll --isolation userspace --platform ptrace run --bundle $bundle")
  names+=(youki runc)
  cmds+=("$with_id $YOUKI --root $root_youki run --bundle $bundle")
  cmds+=("$with_id $RUNC --root $root_runc run --bundle $bundle")
  if [ -n "$RUNSC" ]; then
    names+=("runsc systrap" "runsc ptrace")
    cmds+=("$with_id $RUNSC --root $root_runsc --platform=systrap --network=none run --bundle $bundle")
    cmds+=("$with_id $RUNSC --root $root_runsc --platform=ptrace --network=none run --bundle $bundle")
  fi

  # All must work before they are timed (hyperfine would stop at the first
  # failure anyway, but with less to go on).
  local i
  for i in "${!cmds[@]}"; do
    ${cmds[$i]}
  done
  assert_empty_root "$ATOLL" "$root_atoll"
  assert_empty_root "$YOUKI" "$root_youki"
  assert_empty_root "$RUNC" "$root_runc"
  [ -z "$RUNSC" ] || assert_empty_root "$RUNSC" "$root_runsc"

  local r per=$((RUNS / LIFECYCLE_ROUNDS)) rounds=() hf
  for r in $(seq "$LIFECYCLE_ROUNDS"); do
    echo "-- lifecycle: round $r of $LIFECYCLE_ROUNDS"
    hf=()
    for i in "${!cmds[@]}"; do
      hf+=(--command-name "${names[$i]}" "${cmds[$i]}")
    done
    hyperfine --shell=none --warmup "$WARMUP" --runs "$per" \
      --export-json "$OUT/lifecycle-$r.json" "${hf[@]}"
    rounds+=("$OUT/lifecycle-$r.json")
  done
  report merge-hyperfine "$OUT/lifecycle.json" "${rounds[@]}"

  assert_empty_root "$ATOLL" "$root_atoll"
  assert_empty_root "$YOUKI" "$root_youki"
  assert_empty_root "$RUNC" "$root_runc"
  [ -z "$RUNSC" ] || assert_empty_root "$RUNSC" "$root_runsc"

  local rel_bundle='$TMP/bundle' rel_state='$TMP/state' with=bench/progs/with-id
  local runsc_cmds=()
  if [ -n "$RUNSC" ]; then
    runsc_cmds=(
      --cmd "runsc systrap=$with ../shared/peers/runsc --root $rel_state/runsc --platform=systrap --network=none run --bundle $rel_bundle"
      --cmd "runsc ptrace=$with ../shared/peers/runsc --root $rel_state/runsc --platform=ptrace --network=none run --bundle $rel_bundle")
  fi
  report hyperfine "$DOC" lifecycle "$OUT/lifecycle.json" \
    --title "Container lifecycle: create + start + wait + delete of /bin/true" \
    --baseline "atoll native" --baseline runc --baseline "runsc systrap" \
    --chart "$CHARTS/lifecycle.svg" \
    --note "One foreground \`run\` per container (create, start, wait for exit, delete) of \`/bin/true\` in the busybox bundle made by \`scripts/default-bundle.sh\`; the same bundle and config.json (no cgroupsPath, no seccomp profile) for every runtime, each with a private \`--root\` on a tmpfs (as /run is on a standard host; this machine's /run is on its disk, mounted with \`discard\`, where deleting a runtime's state files waits for synchronous discards). atoll at the native level (namespaces, cgroups, and atoll's default seccomp profile, which the others do not apply to this bundle: runc-class) and at the userspace level on each platform (the same plus the application kernel and its gofer started in the container, every syscall of \`/bin/true\` served by the kernel). youki is $("$YOUKI" --version | sed -n '1s/^youki version: //p') from crates.io (\`cargo install youki --version $YOUKI_VERSION --locked --no-default-features --features v1,v2,seccomp\`: the release on the libcontainer 0.7 line atoll is built on, with the same libcontainer features); it and runc copy their own binary into a sealed memfd and re-exec it on every command (their defence against CVE-2019-5736), which atoll does not. runsc (gVisor, both platforms, \`--network=none\`) starts its sandbox, gofer and Sentry per container. Each invocation gets a fresh container id from \`bench/progs/with-id.c\`, the same wrapper for every runtime, which execs the runtime with SIGCHLD blocked: youki 0.7's foreground \`run\` blocks signals only after starting the container, so a \`/bin/true\` that exits first went unnoticed and youki waited forever; blocked, the signal stays pending (atoll blocks it itself before starting the container, runc's and runsc's Go runtime unblocks it). hyperfine runs without a shell (\`--shell=none\`), in $LIFECYCLE_ROUNDS rounds of $per runs of each command, so that a burst of other work on the machine does not fall on one runtime only; the table merges the rounds." \
    "${PEER_ARGS[@]}" \
    --note "$(run_note) $(load_note)" \
    --cmd "atoll native=$with target/release/atoll --root $rel_state/atoll --isolation native run --bundle $rel_bundle" \
    --cmd "atoll systrap=$with target/release/atoll --root $rel_state/atoll --isolation userspace --platform systrap run --bundle $rel_bundle" \
    --cmd "atoll ptrace=$with target/release/atoll --root $rel_state/atoll --isolation userspace --platform ptrace run --bundle $rel_bundle" \
    --cmd "youki=$with target/youki-$YOUKI_VERSION/bin/youki --root $rel_state/youki run --bundle $rel_bundle" \
    --cmd "runc=$with runc --root $rel_state/runc run --bundle $rel_bundle" \
    "${runsc_cmds[@]}"
}

# Issue 3 and 11: the cost of one syscall. getppid in a loop at every level
# (the static workload in the busybox bundle), through libc (a site the
# systrap platform patches) and through syscall() (never patched); and on
# the host the bare ptrace round trip that atoll's ptrace platform cannot go
# below.
bench_syscall() {
  build_progs
  local bundle
  bundle=$(micro_bundle)
  make_config "$bundle" -- /bench/workload getppid "$SECS" 1
  : >"$OUT/syscall-floor.txt"
  run_rounds syscall "$bundle" "$SAMPLES" syscall_floor
  report_levels syscall
  report syscall "$DOC" syscall "${REPORT_LEVELS[@]}" \
    --metric "getppid_libc_ns|libc getppid()|µs per call|lower|0.001" \
    --metric "getppid_raw_ns|syscall(SYS_getppid)|µs per call|lower|0.001" \
    --floor "$OUT/syscall-floor.txt" --floor-level "atoll ptrace" --floor-key getppid_raw_ns \
    --json "$OUT/syscall.json" --chart "$CHARTS/syscall.svg" \
    --title "Per-syscall cost: getppid" \
    --note "**What it measures.** A static C program (\`bench/progs/workload.c\`, \`workload getppid\`) calls getppid in chunks of 1000 inside a busybox container, reading CLOCK_MONOTONIC once per chunk until a sample has run ${SECS} s; a sample is elapsed time / calls. getppid does no work in any kernel, so the figure is the price of crossing into the kernel and back. Two ways of calling it: glibc's \`getppid()\` is \`mov \$110,%eax; syscall\`, the call-site pattern the systrap platforms (atoll's and runsc's) rewrite into a jump to their handoff code, so after its first calls (runsc: the first, atoll: the 8th) it never traps; \`syscall(SYS_getppid)\` goes through glibc's generic \`syscall()\`, whose number comes from a register, which no platform patches: at every call the host delivers SIGSYS (syscall user dispatch on atoll, seccomp on runsc) to the stub, which hands off to the kernel. On ptrace both are a ptrace stop of the tracing kernel." \
    --note "**The ptrace floor.** \`bench/progs/ptrace-floor.c\` runs on the host in the same run, one sample after each round of the containers: it forks a child that loops on a raw getppid syscall, PTRACE_SEIZEs it and, at every syscall stop, only resumes it with PTRACE_SYSEMU (the syscall is skipped, nothing is read or answered). One such round trip is the least any syscall served through ptrace can cost on this machine, whatever the kernel above does; the second floor row adds the PTRACE_GETREGS and PTRACE_SETREGS that answering a syscall needs at minimum. The last row is atoll ptrace's \`syscall(SYS_getppid)\` minus the bare floor: what atoll's kernel adds. On a loaded machine the floor rows swing the most: every ptrace request and wait is a chance for the tracer to lose its CPU." \
    "${PEER_ARGS[@]}" \
    --note "$(sample_note "$SAMPLES rounds (one ${SECS} s sample of each measure per runtime and round; the floor after each round)") $(load_note)"
}

# One sample of the ptrace floor on the host (after each round of bench_syscall).
syscall_floor() {
  "$PROGS/ptrace-floor" "$SECS" 1 | tee -a "$OUT/syscall-floor.txt" | sed 's/^/host: /'
}

# Issue 11 item 5: the kernel's ceiling, calls per second the sandbox
# sustains with 1, 2 and 8 threads looping on getppid.
bench_ceiling() {
  build_progs
  local bundle n metrics=()
  bundle=$(micro_bundle)
  make_config "$bundle" -- /bench/workload threads "$CEILING_THREADS" "$SECS" 1
  run_rounds ceiling "$bundle" "$SAMPLES"
  for n in ${CEILING_THREADS//,/ }; do
    metrics+=(--metric "sps_libc_t$n|libc getppid(), $n thread$([ "$n" = 1 ] || echo s)|calls/s|higher")
  done
  for n in ${CEILING_THREADS//,/ }; do
    metrics+=(--metric "sps_raw_t$n|syscall(SYS_getppid), $n thread$([ "$n" = 1 ] || echo s)|calls/s|higher")
  done
  report_levels ceiling
  report compare "$DOC" ceiling "${REPORT_LEVELS[@]}" "${metrics[@]}" \
    --json "$OUT/ceiling.json" --chart "$CHARTS/ceiling.svg" --chart-kind threads \
    --title "The kernel's ceiling: syscalls per second with 1, 2 and 8 busy threads" \
    --note "**What it measures.** \`workload threads ${CEILING_THREADS} ${SECS} 1\` in the busybox bundle: for each thread count N, N threads of one process loop on getppid (first libc's patchable \`getppid()\`, then \`syscall(SYS_getppid)\`, as in the syscall section), each adding to its own counter every 100 calls; after a $(awk "BEGIN{print $SECS/5}") s warm-up the main thread sleeps ${SECS} s and reads the counters: a sample is the calls of all threads per second. Nothing else runs in the container. At the native level this is the host kernel on $(nproc) vCPUs; at atoll's userspace level every call is served by the sandbox's application kernel (one host thread serves all of a sandbox's tasks today), at runsc by its Sentry, a Go program whose goroutines (one per task) run on as many host threads as there are CPUs (GOMAXPROCS). More threads than vCPUs (8 on $(nproc)) show what happens when the workload alone oversubscribes the machine: the kernel's threads compete with the workload's for the CPUs." \
    "${PEER_ARGS[@]}" \
    --note "$(sample_note "$SAMPLES rounds, one ${SECS} s sample per thread count, call and runtime each") $(load_note)"
}

# Issue 3: python3 -c pass, fork+exec+wait from inside a Debian container.
# Clears NAME's samples, then runs FN LEVEL ARGS... at every level in
# ROUNDS rounds, each round starting one level later (no runtime always
# goes first, when the machine may be quieter); a level whose samples
# start with FAILED is not run again.
in_rounds() {
  local name=$1 rounds=$2 fn=$3
  shift 3
  local level r i n=${#LEVELS[@]}
  for level in "${LEVELS[@]}"; do
    rm -f "$OUT/$name-$level.txt" "$LOGS/$name-$level".*
  done
  for r in $(seq "$rounds"); do
    echo "-- $name: round $r of $rounds"
    for i in $(seq 0 $((n - 1))); do
      level=${LEVELS[$(( (i + r - 1) % n ))]}
      ! grep -q '^FAILED' "$OUT/$name-$level.txt" 2>/dev/null || continue
      "$fn" "$level" "$@"
    done
  done
}

# Issue 11: the memory of idle containers. Per runtime and round,
# IDLE_CONTAINERS containers running `sleep` in the Debian rootfs start
# one after another; after each has settled, the summed PSS of the host
# processes they need (see pss_kib) less what ran before.
bench_idle() {
  local bundle=$WORK/bundle-idle
  debian_rootfs
  make_config "$bundle" --rootfs "$DEBIAN" --readonly --tmpfs /tmp "${DEBIAN_ENV[@]}" \
    -- /bin/sleep 100000
  in_rounds idle "$IDLE_ROUNDS" idle_level "$bundle"
  report_levels idle
  report compare "$DOC" idle "${REPORT_LEVELS[@]}" \
    --metric "idle_first_mib|one idle container|MiB|lower" \
    --metric "idle_next_mib|each further idle container|MiB|lower" \
    --json "$OUT/idle.json" --chart "$CHARTS/idle.svg" \
    --title "Memory of idle containers" \
    --note "**What it measures.** Containers running \`sleep\` in the tests' Debian bookworm rootfs (read-only, tmpfs on /tmp), $IDLE_CONTAINERS of them started one after another per runtime; ${IDLE_SETTLE} s after each start, the summed proportional set size (PSS: a page shared by k processes counts 1/k to each) of the host processes the containers need, less that of the same processes before the first: at atoll's userspace level the application kernels, gofers and stub processes (every process running the atoll binary), at runsc its Sentries, gofers and stubs (every process running the runsc binary), at the native level the containers' own processes. *One idle container*: the first alone, which also pays for the runtime binary's code (its pages count in full while one process maps them); *each further*: the mean of what the others added. Issue 11's target: an idle sandbox at most 8 MiB." \
    "${PEER_ARGS[@]}" \
    --note "$(sample_note "$IDLE_ROUNDS rounds of $IDLE_CONTAINERS containers per runtime") $(load_note)"
}

# Summed PSS (KiB) of the processes running binary EXE and of PIDs.
pss_kib() {
  python3 - "$@" <<'PY'
import os, sys
exe = os.path.realpath(sys.argv[1])
pids = set(sys.argv[2:])
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        if os.path.realpath(f"/proc/{pid}/exe") == exe:
            pids.add(pid)
    except OSError:
        pass
total = 0
for pid in pids:
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Pss:"):
                total += int(line.split()[1])
    except OSError:
        pass
print(total)
PY
}

# One round of bench_idle at LEVEL: start IDLE_CONTAINERS containers of
# BUNDLE (create, then start), measure after each, delete them.
idle_level() {
  local level=$1 bundle=$2
  local out=$OUT/idle-$level.txt log=$LOGS/idle-$level
  local rt root base now first= last= i id pid fail= pids=() ids=()
  rt=$(level_runtime "$level")
  root=$(level_root "$level" "idle-$level")
  mkdir -p "$root"
  echo "-- idle at $level"
  base=$(pss_kib "$rt")
  for i in $(seq "$IDLE_CONTAINERS"); do
    id="bench-idle-$level-$i-$$"
    level_cmd "$level" create "$bundle" "$id" "$log"
    if ! "${LEVEL_CMD[@]}" </dev/null >>"$log.stderr" 2>&1; then
      fail="create failed"
      break
    fi
    ids+=("$id")
    if [ "${level#runsc-}" != "$level" ]; then
      "$rt" --root "$root" --platform="${level#runsc-}" --network=none start "$id" \
        >>"$log.stderr" 2>&1 || fail="start failed"
    else
      "$rt" --root "$root" start "$id" >>"$log.stderr" 2>&1 || fail="start failed"
    fi
    [ -z "$fail" ] || break
    pid=$("$rt" --root "$root" state "$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
    pids+=("$pid")
    sleep "$IDLE_SETTLE"
    now=$(pss_kib "$rt" "${pids[@]}")
    [ -n "$first" ] || first=$((now - base))
    last=$((now - base))
  done
  if [ -n "$fail" ]; then
    { failure_line "$level" idle "$fail" "$log.stderr"; cat "$out" 2>/dev/null || true; } >"$out.tmp"
    mv "$out.tmp" "$out"
  else
    awk -v f="$first" -v l="$last" -v n="$IDLE_CONTAINERS" \
      'BEGIN { printf "idle_first_mib %.3f\nidle_next_mib %.3f\n", f / 1024, (l - f) / (n - 1) / 1024 }' >>"$out"
  fi
  tail -n 2 "$out"
  for id in "${ids[@]}"; do
    "$rt" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
  done
  assert_empty_root "$rt" "$root"
}

bench_python() {
  build_progs
  local bundle=$WORK/bundle-python
  debian_rootfs
  local warm=2 per=$(( (SPAWNS + PY_ROUNDS - 1) / PY_ROUNDS ))
  make_config "$bundle" --rootfs "$DEBIAN" --readonly --tmpfs /tmp \
    --bind "$PROGS:/mnt:ro" "${DEBIAN_ENV[@]}" \
    -- /mnt/workload spawn "$per" "$warm" /usr/bin/python3 -c pass
  run_rounds python "$bundle" "$PY_ROUNDS"
  report_levels python
  report compare "$DOC" python "${REPORT_LEVELS[@]}" \
    --metric "spawn_ms|python3 -c pass|ms|lower" \
    --json "$OUT/python.json" --chart "$CHARTS/python.svg" \
    --title "Python startup: python3 -c pass" \
    --note "**What it measures.** Inside one container on the tests' Debian bookworm rootfs (\`crates/testkit/src/debian.rs\`, used in place and read-only, tmpfs on /tmp), \`workload spawn\` forks, execs \`/usr/bin/python3 -c pass\` and waits for it, $warm times as warm-up (page cache, the kernel's caches) and then $per times timed, each with two clock reads; $PY_ROUNDS such containers per runtime, in rounds. One start of CPython loads the dynamic linker, libc and libpython, reads and stats a few hundred files of the standard library (encodings, site) and maps them: a mix of exec, mmap and file syscalls. Container creation is not included (see the lifecycle section)." \
    "${PEER_ARGS[@]}" \
    --note "$(sample_note "$((per * PY_ROUNDS)) timed starts per runtime in $PY_ROUNDS rounds") $(load_note)"
}

# Issue 4 and 12: file I/O on the rootfs, which is a directory of the host
# (the bundle's rootfs under /tmp on the host's disk), not a tmpfs; then a
# tar extraction and a find | xargs stat over the tests' Debian rootfs.
bench_files() {
  build_progs
  # One more column here: the userspace level with the rootfs overlay
  # (--overlay root:memory), as runsc runs by default.
  local LEVELS=("${LEVELS[@]}" systrap-overlay)
  local bundle
  bundle=$(micro_bundle)
  make_config "$bundle" --writable -- /bench/workload files /bench/data 1 "$SECS"
  run_rounds files "$bundle" "$SAMPLES"

  # The tree: /usr of the Debian rootfs as a tar file, extracted into an
  # empty directory, both on a host tmpfs bind-mounted into the container.
  debian_rootfs
  local tree=$WORK/tree tbundle=$WORK/bundle-tree
  mkdir -p "$tree"
  mount -t tmpfs -o size=1g,mode=0755 tmpfs "$tree"
  mkdir -p "$tree/src" "$tree/scratch"
  tar -C "$DEBIAN" -cf "$tree/src/usr.tar" usr
  local entries size find_entries
  entries=$(tar -tf "$tree/src/usr.tar" | wc -l)
  size=$(( $(stat -c %s "$tree/src/usr.tar") >> 20 ))
  find_entries=$(find "$DEBIAN/usr" "$DEBIAN/etc" "$DEBIAN/var" | wc -l)
  local tar_runs=1 find_runs=2
  make_config "$tbundle" --rootfs "$DEBIAN" --readonly --tmpfs /tmp --docker-caps \
    --bind "$PROGS:/mnt:ro" --bind "$tree/src:/src:ro" --bind "$tree/scratch:/scratch" \
    "${DEBIAN_ENV[@]}" -- /bin/sh -c "
      /mnt/workload time tar_ms $tar_runs 0 'rm -rf /scratch/x && mkdir /scratch/x' \
        /bin/tar -xf /src/usr.tar -C /scratch/x &&
      /mnt/workload time findstat_ms $find_runs 1 '' \
        /bin/sh -c 'find /usr /etc /var -print0 | xargs -0 stat --format=\"%i %s %Y %n\"' &&
      /mnt/workload time find_ms $find_runs 1 '' \
        /bin/sh -c 'find /usr /etc /var -print0 > /tmp/list' &&
      /mnt/workload time xstat_ms $find_runs 1 '' \
        /bin/sh -c 'xargs -0 stat --format=\"%i %s %Y %n\" < /tmp/list'"
  run_rounds tree "$tbundle" "$TREE_ROUNDS"

  # tar -x into the container's rootfs (the micro bundle's copy, on the
  # host's disk): with an overlay on the root the files land in the
  # sandbox's memory instead.
  make_config "$bundle" --writable --docker-caps --bind "$tree/src:/src:ro" -- \
    /bench/workload time tar_root_ms $tar_runs 0 'rm -rf /bench/x && mkdir /bench/x' \
    /bin/tar -xf /src/usr.tar -C /bench/x
  run_rounds rootfs-tar "$bundle" "$TREE_ROUNDS"
  rm -rf "$bundle/rootfs/bench/x"

  report_levels files tree rootfs-tar
  REPORT_LEVELS+=(--subject "atoll systrap overlay")
  report compare "$DOC" files "${REPORT_LEVELS[@]}" \
    --metric "write_4k_mibps|write 64 MiB in 4 KiB blocks|MiB/s|higher" \
    --metric "read_4k_mibps|read 64 MiB in 4 KiB blocks|MiB/s|higher" \
    --metric "write_1m_mibps|write 64 MiB in 1 MiB blocks|MiB/s|higher" \
    --metric "read_1m_mibps|read 64 MiB in 1 MiB blocks|MiB/s|higher" \
    --metric "open_close_ns|open + close|µs per pair|lower|0.001" \
    --metric "stat_ns|stat|µs per call|lower|0.001" \
    --metric "tar_ms|tar -x of the Debian rootfs's /usr|ms|lower" \
    --metric "findstat_ms|find \\| xargs stat over the Debian rootfs|ms|lower" \
    --metric "find_ms|its find alone, into a file|ms|lower" \
    --metric "xstat_ms|its xargs stat alone, from that file|ms|lower" \
    --metric "tar_root_ms|tar -x of the Debian rootfs's /usr into the container's rootfs|ms|lower" \
    --json "$OUT/files.json" --chart "$CHARTS/files.svg" \
    --title "File I/O: the container's rootfs, and a tree of the Debian rootfs" \
    --note "**What it measures.** \`workload files\` in the busybox bundle with a writable rootfs: the files live in the bundle's rootfs, a directory on the host's ext4 disk. Per sample: a 64 MiB file is created (O_TRUNC after an unlink) and written in 1 MiB, then read back; then the same in 4 KiB blocks (open to close timed, no fsync: every runtime ends in the host's page cache, so this is the cost of the syscall path, not of the disk). Then open(O_RDONLY)+close and stat of a small file two directories deep, each a loop timed in chunks of 100 for ${SECS} s. atoll's userspace level reaches the rootfs through its gofer. runsc, with its defaults, puts an overlay on a writable rootfs (\`--overlay2=root:self\`; \`/proc/mounts\` shows \`/\` as \`overlay\`): the files this benchmark creates live in its memory-backed upper layer (kept in a file in the rootfs directory), so runsc serves every one of these six rows inside its Sentry without reaching the host's file system. A read-only rootfs (the tree rows below, the python section) gets no overlay: runsc opens and stats it itself (directfs), trusting its cache of the root mount (\`--file-access=exclusive\`)." \
    --note "**atoll systrap overlay** is the userspace level on systrap with the rootfs overlay (\`--overlay root:memory\`): the rootfs rows' files, and the *tar -x into the rootfs* row's, live in an upper layer in the sandbox's memory (the bundle's rootfs is not written), as runsc's do with its default overlay. The tree rows' rootfs is read-only, so they run without an overlay there (as runsc's). *tar -x into the rootfs*: the same \`usr.tar\` extracted with busybox's tar into \`/bench/x\` of the micro bundle's writable rootfs, $tar_runs timed run per container after removing and making the directory again: on the host's ext4 disk for atoll native and the userspace levels without overlay, in memory with an overlay." \
    --note "**The tree rows** run in a second container per runtime and round, on the tests' Debian bookworm rootfs (read-only, used in place, Docker's default capabilities so that tar restores owners). *tar -x*: \`tar -xf\` of the rootfs's /usr ($entries entries, $size MiB, made on the host by \`tar -C ROOTFS -cf usr.tar usr\`) into an empty directory, $tar_runs timed run per container, the directory removed and made again before each run (untimed). *find | xargs stat*: \`find /usr /etc /var -print0 | xargs -0 stat --format='%i %s %Y %n'\` over the rootfs ($find_entries entries; a format without user and group names, which would have stat read /etc/passwd and /etc/group per file), $find_runs timed runs after one warm-up per container. Then its two stages one after the other, each with $find_runs timed runs after a warm-up: *its find alone* writes the list into the container's /tmp (a tmpfs in every runtime), *its xargs stat alone* reads it from there. Natively the pipe takes less than the two stages together because they run at once, on the two vCPUs; a stage alone shows a runtime's cost without that overlap. All of them are timed by \`workload time\` (fork, exec, wait of the command) inside the container. The tar file and the directory it is extracted into are on a host tmpfs bind-mounted into the container (\`/src\` read-only, \`/scratch\`), the same for every runtime: on this VM's ext4 disk, mounted with \`discard\`, the same extraction takes 11–14 s natively, all of it the disk's, which would hide every runtime's own cost. Bind mounts are shared with the host, so runsc revalidates its cache of them (\`--file-access-mounts=shared\`, its default) and has no overlay on them." \
    "${PEER_ARGS[@]}" \
    --note "$(sample_note "$SAMPLES rounds of one container per runtime for the rootfs rows (one sample per measure each), $TREE_ROUNDS rounds for the tree rows") $(load_note)"
}

# Issue 4: a pipe ping-pong between two processes.
bench_pipe() {
  build_progs
  local bundle
  bundle=$(micro_bundle)
  make_config "$bundle" -- /bin/sh -c "/bench/workload pipe $SECS 1 && /bench/workload tcp $SECS 1"
  run_rounds pipe "$bundle" "$SAMPLES"
  report_levels pipe
  report compare "$DOC" pipe "${REPORT_LEVELS[@]}" \
    --metric "pipe_rtt_per_s|1-byte round trips between two processes|round trips/s|higher" \
    --metric "tcp_wwr_ms|loopback TCP request/response, write-write-read, Nagle on|ms per round trip|lower" \
    --json "$OUT/pipe.json" --chart "$CHARTS/pipe.svg" \
    --title "Pipe ping-pong and TCP write-write-read" \
    --note "**What it measures.** \`workload pipe\` forks; parent and child bounce one byte over two pipes (write, the other side's blocking read wakes, it writes back). A round trip is two writes, two reads and two wake-ups of a blocked process: in atoll's userspace level and in runsc the pipes live in the application kernel and each wake-up goes through its scheduler. Natively (atoll native) a blocked reader sleeps in the host kernel, and when the other process runs on the other vCPU, which halts as soon as it idles, each wake-up costs ~20 µs; at atoll's systrap level a thread whose syscall blocks first yields for about that long (\`docs/architecture.md\`, \"Waiting on systrap\"), so a reader whose writer answers at once is never asleep, which is why it can beat native here. Timed in chunks of 100 round trips for ${SECS} s per sample. \`workload tcp\`: a client writes a 10-byte header and a 100-byte body, Nagle on, and reads a 10-byte reply from a server process over 127.0.0.1 (at the userspace level the sandbox's own stack, crates/netstack). Nagle holds the body until the header is acknowledged, and the server acknowledges late (delayed ACK: Linux's at least 40 ms, smoltcp's 10 ms, which the sandbox stack keeps), so this measures the delayed-ACK timer more than the stack; ${SECS} s per sample." \
    "${PEER_ARGS[@]}" \
    --note "$(sample_note "$SAMPLES rounds of one container per runtime, one sample each") $(load_note)"
}

# Issue 4 and 11: nginx requests per second with wrk, from the host inside
# the container's own network namespace (nsenter -n, as the service tests
# do).
bench_nginx() {
  local bundle=$WORK/bundle-nginx site=$WORK/site
  debian_rootfs
  mkdir -p "$site/html"
  python3 -c 'import sys; sys.stdout.write("<!DOCTYPE html>\n<html><body><p>" + "atoll bench " * 50 + "</p></body></html>\n")' >"$site/html/index.html"
  cat >"$site/nginx.conf" <<'CONF'
daemon off; worker_processes 1; pid /tmp/nginx.pid; error_log stderr;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 1000000;
  client_body_temp_path /tmp/cb; proxy_temp_path /tmp/px;
  fastcgi_temp_path /tmp/fc; uwsgi_temp_path /tmp/uw; scgi_temp_path /tmp/sc;
  server { listen 8080; root /srv/html; } }
CONF
  make_config "$bundle" --rootfs "$DEBIAN" --readonly --tmpfs /tmp --bind "$site:/srv:ro" \
    --docker-caps "${DEBIAN_ENV[@]}" -- /usr/sbin/nginx -c /srv/nginx.conf
  local url=http://127.0.0.1:8080/index.html level
  in_rounds nginx "$WRK_RUNS" nginx_level "$bundle" "$url"
  local probe_note="Keep-alive check before the load in each container (one connection, ${NGINX_PROBE} sequential requests, 2 s timeout each): fewest answered" p
  local stalled=()
  for level in "${LEVELS[@]}"; do
    p=$(sed -n 's/^keepalive_probe //p' "$OUT/nginx-$level.txt" | sort -n | sed -n 1p)
    probe_note="$probe_note $(level_label "$level") ${p:-n/a}/${NGINX_PROBE},"
    [ "${p:-0}" -ge "$NGINX_PROBE" ] || stalled+=("$level")
  done
  probe_note="${probe_note%,}."
  for level in "${stalled[@]}"; do
    grep -q '^keepalive_probe' "$OUT/nginx-$level.txt" || continue
    local q queued=
    q=$(sed -n 's/^keepalive_stall_recvq //p' "$OUT/nginx-$level.txt" | sed -n 1p)
    [ -z "$q" ] || queued=" (when the probe gave up, the server's end of the connection still held $q unread bytes: the request had arrived and nginx was never told)"
    probe_note="$probe_note **At $(level_label "$level") a keep-alive connection stopped being answered**$queued: its keep-alive row measures that stall, wrk waiting on stuck connections, not throughput; its row with a new connection per request is the usable figure."
  done
  report_levels nginx
  report compare "$DOC" nginx "${REPORT_LEVELS[@]}" \
    --metric "rps_keepalive|HTTP GET, keep-alive connections|requests/s|higher" \
    --metric "rps_close|HTTP GET, a new connection per request|requests/s|higher" \
    --json "$OUT/nginx.json" --chart "$CHARTS/nginx.svg" \
    --title "nginx: requests per second (wrk)" \
    --note "**What it measures.** Debian's nginx-light (1 worker, access log off) in a container of the tests' Debian rootfs with its own network namespace, serving a $(stat -c %s "$site/html/index.html")-byte static page from a read-only bind mount. [wrk](https://github.com/wg/wrk) runs on the host inside the container's network namespace (\`nsenter -t PID -n\`, the way \`crates/atoll/tests/userspace_services.rs\` reaches its services), 1 thread and 8 connections for ${WRK_SECS} s per run after a 1 s warm-up: keep-alive (wrk's default) and with \`Connection: close\` (a TCP connect, accept and close per request). wrk and nginx share the $(nproc) vCPUs. Each round starts one container per runtime, measures both modes and deletes it." \
    --note "**atoll's userspace level runs with \`--network host\`** here (host sockets in the container's namespace, reachable by wrk through \`nsenter\`; its default, the kernel's own stack, keeps the loopback inside the sandbox and is measured over a veth in the *Network stack* section)." \
    --note "**runsc runs with \`--network=host\`** (its hostinet mode: the sandbox's sockets are host sockets in the container's network namespace, as atoll's userspace level does it), since with its default network stack (netstack) its loopback lives inside the Sentry, where a client in the container's namespace on the host cannot reach it. runsc leaves that namespace's loopback down, so the harness brings it up (\`ip link set lo up\`, what a CNI plugin does) between \`runsc create\` and \`runsc start\`." \
    --note "$probe_note" \
    "${PEER_ARGS[@]}" \
    --note "$(sample_note "$WRK_RUNS rounds, one wrk run per mode, runtime and round") $(load_note)"
}

NGINX_PROBE=200

# Issue 16: the network path itself. nginx and a bulk TCP transfer served
# over a veth, the way a CNI plugin networks a pod: the container joins a
# network namespace whose only link is a veth end (eth0, 10.250.N.2/24);
# the other end is in a second, peer namespace (10.250.N.1) where wrk and
# the bulk client run. atoll's userspace level with its own stack
# (`--network sandbox`: the kernel takes eth0 over and moves frames through
# a packet socket) and with the host's (`--network host`: host sockets in
# the namespace), atoll native, and runsc with its default netstack (which
# takes the namespace's interface over the same way).
bench_netstack() {
  build_progs
  debian_rootfs
  local LEVELS=(systrap-sandbox systrap-host native)
  [ -z "$RUNSC" ] || LEVELS+=(runsc-systrap)
  local bundle=$WORK/bundle-netstack site=$WORK/site-netstack
  mkdir -p "$site/html"
  python3 -c 'import sys; sys.stdout.write("<!DOCTYPE html>\n<html><body><p>" + "atoll bench " * 50 + "</p></body></html>\n")' >"$site/html/index.html"
  cat >"$site/nginx.conf" <<'CONF'
daemon off; worker_processes 1; pid /tmp/nginx.pid; error_log stderr;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 1000000;
  client_body_temp_path /tmp/cb; proxy_temp_path /tmp/px;
  fastcgi_temp_path /tmp/fc; uwsgi_temp_path /tmp/uw; scgi_temp_path /tmp/sc;
  server { listen 8080; root /srv/html; } }
CONF
  local level
  in_rounds netstack "$WRK_RUNS" netstack_level "$bundle" "$site"
  local REPORT_LEVELS=()
  for level in "${LEVELS[@]}"; do
    REPORT_LEVELS+=(--level "$(level_label "$level")=$OUT/netstack-$level.txt")
  done
  REPORT_LEVELS+=(--ratio-to "atoll systrap host" --ratio-to "atoll native"
                  --subject "atoll systrap sandbox" --subject "atoll systrap host")
  [ -z "$RUNSC" ] || REPORT_LEVELS+=(--ratio-to "runsc systrap")
  report compare "$DOC" netstack "${REPORT_LEVELS[@]}" \
    --metric "rps_keepalive|nginx GET over the veth, keep-alive connections|requests/s|higher" \
    --metric "rps_close|nginx GET over the veth, a new connection per request|requests/s|higher" \
    --metric "bulk_to_mbit|bulk TCP, peer to container|Mbit/s|higher" \
    --metric "bulk_from_mbit|bulk TCP, container to peer|Mbit/s|higher" \
    --json "$OUT/netstack.json" --chart "$CHARTS/netstack.svg" \
    --title "Network stack: nginx and bulk TCP over a veth" \
    --note "**What it measures.** The network path of a CNI-networked container: the container joins a network namespace whose only link is one end of a veth pair (\`eth0\`, 10.250.N.2/24, MTU 1500, what a CNI bridge or ptp plugin leaves); the other end is in a peer network namespace (10.250.N.1), where the clients run. *atoll systrap sandbox* is \`--network sandbox\`: the application kernel takes \`eth0\` over at start (its addresses, routes and MTU) and runs TCP/IP itself on crates/netstack (smoltcp), moving Ethernet frames through one packet socket; *atoll systrap host* is \`--network host\`: the kernel's host sockets in the namespace, the host's TCP/IP; *atoll native*: the workload's own host sockets; *runsc systrap*: gVisor with its default \`--network=sandbox\` (netstack), which takes the namespace's interface over the same way. The container runs Debian's nginx-light (1 worker, access log off, a $(stat -c %s "$site/html/index.html")-byte page) and \`bench/progs/bulk.c serve\` beside it. From the peer namespace: [wrk](https://github.com/wg/wrk), 1 thread and 8 connections for ${WRK_SECS} s after a 1 s warm-up, keep-alive and \`Connection: close\`; then \`bulk to\` and \`bulk from\`, one TCP connection each way for ${WRK_SECS} s with 128 KiB writes (*to*: peer sends, container reads; counted once the container has read every byte). Clients and container share the $(nproc) vCPUs. Each round starts one container per runtime in fresh namespaces, measures everything and deletes it. Ratios: to *atoll systrap host* (the issue's target: sandbox keep-alive ≥ 70% of it), to atoll native, and atoll's columns to runsc systrap." \
    "${PEER_ARGS[@]}" \
    --note "$(sample_note "$WRK_RUNS rounds, one wrk run per mode and one bulk run per direction, runtime and round") $(load_note)"
}

# One round of bench_netstack at LEVEL in fresh namespaces: start detached,
# wait until nginx answers from the peer namespace, run wrk and bulk,
# delete. Samples appended to $OUT/netstack-LEVEL.txt.
netstack_level() {
  local level=$1 bundle=$2 site=$3
  local out=$OUT/netstack-$level.txt log=$LOGS/netstack-$level
  local id="bench-netstack-$level-$$" fail= rt root k=$((RANDOM % 250 + 1))
  local ns=atoll-bench-ns-$$ peer=atoll-bench-peer-$$ hif=abv$$
  local addr=10.250.$k.2 url=http://10.250.$k.2:8080/index.html
  rt=$(level_runtime "$level")
  root=$(level_root "$level" "netstack-$level")
  mkdir -p "$root"
  echo "-- netstack at $level"
  ip netns add "$ns"
  ip netns add "$peer"
  ip link add "$hif" netns "$peer" type veth peer name eth0 netns "$ns"
  ip -n "$peer" addr add "10.250.$k.1/24" dev "$hif"
  ip -n "$peer" link set "$hif" up
  ip -n "$peer" link set lo up
  ip -n "$ns" addr add "$addr/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  ip -n "$ns" route add default via "10.250.$k.1"
  make_config "$bundle" --rootfs "$DEBIAN" --readonly --tmpfs /tmp --bind "$site:/srv:ro" \
    --bind "$PROGS:/mnt:ro" --netns "/var/run/netns/$ns" --docker-caps "${DEBIAN_ENV[@]}" \
    -- /bin/sh -c '/mnt/bulk serve 5201 & exec /usr/sbin/nginx -c /srv/nginx.conf'
  level_cmd "$level" run "$bundle" "$id" "$log" sandbox
  # A detached run: the flag goes right after `run`.
  local cmd=("${LEVEL_CMD[@]}") j
  for j in "${!cmd[@]}"; do
    if [ "${cmd[$j]}" = run ]; then
      cmd=("${cmd[@]:0:$((j + 1))}" --detach "${cmd[@]:$((j + 1))}")
      break
    fi
  done
  if ! "${cmd[@]}" </dev/null >>"$log.stderr" 2>&1; then
    fail="run --detach failed"
  elif ! ip netns exec "$peer" python3 - "$url" <<'PY'
import sys, time, urllib.request
deadline = time.time() + 30
while True:
    try:
        urllib.request.urlopen(sys.argv[1], timeout=3).read()
        break
    except Exception as e:
        if time.time() > deadline:
            sys.exit(f"nginx did not answer: {e}")
        time.sleep(0.2)
PY
  then
    fail="nginx did not answer $url from the peer namespace within 30 s"
  fi
  if [ -n "$fail" ]; then
    { failure_line "$level" netstack "$fail" "$log.stderr"; cat "$out" 2>/dev/null || true; } >"$out.tmp"
    mv "$out.tmp" "$out"
  else
    local mode hdr rps dir
    for mode in keepalive close; do
      hdr=()
      [ "$mode" = keepalive ] || hdr=(-H "Connection: close")
      timeout 30 ip netns exec "$peer" wrk -t1 -c8 -d1s "${hdr[@]}" "$url" >/dev/null 2>&1 || true
      rps=$(timeout $((WRK_SECS + 30)) ip netns exec "$peer" wrk -t1 -c8 -d"${WRK_SECS}s" "${hdr[@]}" "$url" \
        | tee -a "$log.wrk" | awk '/^Requests\/sec:/ {print $2}')
      [ -z "$rps" ] || echo "rps_$mode $rps" >>"$out"
    done
    for dir in to from; do
      timeout $((WRK_SECS + 30)) ip netns exec "$peer" "$PROGS/bulk" "$dir" "$addr" 5201 "$WRK_SECS" \
        >>"$out" 2>>"$log.stderr" || echo "bulk $dir failed" >>"$log.stderr"
    done
  fi
  tail -n 4 "$out"
  "$rt" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
  ip netns del "$ns"
  ip netns del "$peer"
  assert_empty_root "$rt" "$root"
}

# Issue 13 item 6: multi-threaded language runtimes, whole commands timed
# inside the container (workload time), on a quiet machine and with both
# CPUs kept busy by two host busy loops beside the container. atoll's
# ptrace platform and runsc's are left out: this section is about the
# default platform of each sandbox.
RT_RUNS=${RT_RUNS:-}
bench_runtimes() {
  build_progs
  debian_runtimes_rootfs
  local LEVELS=(native systrap)
  [ -z "$RUNSC" ] || LEVELS+=(runsc-systrap)
  local bundle=$WORK/bundle-runtimes runs=${RT_RUNS:-$([ "$QUICK" = 1 ] && echo 1 || echo 3)}
  local rounds=$([ "$QUICK" = 1 ] && echo 1 || echo 2)
  # One sh -c per container: each command timed RUNS times after one
  # untimed warm-up (the Go build cache, the JDK's class data, the page
  # cache); $1 suffixes the keys (the busy variant).
  local script='W=/mnt/workload; S=$1; export GOCACHE=/tmp/gocache GOPATH=/tmp/go
    $W time go_version_ms$S '"$runs"' 1 "" /usr/bin/go version &&
    $W time go_run_ms$S '"$runs"' 1 "" /usr/bin/go run /src/threads.go &&
    $W time java_version_ms$S '"$runs"' 1 "" /usr/bin/java -version &&
    $W time java_threads_ms$S '"$runs"' 1 "" /usr/bin/java /src/Threads.java &&
    $W time node_workers_ms$S '"$runs"' 1 "" /usr/bin/node /src/workers.js'
  local suffix
  for suffix in "" _busy; do
    make_config "$bundle" --rootfs "$DEBIAN_RT" --readonly --tmpfs /tmp \
      --bind "$PROGS:/mnt:ro" --bind "$REPO/tests/runtimes:/src:ro" \
      --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env HOME=/tmp \
      -- /bin/sh -c "$script" sh "$suffix"
    if [ -z "$suffix" ]; then
      run_rounds runtimes "$bundle" "$rounds"
    else
      # Two busy loops on the host (nice 0, like the work of another
      # tenant), for the whole of this variant's rounds.
      local busy=() i
      for i in 1 2; do
        bash -c 'while :; do :; done' &
        busy+=($!)
      done
      run_rounds runtimes_busy "$bundle" "$rounds"
      kill "${busy[@]}"
      wait "${busy[@]}" 2>/dev/null || true
    fi
  done
  local metrics=() m label
  for m in "go_version|go version" "go_run|go run threads.go" "java_version|java -version" \
           "java_threads|java Threads.java" "node_workers|node workers.js"; do
    label=${m#*|}
    metrics+=(--metric "${m%%|*}_ms|$label|ms|lower")
    metrics+=(--metric "${m%%|*}_ms_busy|$label, both CPUs busy|ms|lower")
  done
  report_levels runtimes runtimes_busy
  report compare "$DOC" runtimes "${REPORT_LEVELS[@]}" "${metrics[@]}" \
    --json "$OUT/runtimes.json" --chart "$CHARTS/runtimes.svg" \
    --title "Multi-threaded runtimes: Go, Java, Node" \
    --note "**What it measures.** Whole commands in a container of the Debian runtimes rootfs (\`crates/testkit/src/debian.rs\`, RUNTIME_PACKAGES: bookworm's golang-go 1.19, openjdk-17-jdk-headless, nodejs 18; read-only, tmpfs on /tmp, GOCACHE there), each timed by \`workload time\` (fork, exec, wait) $runs times after one untimed warm-up per container: \`go version\`; \`go run threads.go\` (the go command builds and links the program, then runs it: 8 goroutines on GOMAXPROCS=4 spin without calls, so only SIGURG preemption lets the ticker goroutine run, allocate and sleep); \`java -version\`; \`java Threads.java\` (the JDK compiles the single-file program in the JVM, then a pool of 4 threads runs 8 tasks); \`node workers.js\` (4 worker_threads). The programs are \`tests/runtimes/\`, the same the tests run. *Both CPUs busy*: the same container while two busy loops (\`bash -c 'while :; do :; done'\`) run on the host beside it, as other tenants' work would. atoll's and runsc's ptrace platforms are not run here." \
    "${PEER_ARGS[@]}" \
    --note "$(sample_note "$rounds rounds of one container per runtime and variant, $runs timed runs per command each") $(load_note)"
}

# One round of bench_nginx at LEVEL: start detached, wait until it answers,
# check keep-alive, run wrk, delete. Samples appended to $OUT/nginx-LEVEL.txt.
nginx_level() {
  local level=$1 bundle=$2 url=$3
  local out=$OUT/nginx-$level.txt log=$LOGS/nginx-$level
  local id="bench-nginx-$level-$$" pid= fail= rt root
  rt=$(level_runtime "$level")
  root=$(level_root "$level" "nginx-$level")
  mkdir -p "$root"
  echo "-- nginx at $level"
  if [ "${level#runsc-}" != "$level" ]; then
    level_cmd "$level" create "$bundle" "$id" "$log" host
    if ! "${LEVEL_CMD[@]}" </dev/null >>"$log.stderr" 2>&1; then
      fail="runsc create failed"
    else
      pid=$("$rt" --root "$root" state "$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
      nsenter -t "$pid" -n ip link set lo up
      # runsc reads its configuration from every command's flags: start
      # needs the platform and network of create.
      "$rt" --root "$root" --platform="${level#runsc-}" --network=host start "$id" \
        >>"$log.stderr" 2>&1 || fail="runsc start failed"
    fi
  else
    level_cmd "$level" run "$bundle" "$id" "$log" host
    # `atoll run -d`: the detach flag goes right after `run`.
    local cmd=("${LEVEL_CMD[@]}") j
    for j in "${!cmd[@]}"; do
      if [ "${cmd[$j]}" = run ]; then
        cmd=("${cmd[@]:0:$((j + 1))}" -d "${cmd[@]:$((j + 1))}")
        break
      fi
    done
    if ! "${cmd[@]}" </dev/null >>"$log.stderr" 2>&1; then
      fail="atoll run -d failed"
    else
      pid=$("$rt" --root "$root" state "$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
    fi
  fi
  if [ -z "$fail" ]; then
    # Ready when a GET answers (python3 on the host, as the tests do).
    if ! nsenter -t "$pid" -n python3 - "$url" <<'PY'
import sys, time, urllib.request
deadline = time.time() + 30
while True:
    try:
        urllib.request.urlopen(sys.argv[1], timeout=3).read()
        break
    except Exception as e:
        if time.time() > deadline:
            sys.exit(f"nginx did not answer: {e}")
        time.sleep(0.2)
PY
    then
      fail="nginx did not answer $url within 30 s"
    fi
  fi
  if [ -n "$fail" ]; then
    { failure_line "$level" nginx "$fail" "$log.stderr"; cat "$out" 2>/dev/null || true; } >"$out.tmp"
    mv "$out.tmp" "$out"
  else
    nsenter -t "$pid" -n python3 - "$NGINX_PROBE" >>"$out" <<'PY'
import socket, sys
n = int(sys.argv[1])
req = b"GET /index.html HTTP/1.1\r\nHost: bench\r\n\r\n"
s = socket.create_connection(("127.0.0.1", 8080), timeout=2)
done = 0
try:
    for _ in range(n):
        s.sendall(req)
        got = b""
        while b"</html>" not in got:
            d = s.recv(65536)
            if not d:
                raise EOFError("connection closed")
            got += d
        done += 1
except Exception as e:
    print(f"keep-alive probe: stalled after {done} of {n} requests: {e!r}", file=sys.stderr)
    # Bytes of the unanswered request still queued in nginx's socket?
    import subprocess
    ss = subprocess.run(["ss", "-Htn", "state", "established", "( sport = :8080 )"],
                        capture_output=True, text=True).stdout.split()
    if ss:
        print(f"keepalive_stall_recvq {ss[0]}")
print(f"keepalive_probe {done}")
PY
    local mode hdr rps
    for mode in keepalive close; do
      hdr=()
      [ "$mode" = keepalive ] || hdr=(-H "Connection: close")
      timeout 30 nsenter -t "$pid" -n wrk -t1 -c8 -d1s "${hdr[@]}" "$url" >/dev/null 2>&1 || true
      rps=$(timeout $((WRK_SECS + 30)) nsenter -t "$pid" -n wrk -t1 -c8 -d"${WRK_SECS}s" "${hdr[@]}" "$url" \
        | tee -a "$log.wrk" | awk '/^Requests\/sec:/ {print $2}')
      [ -z "$rps" ] || echo "rps_$mode $rps" >>"$out"
    done
  fi
  tail -n 4 "$out"
  "$rt" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
  assert_empty_root "$rt" "$root"
}

# The vm level (bench/vm.sh): inside the test VM of scripts/test-vm.sh,
# since this machine's /dev/kvm cannot boot ordinary guests; a few minutes
# of emulation. atoll run's first output against QEMU -M microvm booting
# the same kernel and initramfs to /init, VM exits per boot, the VMM's
# memory beyond guest RAM. The guest assets are rebuilt first: their
# initramfs holds the agent of this tree.
bench_vm() {
  local vmm=$TARGET/release/atoll-vmm note
  note="**What it measures.** This machine's \`/dev/kvm\` is a KVM-PVM that boots no ordinary guest, so the whole section runs inside the test VM of \`scripts/test-vm.sh\` (QEMU software emulation, \`-cpu max\` with nested SVM, $(nproc) vCPUs), where KVM is nested under TCG: every VM exit costs tens of microseconds and guest code runs at emulation speed, so absolute times are 10-30x those of hardware KVM; read the ratio to QEMU (the same KVM, the same kernel and initramfs, in the same test VM) and the counts. \`bench/vm.sh\` (figures by \`bench/vm-in.sh\`): atoll's first output is that of the container's process, after the guest's boot, the agent, the virtio-fs mount of the rootfs and the process's start; QEMU's is the agent's first console line as \`/init\` (kernel command line \`atoll.selftest\`), before any of that. Both guests' kernels get the same command line: the VMM's boot options (\`atoll_vmm::BASE_CMDLINE\`: no clocksource watchdog, no timer check, expedited RCU, no crypto self-tests, one serial port, no PS/2 probing), which \`bench/vm-in.sh\` gives QEMU's guest too (\`atoll-vmm --base-cmdline\`), and \`quiet\`. The guest assets are \`scripts/vm-assets.sh\`'s for both: a \`vmlinux\` whose zero blocks are holes (atoll's loader skips them; QEMU reads them as zeros). VM exits are counted in atoll-vmm's exit loop (\`atoll-vmm --stats\`, the same VMM as the vm level's). The VMM's memory is read from \`/proc/PID/smaps\` of a running vm-level container's init (the VMM), its largest mapping being guest RAM (256 MiB without a memory limit)."
  local fc="On a host with hardware KVM the targets are Firecracker's (guest init within 125 ms, VMM overhead under 5 MiB); this machine cannot measure them."
  echo "$fc"
  if ! command -v qemu-system-x86_64 >/dev/null || [ ! -x "$vmm" ]; then
    report vm "$DOC" vm /dev/null --note "$note" \
      --note "Not run on $(date -u '+%Y-%m-%d %H:%M UTC'): $( [ -x "$vmm" ] || echo "no $vmm (cargo build --release -p atoll-vmm); ")$(command -v qemu-system-x86_64 >/dev/null || echo 'no qemu-system-x86_64 (scripts/deps.sh --all)')."
    return 0
  fi
  ./scripts/vm-assets.sh "$TARGET/vm-assets" >"$LOGS/vm-assets.log" 2>&1
  rm -f "$OUT/vm.results"
  ATOLL=$ATOLL ATOLL_VMM=$vmm VM_BENCH_RESULTS=$OUT/vm.results VM_BENCH_ROUNDS=$( [ "$QUICK" = 0 ] && echo 3 || echo 1 ) \
    ./bench/vm.sh 2>&1 | tee "$LOGS/vm.log" || true
  [ -f "$OUT/vm.results" ] || : >"$OUT/vm.results"
  report vm "$DOC" vm "$OUT/vm.results" --note "$note" --note "$fc" \
    --note "$(sample_note "$(sed -n 's/^rounds //p' "$OUT/vm.results" | head -n1) rounds of each timed boot, the median shown; Debian's cloud kernel $(ls "$TARGET/vm-cache" 2>/dev/null | head -n1) as guest and test VM kernel") $(load_note)"
}

for b in "${SELECTED[@]}"; do
  echo "== bench: $b"
  SECTION_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
  "bench_$b"
done

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | sed -n 1p)
runsc_meta="not run: no runsc at $RUNSC_WANT"
[ -z "$RUNSC" ] || runsc_meta="$("$RUNSC" --version | sed -n 1p) (gVisor, ../shared/peers/runsc), platforms systrap and ptrace, \`--network=none\` (nginx: \`--network=host\`), its defaults otherwise (directfs, \`--overlay2=root:self\`, \`--file-access=exclusive\` for the rootfs and shared for other mounts)"
report meta "$DOC" \
  "date=$(date -u '+%Y-%m-%d %H:%M UTC')" \
  "machine=$(nproc) vCPU ($cpu), $(free -g | awk '/^Mem:/{print $2}') GiB, nested-virtualized VM" \
  "load average=$LOAD_AT_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end (1, 5, 15 min; other work on the machine competes with every measurement)" \
  "kernel=$(uname -r), cgroup $( [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] && echo v2 || echo v1/hybrid)" \
  "atoll=$("$ATOLL" --version 2>/dev/null | sed -n 1p), binary built from commit $("$ATOLL" --version 2>/dev/null | sed -n 's/^commit: //p' | cut -c1-7) (working tree: $(git --no-optional-locks -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git --no-optional-locks -C "$REPO" diff --quiet HEAD -- crates 2>/dev/null || echo ', crates/ dirty')); userspace level on both platforms, \`--platform systrap\` and \`--platform ptrace\`" \
  "runsc=$runsc_meta" \
  "runc=$("$RUNC" --version | sed -n 1p) (Debian $(dpkg-query -W -f='${Version}' runc 2>/dev/null))" \
  "youki=$( [ -n "$YOUKI" ] && "$YOUKI" --version | sed -n '1s/^youki version: /youki /p' || echo 'not run') (crates.io, libcontainer 0.7 line)" \
  "hyperfine=$(hyperfine --version)" \
  "wrk=$(wrk -v 2>&1 | sed -n 1p | cut -d' ' -f1-2)" \
  "gcc=gcc $(gcc -dumpfullversion) (bench/progs, -O2 -static)" \
  "charts=matplotlib $("$VENV/bin/python3" -c 'import matplotlib; print(matplotlib.__version__)') (bench/charts.py)" \
  "benchmarks run=${SELECTED[*]}$( [ "$QUICK" = 0 ] || echo ' (--quick)')$( [ ${#SELECTED[@]} = ${#ALL_BENCHMARKS[@]} ] || echo '; the other sections are from earlier runs (each section says when), possibly of another binary and kernel')"
echo "wrote $DOC"
