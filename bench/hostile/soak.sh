#!/usr/bin/env bash
# svcbox serve soaked for 10 minutes on 10,000 Services (issue 21, "Figures"): mixed UDP/TCP DNS at
# fixed rates (forwarded names answered by an upstream on loopback), admin API writes with the
# token, pods flapping, rule churn; samples every 10 s into bench/hostile/results/soak-*.csv, then
# the figures against the goals. Root; everything runs in a network namespace of its own (loopback
# only, removed on every exit), under flock /tmp/bench.lock. Not part of CI: about 11 minutes.
#   bench/hostile/soak.sh                          builds the release binary if missing
#   SOAK_SECONDS=60 SERVICES=1000 bench/hostile/soak.sh
#   UDP_QPS=2000 TCP_QPS=200 API_RATE=5 PODS_PER_SERVICE=3 WARMUP_SECONDS=120 SERVE_FLAGS=... soak.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${SVCBOX_BIN:-$root/build/release/app/svcbox}

if [ -z "${SOAK_LOCKED:-}" ]; then
  [ "$(id -u)" = 0 ] || { echo "soak.sh: needs root (network namespace, netfilter)" >&2; exit 1; }
  [ -x "$bin" ] || "$root/scripts/build.sh" release --product >/dev/null
  command -v dnsperf >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnsperf >/dev/null
  }
  command -v iptables-legacy-save >/dev/null || { echo "soak.sh: iptables-legacy-save missing" >&2; exit 1; }
  # Bounded: a bench holding the lock for over an hour is a stuck one.
  exec env SOAK_LOCKED=1 SVCBOX_BIN="$bin" flock -w "${LOCK_WAIT:-3600}" /tmp/bench.lock bash "$here/soak.sh" "$@"
fi

ns=sbc-soak-$$
py=
work=
# shellcheck disable=SC2317,SC2086  # run by the trap; $pids is one PID a word
cleanup() {
  local status=$? pids
  trap - EXIT INT TERM HUP
  if [ -n "$py" ] && kill -0 "$py" 2>/dev/null; then
    kill -TERM "$py" 2>/dev/null || true  # soak.py stops its own processes first
    for _ in $(seq 60); do kill -0 "$py" 2>/dev/null || break; sleep 0.5; done
  fi
  # Whatever is left in the namespace was started by this run (the namespace is this run's own).
  pids=$(ip netns pids "$ns" 2>/dev/null || true)
  if [ -n "$pids" ]; then
    kill -TERM $pids 2>/dev/null || true
    for _ in $(seq 20); do
      pids=$(ip netns pids "$ns" 2>/dev/null || true)
      [ -z "$pids" ] && break
      sleep 0.5
    done
    if [ -n "$pids" ]; then kill -KILL $pids 2>/dev/null || true; fi
  fi
  ip netns del "$ns" 2>/dev/null || true
  [ -z "$work" ] || rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

work=$(mktemp -d /tmp/svcbox-soak-XXXXXX)  # soak.py's files; removed here even if it is killed
ip netns add "$ns"
ip -n "$ns" link set lo up
# In the background, so a signal to this script runs the trap at once instead of after soak.py.
SOAK_NETNS=$ns SOAK_WORK=$work ip netns exec "$ns" python3 "$here/soak.py" "$bin" &
py=$!
status=0
wait "$py" || status=$?
py=
exit "$status"
