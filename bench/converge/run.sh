#!/bin/bash
# bench/converge/run.sh [CHANGES] — how fast a registry change reaches DNS answers and installed
# rules, at 1,000 and 10,000 Services (issue 5's goals), with the router's own one-endpoint-change
# time measured in the same run for the 10,000 goal. Root only: serve runs in a network namespace
# made here (sbc-conv-*), with no link to the host, removed on exit. Not part of CI.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SVCBOX=${SVCBOX:-$ROOT/build/release/app/svcbox}
ROUTER_BENCH=${ROUTER_BENCH:-$ROOT/build/release/bench/router/router_bench}
CHANGES=${1:-200}
[ -x "$SVCBOX" ] && [ -x "$ROUTER_BENCH" ] || { echo "build first: scripts/build.sh release" >&2; exit 1; }
NS=sbc-conv-$$
cleanup() { ip netns del "$NS" 2>/dev/null || true; }
trap cleanup EXIT
fresh() { ip netns del "$NS" 2>/dev/null || true; ip netns add "$NS"; ip netns exec "$NS" ip link set lo up; }

declare -A OUT
for n in 1000 10000; do
  fresh
  OUT[$n]=$(ip netns exec "$NS" python3 "$ROOT/bench/converge/converge.py" "$SVCBOX" "$n" "$CHANGES")
done
fresh
# router_bench prints a Markdown row; column 4 is the median in ms.
router_row=$(ip netns exec "$NS" "$ROUTER_BENCH" incr 10000 5)
router_ms=$(echo "$router_row" | awk -F'|' '{gsub(/ /, "", $4); print $4}')

python3 - "$router_ms" "${OUT[1000]}" "${OUT[10000]}" <<'PY'
import json, sys
router_ms = float(sys.argv[1])
runs = [json.loads(a) for a in sys.argv[2:]]
print("| Services | changes | DNS p50 | DNS p99 | DNS max | rules p50 | rules p99 | rules max | missed | ready after |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in runs:
    d, u = r["dns"], r["rules"]
    print(f"| {r['services']:,} | {r['changes']} | {d['p50']} ms | {d['p99']} ms | {d['max']} ms | "
          f"{u['p50']} ms | {u['p99']} ms | {u['max']} ms | {d['missed'] + u['missed']} | {r['ready_after_s']} s |")
print("\nfrom just before the API request was sent (includes the API's own work):")
for r in runs:
    d, u = r["dns_from_send"], r["rules_from_send"]
    print(f"  {r['services']:,} Services: DNS p50 {d['p50']} / p99 {d['p99']} ms, rules p50 {u['p50']} / p99 {u['p99']} ms")
print(f"\nrouter one-endpoint change at 10,000 Services (router_bench incr, median): {router_ms} ms")
print("\n| goal | measured | target | result |\n|---|---:|---:|---|")
goals = [("DNS p99 at 1,000", runs[0]["dns"]["p99"], 100), ("DNS p99 at 10,000", runs[1]["dns"]["p99"], 100),
         ("rules p99 at 1,000", runs[0]["rules"]["p99"], 100),
         ("rules p99 at 10,000", runs[1]["rules"]["p99"], round(router_ms + 50, 1))]
for name, value, target in goals:
    print(f"| {name} | {value} ms | <= {target} ms | {'PASS' if value <= target else 'FAIL'} |")
missed = sum(r[t]["missed"] for r in runs for t in ("dns", "rules"))
print(f"| changes never seen within 5 s | {missed} | 0 | {'PASS' if missed == 0 else 'FAIL'} |")
PY
