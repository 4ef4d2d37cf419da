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
STRICT=1 "$harness/run.sh" || status=1
python3 "$root/bench/dns/ratios.py" "$WORK/results/table.md" || status=1
"$root/build/release/bench/dns/dns_table_bench"
"$root/build/release/bench/dns/dns_table_bench" publish
flock /tmp/bench.lock python3 "$root/bench/dns/visibility.py" "$bin" "$WORK/data/services.yaml" ||
  status=1
exit $status
