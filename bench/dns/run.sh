#!/usr/bin/env bash
# svcbox's DNS server beside Knot, NSD, Unbound, PowerDNS and dnsmasq in one run, with the shared
# harness (../shared/bench/dns), then svcbox's figures as ratios to the anchors of that run and the
# time from a registry commit to the answer. Root; runs nothing in the host's netfilter
# (--proxy-mode none) and forwards nowhere (the queries are all in the cluster zone).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
harness=${HARNESS:-$root/../shared/bench/dns}
export WORK=${WORK:-/tmp/dnsbench}
bin=$root/build/release/app/svcbox
"$root/scripts/build.sh" release >/dev/null
export SVCBOX_BIN=$bin
export CANDIDATE_NAME="svcbox $(git -C "$root" rev-parse --short HEAD)"
# shellcheck disable=SC2016 # expanded by the harness's bash -c
export CANDIDATE_CMD='rm -f "$DATA_DIR"/svcbox.db*; "$SVCBOX_BIN" apply --db "$DATA_DIR/svcbox.db" -f "$DATA_DIR/services.yaml" >/dev/null && exec "$SVCBOX_BIN" serve --db "$DATA_DIR/svcbox.db" --dns-listen "127.0.0.1:$CANDIDATE_PORT" --upstream 127.0.0.1:9 --proxy-mode none --log-level warn'

status=0
if [ -x "$harness/run.sh" ]; then
  STRICT=1 "$harness/run.sh" || status=1
  python3 "$root/bench/dns/ratios.py" "$WORK/results/table.md" || status=1
else
  # A plain clone has no reference harness: svcbox's own figures below still run.
  echo "reference column skipped: no shared DNS harness at $harness (set HARNESS=DIR)" >&2
  mkdir -p "$WORK/data"
  [ -s "$WORK/data/services.yaml" ] || python3 - "$WORK/data/services.yaml" <<'PY'
import sys
with open(sys.argv[1], "w") as out:
    for i in range(10000):
        out.write(f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: svc-{i}, namespace: ns-{i % 10}}}\n"
                  f"spec: {{ports: [{{name: http, port: 80}}]}}\n")
PY
fi
"$root/build/release/bench/dns/dns_table_bench"
"$root/build/release/bench/dns/dns_table_bench" publish
flock /tmp/bench.lock python3 "$root/bench/dns/visibility.py" "$bin" "$WORK/data/services.yaml" ||
  status=1
exit $status
