#!/usr/bin/env bash
# The README's second command: install, build (warnings are errors) and run every test.
# With --asan: the unit tests built with AddressSanitizer and UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
preset=release
if [ "${1:-}" = "--asan" ]; then
  preset=asan
fi
scripts/build.sh "$preset"
ctest --preset "$preset" -j "$(nproc)"
