#!/usr/bin/env bash
# Runs gVisor's syscall test suite (its test/syscalls/linux/*_test gtest
# binaries, the suite gVisor runs against its Sentry) at atoll's native and
# userspace levels, one busybox container per binary, and writes the
# per-binary table into docs/compatibility.md between the
# `<!-- conformance:begin -->` and `<!-- conformance:end -->` markers.
#
#   GVISOR_SYSCALL_TESTS=DIR|TARBALL scripts/conformance.sh [TEST...]
#
# GVISOR_SYSCALL_TESTS: a directory holding the *_test binaries, or a
# .tar/.tar.xz/.tar.gz of them (static binaries: the busybox rootfs has no
# C++ runtime). The suite is a yardstick, never a dependency of atoll, so it
# is not in the tree. Other variables (all optional):
#   ATOLL               atoll binary (default: the release build)
#   GVISOR_SUITE_COMMIT the suite's gVisor commit, for the table's header
#                       (default 3c5eee17dc45, the one measured here)
#   CONFORMANCE_LEVELS  levels to run (default "native userspace")
#   CONFORMANCE_TIMEOUT seconds per binary (default 300: futex, itimer and
#                       wait take ~150 s even natively)
#   CONFORMANCE_DOC     the file to write (default docs/compatibility.md)
#   CONFORMANCE_OUT     logs and results (default $CARGO_TARGET_DIR/conformance)
# Naming tests runs only those and prints their rows without touching the
# doc: the doc's table is always one whole run, of one date.
#
# Counting: tests = the "Running N tests" gtest announces; passed = "[ OK ]"
# lines; skipped = "[ SKIPPED ]" lines; a test a crash or a timeout kept from
# running counts as failed, and the status column says which.
set -euo pipefail
cd "$(dirname "$0")/.."

die() {
  echo "conformance: $*" >&2
  exit 2
}

SUITE=${GVISOR_SYSCALL_TESTS:-}
[ -n "$SUITE" ] || die "GVISOR_SYSCALL_TESTS is not set: point it at a directory or tarball of gVisor's test/syscalls/linux *_test binaries (built from gVisor commit ${GVISOR_SUITE_COMMIT:-3c5eee17dc45})"
[ -e "$SUITE" ] || die "GVISOR_SYSCALL_TESTS=$SUITE does not exist"
ATOLL=${ATOLL:-${CARGO_TARGET_DIR:-target}/release/atoll}
[ -x "$ATOLL" ] || die "no atoll binary at $ATOLL (build it, or set ATOLL)"
COMMIT=${GVISOR_SUITE_COMMIT:-3c5eee17dc45}
LEVELS=${CONFORMANCE_LEVELS:-native userspace}
TIMEOUT=${CONFORMANCE_TIMEOUT:-300}
DOC=${CONFORMANCE_DOC:-docs/compatibility.md}
OUT=${CONFORMANCE_OUT:-${CARGO_TARGET_DIR:-$PWD/target}/conformance}
[ "$(id -u)" = 0 ] || die "containers need root"
for l in $LEVELS; do
  case $l in native | userspace) ;; *) die "unknown level $l (native, userspace)" ;; esac
done
grep -q '^<!-- conformance:begin -->$' "$DOC" || die "$DOC has no <!-- conformance:begin --> marker"

# The binaries: the directory itself, or the tarball unpacked once.
if [ -d "$SUITE" ]; then
  BIN=$SUITE
