#!/usr/bin/env bash
# Configures and builds one CMake preset (default: release).
#   scripts/build.sh [PRESET]           everything: the binary, every test and benchmark
#   scripts/build.sh release --product  only the svcbox binary (scripts/run.sh): no test or
#                                       benchmark target, so neither GoogleTest nor their minutes
# Both name the tests and benchmarks explicitly: the choice is kept in the build folder's cache,
# and a build for the tests after one for the product must build them again.
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-release}
if [ "${2:-}" = --product ]; then
  cmake --preset "$preset" -DSVCBOX_TESTS=OFF -DSVCBOX_BENCH=OFF >/dev/null
  cmake --build --preset "$preset" -j "$(nproc)" --target svcbox
elif [ $# -gt 1 ]; then
  echo "usage: $0 [PRESET [--product]]" >&2
  exit 1
else
  # The asan and fuzz presets set these themselves.
  case $preset in
    release | debug) options=(-DSVCBOX_TESTS=ON -DSVCBOX_BENCH=ON) ;;
    *) options=() ;;
  esac
  cmake --preset "$preset" "${options[@]}" >/dev/null
  cmake --build --preset "$preset" -j "$(nproc)"
fi
