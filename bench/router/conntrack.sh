#!/bin/bash
# bench/router/conntrack.sh — what deleting a leaving pod's UDP flows costs at 1,000 to 100,000
# conntrack entries, and what of it the router thread pays since the cleanup has a thread of its
# own. Root only: the entries go into the conntrack table of a network namespace made here
# (sbr-ct-*, nothing linked to it), deleted with it on exit. Timed under flock /tmp/bench.lock.
# Not part of CI. RUNS (default 5) per size.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BENCH=${BENCH:-$ROOT/build/release/bench/router/conntrack_bench}
RUNS=${RUNS:-5}
[ -x "$BENCH" ] || { echo "build first: scripts/build.sh release" >&2; exit 1; }
NS=sbr-ct-$$
cleanup() { ip netns del "$NS" 2>/dev/null || true; }
trap cleanup EXIT
echo "| conntrack entries | flows deleted | dump + delete, median ms (cleaner thread) | router thread, median µs |"
echo "|---|---|---|---|"
for n in 1000 10000 100000; do
  ip netns del "$NS" 2>/dev/null || true
  ip netns add "$NS"
  flock /tmp/bench.lock ip netns exec "$NS" "$BENCH" "$n" "$RUNS"
done
