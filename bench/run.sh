#!/usr/bin/env bash
# Benchmark harness: atoll's isolation levels against each other and against
# runc (Debian's package) and youki (built from crates.io), results written
# into docs/benchmarks.md.
#
# usage: bench/run.sh [--quick] [BENCHMARK...]
#   --quick     fewer warm-up runs and samples (a smoke run, not for the docs
#               of record; the sections say when it was a quick run)
#   BENCHMARK   only these benchmarks (default: all of them): lifecycle
#               syscall python files pipe nginx
#
# Environment: ATOLL (default target/release/atoll), RUNC (default: runc on
# PATH), YOUKI (default: youki 0.7.0, built from crates.io into
# target/youki-0.7.0 on first use by the lifecycle benchmark: the
# release on the same libcontainer 0.7 line atoll is built on, with the
# features atoll's libcontainer has: cgroup v1 and v2, seccomp),
# BENCH_OUT (raw results and logs, default target/bench),
# DEBIAN_ROOTFS (default: the tests' cached Debian rootfs, built through
# `cargo run -p atoll-testkit --example debian-rootfs` when missing).
#
# Adding a benchmark: write a function bench_NAME that measures into
# "$OUT/NAME*" and renders a section with `report hyperfine NAME` (whole
# commands, timed by hyperfine) or `report compare NAME` (samples printed by
# bench/progs/workload at each level), then add NAME to ALL_BENCHMARKS.
set -euo pipefail

SELF=$(realpath "${BASH_SOURCE[0]}")
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

ALL_BENCHMARKS=(lifecycle syscall python files pipe nginx)

QUICK=0
SELECTED=()
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,24p' "$SELF" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
# per time-bounded sample of the in-container micro-benchmarks; python3
# starts and the rounds they are spread over; wrk runs and seconds.
# The lifecycle benchmark runs its hyperfine in LIFECYCLE_ROUNDS rounds
# (RUNS in all), so that a burst of other work on the shared machine does not
# fall on one runtime's runs only.
if [ "$QUICK" = 1 ]; then
  WARMUP=2; RUNS=10; LIFECYCLE_ROUNDS=2
  SAMPLES=2; SECS=0.3; SPAWNS=6; PY_ROUNDS=2; WRK_RUNS=1; WRK_SECS=2
else
  WARMUP=5; RUNS=50; LIFECYCLE_ROUNDS=5
  SAMPLES=5; SECS=1; SPAWNS=20; PY_ROUNDS=4; WRK_RUNS=3; WRK_SECS=5
fi
# A benchmark container that has not finished after this long has hung.
LIMIT=300

