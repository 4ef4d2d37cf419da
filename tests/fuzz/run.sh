#!/usr/bin/env bash
# Builds every libFuzzer target in one clang 14 build (ASan + UBSan), then for each target
# replays its committed seed corpus (tests/fuzz/corpus/<target>/) and fuzzes it for FUZZ_SECONDS
# (default 25) in a scratch copy, so the committed corpora stay as they are. Prints each target's
# runs and exec/s, and the totals. Every target gets its turn; a crash (or a timeout, or running
# out of memory) leaves its input in build/fuzz/crashes/<target>/ and fails the run at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/install-deps.sh
start=$SECONDS
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)"
built=$((SECONDS - start))

targets=(query manifest_yaml manifest_json config admin_api)
seconds=${FUZZ_SECONDS:-25}
# On tmpfs where there is one: the admin API target commits to SQLite (with fsync) on every write.
scratch=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# Where the admin API target keeps its registry: removed with the rest, even after a crash.
export TMPDIR=$scratch/tmp
mkdir -p "$TMPDIR"
failed=()
summary=()
total_runs=0

final_stat() {  # stat NAME LOG: a value of libFuzzer's -print_final_stats
  sed -n "s/^stat::$1: *//p" "$2" | tail -n 1
}

for target in "${targets[@]}"; do
  fuzzer=build/fuzz/tests/fuzz/svcbox_${target}_fuzz
  crashes=build/fuzz/crashes/$target
  log=$scratch/$target.log
  mkdir -p "$crashes" "$scratch/$target"
  options=(-timeout=5 -rss_limit_mb=2048 -artifact_prefix="$crashes/")
  if ! "$fuzzer" "${options[@]}" -runs=0 "tests/fuzz/corpus/$target" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz: $target: a seed of tests/fuzz/corpus/$target fails; see $crashes/" >&2
    failed+=("$target")
    continue
  fi
  cp "tests/fuzz/corpus/$target"/* "$scratch/$target"/
  if ! "$fuzzer" "${options[@]}" -max_total_time="$seconds" -print_final_stats=1 \
    "$scratch/$target" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz: $target: crashed; the input is in $crashes/" >&2
    failed+=("$target")
  fi
  runs=$(final_stat number_of_executed_units "$log")
  total_runs=$((total_runs + ${runs:-0}))
  summary+=("$(printf '%-14s %10s runs %7s exec/s %5s new units  peak %s MB' "$target" \
    "${runs:-?}" "$(final_stat average_exec_per_sec "$log")" \
    "$(final_stat new_units_added "$log")" "$(final_stat peak_rss_mb "$log")")")
done

echo "fuzz: ${seconds} s per target, built in ${built} s:"
printf '  %s\n' "${summary[@]}"
echo "fuzz: $total_runs runs in all, $((SECONDS - start)) s with the build"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs in build/fuzz/crashes/)" >&2
  exit 1
fi
