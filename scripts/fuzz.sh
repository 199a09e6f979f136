#!/usr/bin/env bash
# Fuzzes atoll's parsers and decoders with cargo-fuzz (libFuzzer): the
# bundle's config.json and exec's process.json, the tenant policy, the
# gofer protocol, the application kernel's syscall argument decoders, and
# whole syscalls driven through the kernel's dispatch (kernel_syscalls).
# The targets are in fuzz/fuzz_targets/; docs/security.md ("Fuzzing") says
# what each one checks.
#
#   scripts/fuzz.sh smoke              every target for FUZZ_SMOKE_SECONDS (make test)
#   scripts/fuzz.sh long [TARGET...]   every target, or those named, for FUZZ_SECONDS (make fuzz)
#   scripts/fuzz.sh replay             only the regression inputs
#
# Stable Rust only, so no sanitizer (AddressSanitizer needs nightly's
# -Zsanitizer): the targets are built optimized with debug assertions and
# overflow checks, and what they find are panics, overflows and broken
# assertions. Every run first replays fuzz/regressions/<target>/ (inputs
# that once crashed) and then fuzzes from the checked-in seeds
# (fuzz/corpus/<target>/) plus a working corpus kept under the target
# directory, so coverage grows from run to run without touching the tree.
# A crash leaves its input in fuzz/artifacts/<target>/ and fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

MODE=${1:-smoke}
shift || true
CARGO_FUZZ_VERSION=0.13.2
TARGETS=(config_json process_json policy_parse policy_eval gofer_request gofer_reply
  kernel_sockaddr kernel_msghdr kernel_path kernel_syscalls netstack_frames netstack_rtnetlink)
case "$MODE" in
  smoke) SECONDS_EACH=${FUZZ_SMOKE_SECONDS:-12} ;;
  long)
    SECONDS_EACH=${FUZZ_SECONDS:-300}
    if [ $# -gt 0 ]; then TARGETS=("$@"); fi
    ;;
  replay) SECONDS_EACH=0 ;;
  *)
    echo "usage: $0 smoke | long [TARGET...] | replay" >&2
    exit 2
    ;;
esac

# Its own directory: the fuzz flags differ from the workspace's, and
# sharing one would rebuild everything on every switch.
DIR=${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-$PWD/target}/fuzz}
BIN=$DIR/x86_64-unknown-linux-gnu/release

# libfuzzer-sys compiles libFuzzer (C++): scripts/deps.sh installs g++.
if ! command -v c++ >/dev/null; then
  ./scripts/deps.sh
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION into ~/.cargo/bin"
  cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

start=$(date +%s)
mkdir -p "$DIR/logs"
if ! cargo fuzz build --sanitizer none --target-dir "$DIR" >"$DIR/logs/build.log" 2>&1; then
  grep -vE '^\s+(Compiling|Fresh|Checking) ' "$DIR/logs/build.log" >&2
  echo "fuzz: build failed" >&2
  exit 1
fi
echo "fuzz: targets built in $(($(date +%s) - start))s"

failed=()
printf '%-16s %9s %10s %7s  %s\n' target runs "exec/s" corpus result
for t in "${TARGETS[@]}"; do
  log=$DIR/logs/$t.log
  # Regressions: each input runs once and must not crash.
  regressions=(fuzz/regressions/"$t"/*)
  if [ -e "${regressions[0]}" ]; then
    if ! "$BIN/$t" "${regressions[@]}" >"$log" 2>&1; then
      printf '%-16s %9s %10s %7s  %s\n' "$t" - - - "REGRESSION (log: $log)"
      tail -n 30 "$log"
      failed+=("$t")
      continue
    fi
  fi
  [ "$SECONDS_EACH" -gt 0 ] || continue

  work=$DIR/corpus/$t
  mkdir -p "$work" "fuzz/artifacts/$t"
  dirs=("$work" "fuzz/corpus/$t")
  [ -d "fuzz/regressions/$t" ] && dirs+=("fuzz/regressions/$t")
  if "$BIN/$t" "${dirs[@]}" -max_total_time="$SECONDS_EACH" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1; then
    result=ok
  else
    result="CRASH: $(ls -t fuzz/artifacts/"$t"/ | head -n 1) (log: $log)"
    failed+=("$t")
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  printf '%-16s %9s %10s %7s  %s\n' "$t" "${runs:--}" "${rate:--}" \
    "$(find "$work" -type f | wc -l)" "$result"
  if [ "$result" != ok ]; then
    grep -m 1 -A 12 -E "panicked|ERROR: libFuzzer" "$log" || tail -n 30 "$log"
  fi
done
echo "fuzz: $MODE done in $(($(date +%s) - start))s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]} (reproduce: $BIN/TARGET INPUT)" >&2
  exit 1
fi