DOC=$REPO/docs/benchmarks.md
OUT=${BENCH_OUT:-$REPO/target/bench}
LOGS=$OUT/logs
PROGS=$OUT/progs
REL_OUT=${OUT#"$REPO"/}

./scripts/deps.sh

ATOLL=$(realpath "${ATOLL:-$REPO/target/release/atoll}")
RUNC=$(command -v "${RUNC:-runc}")
if [ ! -x "$ATOLL" ]; then
  echo "bench/run.sh: $ATOLL is missing: run 'make build' (or 'make bench')" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "bench/run.sh: needs root (both runtimes run rootful containers)" >&2
  exit 1
fi

# On the host's disk (not a tmpfs): the files benchmark writes into a
# bundle's rootfs under it.
WORK=$(mktemp -d /tmp/atoll-bench.XXXXXX)
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$OUT" "$LOGS" "$PROGS"

# Container ids in a state root, from `list --quiet` (youki 0.7 prints its
# table anyway: its header is dropped and the first column kept).
list_ids() {
  { "$1" --root "$2" list --quiet 2>/dev/null || true; } |
    awk 'NR == 1 && $1 == "ID" && $2 == "PID" { next } { print $1 }'
}

# Force-deletes whatever a failed run left in a state root, then removes the
# temp dir. Runs on every exit.
cleanup() {
  local root id
  for root in "$WORK"/state-atoll*; do
    [ -d "$root" ] || continue
    for id in $("$ATOLL" --root "$root" list --quiet 2>/dev/null || true); do
      "$ATOLL" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
    done
  done
  for root in "$WORK"/state-runc*; do
    [ -d "$root" ] || continue
    for id in $("$RUNC" --root "$root" list --quiet 2>/dev/null || true); do
      "$RUNC" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
    done
  done
  for root in "$WORK"/state-youki*; do
    [ -d "$root" ] && [ -n "$YOUKI" ] || continue
    for id in $(list_ids "$YOUKI" "$root"); do
      "$YOUKI" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
    done
  done
  # tmpfs state roots (bench_lifecycle), once their containers are gone.
  local m
  for m in $(findmnt -rn -o TARGET | grep "^$WORK/" | sort -r); do
    umount "$m" || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

report() { python3 "$REPO/bench/report.py" "$@"; }

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

run_note() {
  local n="$RUNS runs each, in $LIFECYCLE_ROUNDS rounds after $WARMUP warm-up runs each, $(date -u '+%Y-%m-%d %H:%M UTC')"
  [ "$QUICK" = 0 ] || n="$n, **--quick run: indicative only**"
  echo "$n."
}

# Like run_note, for the sampled benchmarks: "$1, date[, quick]."
sample_note() {
  local n="$1, $(date -u '+%Y-%m-%d %H:%M UTC')"
  [ "$QUICK" = 0 ] || n="$n, **--quick run: indicative only**"
  echo "$n."
}

# The C programs of bench/progs, static (they run in any rootfs), compiled
# once per run (a second each).
PROGS_BUILT=0
build_progs() {
  [ "$PROGS_BUILT" = 0 ] || return 0
  local p
  for p in workload ptrace-floor with-id; do
    gcc -O2 -Wall -static -o "$PROGS/$p" "$REPO/bench/progs/$p.c"
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
    local want=${DEBIAN_ROOTFS:-${CARGO_TARGET_DIR:-$REPO/target}/testkit/debian-rootfs}
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

DEBIAN_ENV=(--env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env HOME=/root)

# One line for a FAILED record: reason and the end of the container's stderr.
failure_line() {
  local level=$1 name=$2 why=$3 stderr=$4 tail_
  tail_=$(tail -c 400 "$stderr" 2>/dev/null | tr '\n`' '  ')
  echo "FAILED $why; stderr: \`${tail_:-(empty)}\`; logs: $REL_OUT/logs/$name-$level.*"
}

# Runs the process of BUNDLE to completion at LEVEL; its stdout (the
# samples) goes to $OUT/NAME-LEVEL.txt. A failed or hung run does not stop
# the harness: the file then starts with a FAILED line that the report
# shows, and the logs stay in $OUT/logs (the runtime's log, the container's
# stderr and, at the userspace level, the sandbox log).
run_level() {
  local level=$1 bundle=$2 name=$3
  local out=$OUT/$name-$level.txt root=$WORK/state-atoll-$name
  local id="bench-$name-$level-$$" log=$LOGS/$name-$level
  local extra=() rc=0
  mkdir -p "$root"
  rm -f "$log".log "$log".sandbox.log "$log".stderr
  [ "$level" != userspace ] || extra=(--sandbox-log "$log.sandbox.log")
  echo "-- $name at $level"
  timeout -k 10 "$LIMIT" "$ATOLL" --root "$root" --log "$log.log" --isolation "$level" \
    run "${extra[@]}" --bundle "$bundle" "$id" </dev/null >"$out.tmp" 2>"$log.stderr" || rc=$?
  if [ "$rc" = 0 ]; then
    mv "$out.tmp" "$out"
  else
    local why="exit status $rc"
    [ "$rc" != 124 ] || why="timed out after ${LIMIT}s"
    { failure_line "$level" "$name" "$why" "$log.stderr"; cat "$out.tmp"; } >"$out"
    rm -f "$out.tmp"
    "$ATOLL" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
  fi
  cat "$out"
  assert_empty_root "$ATOLL" "$root"
}

# Runs BUNDLE ROUNDS times at each level, alternating native and userspace
# within a round, so that load from elsewhere on the shared machine hits both
# levels alike; then AFTER (a command), if given. Each container run adds its
# samples to $OUT/NAME-LEVEL.txt. A level that failed is not run again; its
# FAILED line comes first in the file, where the report looks for it.
run_rounds() {
  local name=$1 bundle=$2 rounds=$3 after=${4:-}
  local level r acc
  for level in native userspace; do : >"$OUT/$name-$level.acc"; done
  for r in $(seq "$rounds"); do
    echo "-- $name: round $r of $rounds"
    for level in native userspace; do
      acc=$OUT/$name-$level.acc
      ! grep -q '^FAILED' "$acc" || continue
      run_level "$level" "$bundle" "$name" >/dev/null
      cat "$OUT/$name-$level.txt" | tee -a "$acc" | sed "s/^/$level: /"
    done
    [ -z "$after" ] || $after
  done
  for level in native userspace; do
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
  local root=${CARGO_TARGET_DIR:-$REPO/target}/youki-$YOUKI_VERSION
  if [ ! -x "$root/bin/youki" ]; then
    echo "building youki $YOUKI_VERSION from crates.io (cargo install, a few minutes)..." >&2
    CARGO_TARGET_DIR=$root/build cargo install youki --version "=$YOUKI_VERSION" --locked \
      --no-default-features --features v1,v2,seccomp --root "$root" >&2
  fi
  YOUKI=$root/bin/youki
}

# create+start+wait+delete of /bin/true in the busybox bundle, one foreground
# command per runtime: `atoll run`, `youki run` and `runc run` all delete on
# exit.
bench_lifecycle() {
  build_progs
  ensure_youki
  local bundle=$WORK/bundle-true
  local root_atoll=$WORK/state-atoll-lifecycle root_runc=$WORK/state-runc-lifecycle
  local root_youki=$WORK/state-youki-lifecycle root
  # The state roots on a tmpfs, as /run is on a standard host (where every
  # runtime keeps its state by default: /run/runc, /run/youki, /run/atoll);
  # not on the disk under $WORK, where deleting a file can wait for a
  # synchronous discard (a disk mounted with -o discard, as here).
  for root in "$root_atoll" "$root_runc" "$root_youki"; do
    mkdir -p "$root"
    mount -t tmpfs -o size=64m,mode=0700 tmpfs "$root"
  done
  ./scripts/default-bundle.sh "$ATOLL" "$bundle" /bin/true >/dev/null

  local with_id=$PROGS/with-id
  local cmd_atoll="$with_id $ATOLL --root $root_atoll --isolation native run --bundle $bundle"
  local cmd_user="$with_id $ATOLL --root $root_atoll --isolation userspace run --bundle $bundle"
  local cmd_youki="$with_id $YOUKI --root $root_youki run --bundle $bundle"
  local cmd_runc="$with_id $RUNC --root $root_runc run --bundle $bundle"

  # All must work before they are timed (hyperfine would stop at the first
  # failure anyway, but with less to go on).
  $cmd_atoll
  $cmd_user
  $cmd_youki
  $cmd_runc
  assert_empty_root "$ATOLL" "$root_atoll"
  assert_empty_root "$YOUKI" "$root_youki"
  assert_empty_root "$RUNC" "$root_runc"

  local r per=$((RUNS / LIFECYCLE_ROUNDS)) rounds=()
  for r in $(seq "$LIFECYCLE_ROUNDS"); do
    echo "-- lifecycle: round $r of $LIFECYCLE_ROUNDS"
    hyperfine --shell=none --warmup "$WARMUP" --runs "$per" \
      --export-json "$OUT/lifecycle-$r.json" \
      --command-name "atoll native" "$cmd_atoll" \
      --command-name "atoll userspace" "$cmd_user" \
      --command-name youki "$cmd_youki" \
      --command-name runc "$cmd_runc"
    rounds+=("$OUT/lifecycle-$r.json")
  done
  report merge-hyperfine "$OUT/lifecycle.json" "${rounds[@]}"

  assert_empty_root "$ATOLL" "$root_atoll"
  assert_empty_root "$YOUKI" "$root_youki"
  assert_empty_root "$RUNC" "$root_runc"

  local rel_bundle='$TMP/bundle' rel_state='$TMP/state' with=bench/progs/with-id
  report hyperfine "$DOC" lifecycle "$OUT/lifecycle.json" \
    --title "Container lifecycle: create + start + wait + delete of /bin/true" \
    --baseline runc \
    --note "One foreground \`run\` per container (create, start, wait for exit, delete) of \`/bin/true\` in the busybox bundle made by \`scripts/default-bundle.sh\`; the same bundle and config.json (no cgroupsPath, no seccomp profile) for every runtime, each with a private \`--root\` on a tmpfs (as /run is on a standard host; this machine's /run is on its disk, mounted with \`discard\`, where deleting a runtime's state files waits for synchronous discards). atoll at both isolation levels: native (namespaces, cgroups, and atoll's default seccomp profile, which the others do not apply to this bundle: runc-class) and userspace (the same plus the application kernel and its gofer started in the container, every syscall of \`/bin/true\` served by the kernel). youki is $("$YOUKI" --version | sed -n '1s/^youki version: //p') from crates.io (\`cargo install youki --version $YOUKI_VERSION --locked --no-default-features --features v1,v2,seccomp\`: the release on the libcontainer 0.7 line atoll is built on, with the same libcontainer features); it and runc copy their own binary into a sealed memfd and re-exec it on every command (their defence against CVE-2019-5736), which atoll does not. Each invocation gets a fresh container id from \`bench/progs/with-id.c\`, the same wrapper for every runtime, which execs the runtime with SIGCHLD blocked: youki 0.7's foreground \`run\` blocks signals only after starting the container, so a \`/bin/true\` that exits first went unnoticed and youki waited forever; blocked, the signal stays pending (atoll blocks it itself before starting the container, runc's Go runtime unblocks it). hyperfine runs without a shell (\`--shell=none\`), in $LIFECYCLE_ROUNDS rounds of $((RUNS / LIFECYCLE_ROUNDS)) runs of each command, so that a burst of other work on the machine does not fall on one runtime only; the table merges the rounds." \
    --note "$(run_note)" \
    --cmd "atoll native=$with target/release/atoll --root $rel_state/atoll --isolation native run --bundle $rel_bundle" \
    --cmd "atoll userspace=$with target/release/atoll --root $rel_state/atoll --isolation userspace run --bundle $rel_bundle" \
    --cmd "youki=$with target/youki-$YOUKI_VERSION/bin/youki --root $rel_state/youki run --bundle $rel_bundle" \
    --cmd "runc=$with runc --root $rel_state/runc run --bundle $rel_bundle"
}

# Issue 3: the cost of one syscall. getppid in a loop at both levels (the
# static workload in the busybox bundle), and on the host the bare ptrace
# round trip the userspace level cannot go below.
bench_syscall() {
  build_progs
  local bundle
  bundle=$(micro_bundle)
  make_config "$bundle" -- /bench/workload getppid "$SECS" 1
  : >"$OUT/syscall-floor.txt"
  run_rounds syscall "$bundle" "$SAMPLES" syscall_floor
  report syscall "$DOC" syscall \
    --native "$OUT/syscall-native.txt" --userspace "$OUT/syscall-userspace.txt" \
    --floor "$OUT/syscall-floor.txt" --json "$OUT/syscall.json" \
    --title "Per-syscall cost: getppid, and the ptrace floor" \
    --note "**What it measures.** A static C program (\`bench/progs/workload.c\`, \`workload getppid\`) calls getppid in chunks of 1000 inside a busybox container, reading CLOCK_MONOTONIC once per chunk until a sample has run ${SECS} s; a sample is elapsed time / calls. Inside the userspace level clock_gettime is itself a served syscall, which is why the loop is timed as a whole: the clock costs one call in a thousand. getppid does no work in either kernel, so the figure is the price of crossing into the kernel and back: a host syscall (plus the native level's seccomp filter) at native, a whole trip through atoll's application kernel at userspace." \
    --note "**The floor.** \`bench/progs/ptrace-floor.c\` runs on the host in the same run, one sample after each round of the two containers: it forks a child that loops on a raw getppid syscall, PTRACE_SEIZEs it and, at every syscall stop, only resumes it with PTRACE_SYSEMU (the syscall is skipped, nothing is read or answered). One such round trip (tracee traps, host scheduler switches to the tracer, its waitpid returns, it resumes the tracee) is the least any syscall served through ptrace can cost on this machine, whatever the kernel above does; the second floor row adds the PTRACE_GETREGS and PTRACE_SETREGS that answering a syscall needs at minimum. *Above the floor* is userspace getppid minus the bare floor (the median of the differences within each round): what atoll's kernel adds (its event loop, decoding, dispatch, bookkeeping, and the extra ptrace calls it makes per stop). Neither the floor's processes nor atoll's are pinned to a CPU, and on a loaded machine the floor rows swing the most: every ptrace request and wait is a chance for the tracer to lose its CPU, so compare rows of the same run only." \
    --note "$(sample_note "$SAMPLES rounds (native, userspace, floor: one ${SECS} s sample each)")"
}

# One sample of the ptrace floor on the host (after each round of bench_syscall).
syscall_floor() {
  "$PROGS/ptrace-floor" "$SECS" 1 | tee -a "$OUT/syscall-floor.txt" | sed 's/^/host: /'
}

# Issue 3: python3 -c pass, fork+exec+wait from inside a Debian container.
bench_python() {
  build_progs
  local bundle=$WORK/bundle-python
  debian_rootfs
  local warm=2 per=$(( (SPAWNS + PY_ROUNDS - 1) / PY_ROUNDS ))
  make_config "$bundle" --rootfs "$DEBIAN" --readonly --tmpfs /tmp \
    --bind "$PROGS:/mnt:ro" "${DEBIAN_ENV[@]}" \
    -- /mnt/workload spawn "$per" "$warm" /usr/bin/python3 -c pass
  run_rounds python "$bundle" "$PY_ROUNDS"
  report compare "$DOC" python --json "$OUT/python.json" \
    --level "native=$OUT/python-native.txt" --level "userspace=$OUT/python-userspace.txt" \
    --metric "spawn_ms|python3 -c pass|ms|lower" \
    --title "Python startup: python3 -c pass" \
    --note "**What it measures.** Inside one container on the tests' Debian bookworm rootfs (\`crates/testkit/src/debian.rs\`, used in place and read-only, tmpfs on /tmp), \`workload spawn\` forks, execs \`/usr/bin/python3 -c pass\` and waits for it, $warm times as warm-up (page cache, the kernel's caches) and then $per times timed, each with two clock reads; $PY_ROUNDS such containers per level, alternating native and userspace. One start of CPython loads the dynamic linker, libc and libpython, reads and stats a few hundred files of the standard library (encodings, site) and maps them: a mix of exec, mmap and file syscalls served through the gofer at userspace. Container creation is not included (see the lifecycle section)." \
    --note "$(sample_note "$((per * PY_ROUNDS)) timed starts per level in $PY_ROUNDS rounds")"
}

# Issue 4: file I/O on the rootfs, which is a directory of the host (the
# bundle's rootfs under /tmp on the host's disk), not a tmpfs.
bench_files() {
  build_progs
  local bundle
  bundle=$(micro_bundle)
  make_config "$bundle" --writable -- /bench/workload files /bench/data 1 "$SECS"
  run_rounds files "$bundle" "$SAMPLES"
  report compare "$DOC" files --json "$OUT/files.json" \
    --level "native=$OUT/files-native.txt" --level "userspace=$OUT/files-userspace.txt" \
    --metric "write_4k_mibps|write 64 MiB in 4 KiB blocks|MiB/s|higher" \
    --metric "write_1m_mibps|write 64 MiB in 1 MiB blocks|MiB/s|higher" \
    --metric "read_4k_mibps|read 64 MiB in 4 KiB blocks|MiB/s|higher" \
    --metric "read_1m_mibps|read 64 MiB in 1 MiB blocks|MiB/s|higher" \
    --metric "open_close_ns|open + close|µs per pair|lower|0.001" \
    --metric "stat_ns|stat|µs per call|lower|0.001" \
    --title "File I/O on the container's rootfs" \
    --note "**What it measures.** \`workload files\` in the busybox bundle with a writable rootfs: the files live in the bundle's rootfs, a directory on the host's ext4 disk, reached directly by the native level and through the gofer (the only process that opens the container's files) at the userspace level; no tmpfs is involved. Per sample: a 64 MiB file is created (O_TRUNC after an unlink) and written in 1 MiB, then read back; then the same in 4 KiB blocks (open to close timed, no fsync: both levels end in the host's page cache, so this is the cost of the syscall path, not of the disk). Then open(O_RDONLY)+close and stat of a small file two directories deep, each a loop timed in chunks of 100 for ${SECS} s." \
    --note "$(sample_note "$SAMPLES rounds of one native and one userspace container, one sample per measure each")"
}

# Issue 4: a pipe ping-pong between two processes.
bench_pipe() {
  build_progs
  local bundle
  bundle=$(micro_bundle)
  make_config "$bundle" -- /bench/workload pipe "$SECS" 1
  run_rounds pipe "$bundle" "$SAMPLES"
  report compare "$DOC" pipe --json "$OUT/pipe.json" \
    --level "native=$OUT/pipe-native.txt" --level "userspace=$OUT/pipe-userspace.txt" \
    --metric "pipe_rtt_per_s|1-byte round trips between two processes|round trips/s|higher" \
    --title "Pipe ping-pong" \
    --note "**What it measures.** \`workload pipe\` forks; parent and child bounce one byte over two pipes (write, the other side's blocking read wakes, it writes back). A round trip is two writes, two reads and two wake-ups of a blocked process: at the userspace level the pipes live in atoll's kernel and each wake-up goes through its scheduler. Timed in chunks of 100 round trips for ${SECS} s per sample." \
    --note "$(sample_note "$SAMPLES rounds of one native and one userspace container, one sample each")"
}

# Issue 4: nginx requests per second with wrk, from the host into the
# container's own network namespace (nsenter -n, as the service tests do).
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
  local url=http://127.0.0.1:8080/index.html level probes=()
  for level in native userspace; do
    nginx_level "$level" "$bundle" "$url"
    probes+=("$level $(sed -n 's/^keepalive_probe //p' "$OUT/nginx-$level.txt" | head -1) $(sed -n 's/^keepalive_stall_recvq //p' "$OUT/nginx-$level.txt" | head -1)")
  done
  local probe_note="Keep-alive check before the load (one connection, ${NGINX_PROBE} sequential requests, 2 s timeout each): answered"
  local p
  for p in "${probes[@]}"; do
    set -- $p
    probe_note="$probe_note $1 ${2:-n/a}/${NGINX_PROBE},"
  done
  probe_note="${probe_note%,}."
  for p in "${probes[@]}"; do
    set -- $p
    if [ "${2:-0}" -lt "$NGINX_PROBE" ]; then
      local queued=
      [ -z "${3:-}" ] || queued=" (when the probe gave up, the server's end of the connection still held $3 unread bytes: the request had arrived and nginx was never told)"
      probe_note="$probe_note **At $1 a keep-alive connection stopped being answered**$queued: its keep-alive row measures that stall, wrk waiting on stuck connections, not throughput; its row with a new connection per request is the usable figure."
    fi
  done
  report compare "$DOC" nginx --json "$OUT/nginx.json" \
    --level "native=$OUT/nginx-native.txt" --level "userspace=$OUT/nginx-userspace.txt" \
    --metric "rps_keepalive|HTTP GET, keep-alive connections|requests/s|higher" \
    --metric "rps_close|HTTP GET, a new connection per request|requests/s|higher" \
    --title "nginx: requests per second (wrk)" \
    --note "**What it measures.** Debian's nginx-light (1 worker, access log off) in a container of the tests' Debian rootfs with its own network namespace, serving a $(stat -c %s "$site/html/index.html")-byte static page from a read-only bind mount. [wrk](https://github.com/wg/wrk) runs on the host inside the container's network namespace (\`nsenter -t PID -n\`, the way \`crates/atoll/tests/userspace_services.rs\` reaches its services), 1 thread and 8 connections for ${WRK_SECS} s, ${WRK_RUNS} runs per mode after a 1 s warm-up: keep-alive (wrk's default) and with \`Connection: close\` (a TCP connect, accept and close per request). wrk and nginx share the 2 vCPUs." \
    --note "$probe_note" \
    --note "$(sample_note "$WRK_RUNS wrk runs per mode")"
}

NGINX_PROBE=200

# One level of bench_nginx: start detached, wait until it answers, check
# keep-alive, run wrk, delete. Samples to $OUT/nginx-LEVEL.txt.
nginx_level() {
  local level=$1 bundle=$2 url=$3
  local out=$OUT/nginx-$level.txt root=$WORK/state-atoll-nginx
  local id="bench-nginx-$level-$$" log=$LOGS/nginx-$level pid=
  local extra=() fail=
  mkdir -p "$root"
  rm -f "$log".log "$log".sandbox.log "$log".stderr "$log".wrk "$out"
  [ "$level" != userspace ] || extra=(--sandbox-log "$log.sandbox.log")
  echo "-- nginx at $level"
  if ! "$ATOLL" --root "$root" --log "$log.log" --isolation "$level" \
      run -d "${extra[@]}" --bundle "$bundle" "$id" </dev/null >"$log.stderr" 2>&1; then
    fail="atoll run -d failed"
  else
    pid=$("$ATOLL" --root "$root" state "$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
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
    failure_line "$level" nginx "$fail" "$log.stderr" >"$out"
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
    local mode hdr r rps
    for mode in keepalive close; do
      hdr=()
      [ "$mode" = keepalive ] || hdr=(-H "Connection: close")
      timeout 30 nsenter -t "$pid" -n wrk -t1 -c8 -d1s "${hdr[@]}" "$url" >/dev/null 2>&1 || true
      for r in $(seq "$WRK_RUNS"); do
        rps=$(timeout $((WRK_SECS + 30)) nsenter -t "$pid" -n wrk -t1 -c8 -d"${WRK_SECS}s" "${hdr[@]}" "$url" \
          | tee -a "$log.wrk" | awk '/^Requests\/sec:/ {print $2}')
        [ -z "$rps" ] || echo "rps_$mode $rps" >>"$out"
      done
    done
  fi
  cat "$out"
  "$ATOLL" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
  assert_empty_root "$ATOLL" "$root"
}

for b in "${SELECTED[@]}"; do
  echo "== bench: $b"
  "bench_$b"
done

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
report meta "$DOC" \
  "date=$(date -u '+%Y-%m-%d %H:%M UTC')" \
  "machine=$(nproc) vCPU ($cpu), $(free -g | awk '/^Mem:/{print $2}') GiB, nested-virtualized VM" \
  "load average=$LOAD_AT_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end (1, 5, 15 min; other work on the machine competes with every measurement)" \
  "kernel=$(uname -r), cgroup $( [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] && echo v2 || echo v1/hybrid)" \
  "atoll=$("$ATOLL" --version 2>/dev/null | head -1), binary built from commit $("$ATOLL" --version 2>/dev/null | sed -n 's/^commit: //p' | cut -c1-7) (working tree: $(git --no-optional-locks -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git --no-optional-locks -C "$REPO" diff --quiet HEAD -- crates 2>/dev/null || echo ', crates/ dirty'))" \
  "runc=$("$RUNC" --version | head -1) (Debian $(dpkg-query -W -f='${Version}' runc 2>/dev/null))" \
  "youki=$( [ -n "$YOUKI" ] && "$YOUKI" --version | sed -n '1s/^youki version: /youki /p' || echo 'not run') (crates.io, libcontainer 0.7 line)" \
  "hyperfine=$(hyperfine --version)" \
  "wrk=$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)" \
  "gcc=gcc $(gcc -dumpfullversion) (bench/progs, -O2 -static)" \
  "benchmarks run=${SELECTED[*]}$( [ "$QUICK" = 0 ] || echo ' (--quick)')$( [ ${#SELECTED[@]} = ${#ALL_BENCHMARKS[@]} ] || echo '; the other sections are from earlier runs (each section says when), possibly of another binary and kernel')"
echo "wrote $DOC"
