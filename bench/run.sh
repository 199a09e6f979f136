#!/usr/bin/env bash
# Benchmark harness: atoll against runc (Debian's package), measured with
# hyperfine, results written into docs/benchmarks.md.
#
# usage: bench/run.sh [--quick] [BENCHMARK...]
#   --quick     fewer warm-up and measured runs (a smoke run, not for the docs
#               of record; the section says when it was a quick run)
#   BENCHMARK   only these benchmarks (default: all of them): lifecycle
#
# Environment: ATOLL (default target/release/atoll), RUNC (default: runc on
# PATH), BENCH_OUT (raw hyperfine JSON, default target/bench).
#
# Adding a benchmark: write a function bench_NAME that runs hyperfine with
# --export-json "$OUT/NAME.json" and renders it with `report hyperfine NAME`,
# then add NAME to ALL_BENCHMARKS.
set -euo pipefail

SELF=$(realpath "${BASH_SOURCE[0]}")
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

ALL_BENCHMARKS=(lifecycle)

QUICK=0
SELECTED=()
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,15p' "$SELF" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "bench/run.sh: unknown option $arg" >&2; exit 2 ;;
    *)
      if [[ " ${ALL_BENCHMARKS[*]} " != *" $arg "* ]]; then
        echo "bench/run.sh: unknown benchmark $arg (have: ${ALL_BENCHMARKS[*]})" >&2; exit 2
      fi
      SELECTED+=("$arg") ;;
  esac
done
[ ${#SELECTED[@]} -gt 0 ] || SELECTED=("${ALL_BENCHMARKS[@]}")

if [ "$QUICK" = 1 ]; then
  WARMUP=2; RUNS=10
else
  WARMUP=5; RUNS=50
fi

DOC=$REPO/docs/benchmarks.md
OUT=${BENCH_OUT:-$REPO/target/bench}
WITH_ID=$REPO/bench/with-id.sh

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

WORK=$(mktemp -d /tmp/atoll-bench.XXXXXX)
mkdir -p "$OUT"

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
  rm -rf "$WORK"
}
trap cleanup EXIT

report() { python3 "$REPO/bench/report.py" "$@"; }

# Fails unless a state root holds no container: every measured command must
# clean up after itself, or it would be doing less work than it claims.
assert_empty_root() {
  local runtime=$1 root=$2 left
  left=$("$runtime" --root "$root" list --quiet 2>/dev/null || true)
  if [ -n "$left" ]; then
    echo "bench/run.sh: $runtime left containers in $root: $left" >&2
    exit 1
  fi
}

run_note() {
  local n="$RUNS runs each after $WARMUP warm-up runs, $(date -u '+%Y-%m-%d %H:%M UTC')"
  [ "$QUICK" = 0 ] || n="$n, **--quick run: indicative only**"
  echo "$n."
}

# create+start+wait+delete of /bin/true in the busybox bundle, one foreground
# command per runtime: `atoll run` and `runc run` both delete on exit.
bench_lifecycle() {
  local bundle=$WORK/bundle-true
  local root_atoll=$WORK/state-atoll-lifecycle root_runc=$WORK/state-runc-lifecycle
  mkdir -p "$root_atoll" "$root_runc"
  ./scripts/default-bundle.sh "$ATOLL" "$bundle" /bin/true >/dev/null

  local cmd_atoll="$WITH_ID $ATOLL --root $root_atoll --isolation native run --bundle $bundle"
  local cmd_runc="$WITH_ID $RUNC --root $root_runc run --bundle $bundle"

  # Both must work before they are timed (hyperfine would stop at the first
  # failure anyway, but with less to go on).
  $cmd_atoll
  $cmd_runc
  assert_empty_root "$ATOLL" "$root_atoll"
  assert_empty_root "$RUNC" "$root_runc"

  hyperfine --shell=none --warmup "$WARMUP" --runs "$RUNS" \
    --export-json "$OUT/lifecycle.json" \
    --command-name atoll "$cmd_atoll" \
    --command-name runc "$cmd_runc"

  assert_empty_root "$ATOLL" "$root_atoll"
  assert_empty_root "$RUNC" "$root_runc"

  local rel_bundle='$TMP/bundle' rel_state='$TMP/state'
  report hyperfine "$DOC" lifecycle "$OUT/lifecycle.json" \
    --title "Container lifecycle: create + start + wait + delete of /bin/true" \
    --baseline runc \
    --note "One foreground \`run\` per container (create, start, wait for exit, delete) of \`/bin/true\` in the busybox bundle made by \`scripts/default-bundle.sh\`; the same bundle and config.json (no cgroupsPath, no seccomp profile) for both runtimes, each with a private \`--root\`. atoll at the native isolation level. Each invocation gets a fresh container id from \`bench/with-id.sh\`, the same wrapper for both runtimes; hyperfine runs without a shell (\`--shell=none\`)." \
    --note "$(run_note)" \
    --cmd "atoll=bench/with-id.sh target/release/atoll --root $rel_state/atoll --isolation native run --bundle $rel_bundle" \
    --cmd "runc=bench/with-id.sh runc --root $rel_state/runc run --bundle $rel_bundle"
}

for b in "${SELECTED[@]}"; do
  echo "== bench: $b"
  "bench_$b"
done

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
report meta "$DOC" \
  "date=$(date -u '+%Y-%m-%d %H:%M UTC')" \
  "machine=$(nproc) vCPU ($cpu), $(free -g | awk '/^Mem:/{print $2}') GiB, nested-virtualized VM" \
  "kernel=$(uname -r), cgroup $( [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] && echo v2 || echo v1/hybrid)" \
  "atoll=$("$ATOLL" --version 2>/dev/null | head -1) ($(git --no-optional-locks -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git --no-optional-locks -C "$REPO" diff --quiet HEAD -- crates 2>/dev/null || echo ', dirty'))" \
  "runc=$("$RUNC" --version | head -1) (Debian $(dpkg-query -W -f='${Version}' runc 2>/dev/null))" \
  "hyperfine=$(hyperfine --version)" \
  "benchmarks run=${SELECTED[*]}$( [ "$QUICK" = 0 ] || echo ' (--quick)')"
echo "wrote $DOC"
