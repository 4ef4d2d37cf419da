#!/usr/bin/env bash
# Builds the libFuzzer target with clang 14 (ASan + UBSan), replays the committed seed corpus, then
# fuzzes for FUZZ_SECONDS (default 60) in a scratch copy, so the committed corpus stays as it is.
# A crash leaves its input in build/fuzz/crashes/ and fails the run.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/install-deps.sh
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)"
fuzzer=build/fuzz/tests/fuzz/svcbox_query_fuzz
"$fuzzer" -runs=0 tests/fuzz/corpus
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp tests/fuzz/corpus/* "$scratch"/
mkdir -p build/fuzz/crashes
"$fuzzer" -max_total_time="${FUZZ_SECONDS:-60}" -timeout=5 -rss_limit_mb=2048 \
  -artifact_prefix=build/fuzz/crashes/ -print_final_stats=1 "$scratch"
