#!/usr/bin/env bash
# svcbox's DNS under hostile TCP clients beside a legitimate load (issue figures: docs/dns.md,
# "What a TCP client can make serve hold"). Root; everything runs in a network namespace of its
# own (loopback only), under flock /tmp/bench.lock. Not part of CI: about two minutes.
#   bench/hostile/run.sh              builds the release binary if missing
#   ATTACK_SECONDS=60 PIPELINERS=1000 SLOWLORIS=200 UDP_QPS=5000 TCP_QPS=500 bench/hostile/run.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${SVCBOX_BIN:-$root/build/release/app/svcbox}
[ -x "$bin" ] || "$root/scripts/build.sh" release --product >/dev/null
command -v dnsperf >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnsperf >/dev/null
}
exec flock /tmp/bench.lock python3 "$root/bench/hostile/hostile.py" "$bin"