else
  BIN=$OUT/bin
  stamp="$(realpath "$SUITE") $(stat -c %Y "$SUITE")"
  if [ "$(cat "$BIN/.from" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$BIN" && mkdir -p "$BIN"
    case $SUITE in
      *.xz) xz -dc "$SUITE" | tar -C "$BIN" -xf - ;;
      *.gz) gzip -dc "$SUITE" | tar -C "$BIN" -xf - ;;
      *) tar -C "$BIN" -xf "$SUITE" ;;
    esac || die "cannot unpack $SUITE"
    # Binaries may sit in a subdirectory of the tarball.
    first=$(find "$BIN" -name '*_test' -type f | head -1)
    [ -n "$first" ] && [ "$(dirname "$first")" != "$BIN" ] && mv "$(dirname "$first")"/* "$BIN"/
    echo "$stamp" >"$BIN/.from"
  fi
fi
if [ $# -gt 0 ]; then
  TESTS="$*"
  for t in $TESTS; do [ -x "$BIN/${t}_test" ] || die "no binary ${t}_test in $SUITE"; done
else
  TESTS=$(cd "$BIN" && find . -maxdepth 1 -name '*_test' -type f -perm -u+x | sed 's|^\./||; s/_test$//' | sort)
  [ -n "$TESTS" ] || die "no *_test binaries in $SUITE"
fi

# One bundle per level: busybox, the binaries in /gt, a tmpfs /tmp as
# gVisor's runner gives them, RLIMIT_NOFILE 1024.
bundle() { # level
  local b=$OUT/bundle-$1
  ./scripts/default-bundle.sh "$ATOLL" "$b" /bin/true >/dev/null
  mkdir -p "$b/rootfs/gt"
  cp -r "$BIN"/. "$b/rootfs/gt/"
  echo "$b"
}

# The bundle's process: one binary. Test-support variables as gVisor's own
# runner sets them: GVISOR_PLATFORM_SUPPORT says what the platform can do
# (its test utilities abort when a test asks and it is unset); the
# userspace level, like gVisor's, runs no 32-bit code.
configure() { # bundle level test
  local support=32BIT:TRUE,ALIGNMENT_CHECK:TRUE,INT3:TRUE,MULTIPROCESS:TRUE,VSYSCALL:TRUE
  [ "$2" = userspace ] && support=${support/32BIT:TRUE/32BIT:FALSE}
  python3 - "$1/config.json" "/gt/${3}_test" "$support" <<'PY'
import json, sys
path, prog, support = sys.argv[1:]
c = json.load(open(path))
c["root"]["readonly"] = False
p = c["process"]
p["args"] = [prog]
p["cwd"] = "/tmp"
p["env"] = [e for e in p["env"] if not e.startswith("TERM=")] + [
    "RUNFILES_DIR=/gt", "TEST_TMPDIR=/tmp", "GVISOR_PLATFORM_SUPPORT=" + support]
p["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
if not any(m["destination"] == "/tmp" for m in c["mounts"]):
    c["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                        "options": ["nosuid", "nodev", "mode=1777"]})
json.dump(c, open(path, "w"), indent=1)
PY
}

STATE=$OUT/state
mkdir -p "$STATE"
for level in $LEVELS; do
  d=$OUT/$level
  mkdir -p "$d/logs"
  b=$(bundle "$level")
  : >"$d/results.new"
  for t in $TESTS; do
    configure "$b" "$level" "$t"
    id=conformance-$level-$t-$$
    log=$d/logs/$t.log
    start=$(date +%s)
    rc=0
    timeout -k 10 "$TIMEOUT" "$ATOLL" --root "$STATE" --isolation "$level" run --bundle "$b" "$id" \
      >"$log" 2>&1 </dev/null || rc=$?
    secs=$(($(date +%s) - start))
    "$ATOLL" --root "$STATE" delete --force "$id" >/dev/null 2>&1 || true
    total=$(sed -n 's/^\[==========\] Running \([0-9]*\) tests\? from .*/\1/p' "$log" | head -1)
    passed=$(grep -c '^\[       OK \] .* ([0-9]* ms)$' "$log" || true)
    skipped=$(grep -c '^\[  SKIPPED \] .* ([0-9]* ms)$' "$log" || true)
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
      status=timeout
    elif grep -q '^\[  PASSED  \] [0-9]* tests\?' "$log"; then
      status=ok
    else
      status="crash (exit $rc)"
    fi
    printf '%s\t%s\t%d\t%d\t%s\t%d\n' "$t" "${total:-?}" "$passed" "$skipped" "$status" "$secs" |
      tee -a "$d/results.new" | sed "s/^/$level\t/"
  done
  mv "$d/results.new" "$d/results.tsv"
  rm -rf "$b"
done
rm -rf "$STATE"

# The table, from the results of this run.
table() {
  python3 - "$OUT" "$COMMIT" "$(uname -r)" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    "$(date -u +%Y-%m-%d)" "$TESTS" $LEVELS <<'PY'
import os, sys
out, commit, host, atoll, date, tests = sys.argv[1:7]
levels = sys.argv[7:]
tests = tests.split()
res = {}
for l in levels:
    for line in open(os.path.join(out, l, "results.tsv")):
        t, total, passed, skipped, status, secs = line.rstrip("\n").split("\t")
        res[(l, t)] = (total, int(passed), int(skipped), status, int(secs))
def total_of(t):
    # A crash before gtest's announcement leaves the count to another level.
    for l in levels:
        if res[(l, t)][0] != "?":
            return int(res[(l, t)][0])
    return None
print(f"Measured {date} by `make conformance`: gVisor's syscall test suite at gVisor commit "
      f"`{commit}`, {len(tests)} binaries, on host kernel {host}, atoll commit `{atoll}`. "
      "A cell is passed tests (skipped ones in parentheses) of the binary's total; a binary "
      "that crashed or timed out says so, and the tests it did not reach count as failed. "
      "Seconds are wall time per binary, container start included.\n")
print("| binary | tests | " + " | ".join(levels) + " | seconds (" + " / ".join(levels) + ") |")
print("|---|---:|" + "---|" * len(levels) + "---:|")
sums = {l: [0, 0] for l in levels}
grand = 0
for t in tests:
    n = total_of(t)
    grand += n or 0
    cells = []
    for l in levels:
        _, p, s, st, _ = res[(l, t)]
        sums[l][0] += p
        sums[l][1] += s
        c = f"{p}" + (f" ({s})" if s else "")
        if st != "ok":
            c += f", {st}"
        cells.append(c)
    secs = " / ".join(str(res[(l, t)][4]) for l in levels)
    print(f"| {t} | {n if n is not None else '?'} | " + " | ".join(cells) + f" | {secs} |")
print(f"| **all** | {grand} | " + " | ".join(
    f"{sums[l][0]}" + (f" ({sums[l][1]})" if sums[l][1] else "") for l in levels) + " | " +
    " / ".join(str(sum(res[(l, t)][4] for t in tests)) for l in levels) + " |")
PY
}

if [ $# -gt 0 ]; then
  table
  echo "conformance: named tests only; $DOC is written by a run of the whole suite" >&2
else
  table | ./scripts/splice-docs.sh conformance "$DOC"
  echo "conformance: wrote the table of $(echo "$TESTS" | wc -w) binaries into $DOC"
fi
