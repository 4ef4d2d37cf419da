#!/usr/bin/env bash
# The README's second command: install, build (warnings are errors) and run every test.
# With --asan: the unit tests built with AddressSanitizer and UndefinedBehaviorSanitizer.
# Without it, last, the container test (tests/container/run.sh: the image and the Compose demo,
# built and run with podman; root only, it skips otherwise). SVCBOX_SKIP_CONTAINER=1 leaves it out
# on a developer's machine; under CI=true it always runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
preset=release
if [ "${1:-}" = "--asan" ]; then
  preset=asan
fi
scripts/build.sh "$preset"
ctest --preset "$preset" -j "$(nproc)"
if [ "$preset" = release ]; then
  if [ "${SVCBOX_SKIP_CONTAINER:-}" = 1 ] && [ "${CI:-}" != true ]; then
    echo "SKIP: tests/container/run.sh (SVCBOX_SKIP_CONTAINER=1)"
  else
    tests/container/run.sh
  fi
fi
