#!/bin/bash
# bench/proxy/run.sh — one pod reached three ways in one run: direct, through iptables mode (DNAT)
# and through the userspace proxy (bound to 127.0.0.1, so the client dials the proxy as a client
# resolving through svcbox would). wrk measures requests/s and latency with keep-alive and with a
# new connection per request; iperf3 measures bulk throughput. Root only; everything runs in two
# network namespaces made here (node: svcbox and the clients; pod: http_pod and iperf3 -s), none
# linked to the host, removed on exit. Timed parts hold flock /tmp/bench.lock. Prints Markdown,
# then the ratios to the goals (userspace ≥ 70% of direct for bulk and ≥ 50% for short
# connections; iptables within 5% of direct). Not part of CI. DURATION (s, default 10) per cell.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${SVCBOX_BIN:-$ROOT/build/release/app/svcbox}
POD=${HTTP_POD:-$ROOT/build/release/bench/proxy/http_pod}
DURATION=${DURATION:-10}; CONNS=${CONNS:-32}
"$ROOT/scripts/install-deps.sh"
[ -x "$BIN" ] && [ -x "$POD" ] || { echo "build first: scripts/build.sh release" >&2; exit 1; }
ID=sbp$$; NODE=$ID-node; PODNS=$ID-pod; S=$(mktemp -d /tmp/svcbox-proxy-bench.XXXXXX)
N="ip netns exec $NODE"; P="ip netns exec $PODNS"; L="flock /tmp/bench.lock"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP_LOGS:-}" ]; then cp "$S"/*.log "$KEEP_LOGS"/ 2>/dev/null || true; fi
  ip netns del $NODE 2>/dev/null || true; ip netns del $PODNS 2>/dev/null || true; rm -rf "$S"
}
trap cleanup EXIT

ip netns add $NODE; ip netns add $PODNS
$N ip link set lo up; $P ip link set lo up
$N ip link add veth0 type veth peer name eth0 netns $PODNS
$N ip addr add 10.244.1.1/24 dev veth0; $N ip link set veth0 up
$P ip addr add 10.244.1.2/24 dev eth0; $P ip link set eth0 up
$P ip route add default via 10.244.1.1
# The ClusterIP must route somewhere for OUTPUT's DNAT to see it: toward the pod's link.
$N ip route add 10.96.0.0/12 dev veth0
[ -z "$($N ip route show default)" ] || { echo "node namespace has a route out" >&2; exit 1; }

$P "$POD" 10.244.1.2 8080 pod1 > "$S/pod.log" & PIDS+=($!)
$P iperf3 -s -B 10.244.1.2 -p 5201 > /dev/null 2>&1 & PIDS+=($!)
cat > "$S/all.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: 10.96.0.10
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}, {name: bulk, port: 5201, targetPort: 5201}]
---
apiVersion: v1
kind: Pod
metadata: {name: pod1, labels: {app: web}}
spec: {containers: [{name: w, image: any, ports: [{containerPort: 8080}, {containerPort: 5201}]}]}
status: {podIP: 10.244.1.2}
YAML
"$BIN" apply --db "$S/registry.db" -f "$S/all.yaml" > /dev/null
for _ in $(seq 50); do grep -q ready "$S/pod.log" && break; sleep 0.1; done

serve() {  # MODE [flags...]: start svcbox serve in the node namespace, wait until it serves
  SERVES=$((${SERVES:-0} + 1)); local log="$S/serve-$SERVES.log"
  $N "$BIN" serve --db "$S/registry.db" --proxy-mode "$@" --dns-listen 127.0.0.1:5300 \
    --upstream 127.0.0.1:9 --admin-listen none --default-probe none > "$log" 2>&1 &
  SERVE=$!; PIDS+=($SERVE)
  for _ in $(seq 100); do grep -q "registry loaded" "$log" && break; sleep 0.1; done
  sleep 0.5
}
stop_serve() { kill $SERVE; wait $SERVE 2>/dev/null || true; }

declare -A R
wrk_cell() {  # NAME URL [extra wrk args]: requests/s and latency p50/p99
  local name=$1 url=$2; shift 2
  local out; out=$($L $N wrk -t1 -c$CONNS -d${DURATION}s --latency "$@" "$url")
  local rps p50 p99 errors
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}'); p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  errors=$(echo "$out" | awk '/Socket errors|Non-2xx/ {print}' | tr '\n' ' ')
  R[$name]=$rps
  echo "| $name | $rps | $p50 | $p99 | ${errors:-none} |"
}
bulk_cell() {  # NAME HOST PORT: iperf3 throughput, Gbit/s
  local gbps
  gbps=$($L $N iperf3 -c "$2" -p "$3" -t "$DURATION" -J | python3 -c \
    'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))')
  R[$1]=$gbps
  echo "| $1 | $gbps |"
}

# Userspace first: once iptables mode has written nat rules, conntrack tracks every connection in
# the namespace, which costs short connections dearly; direct is measured before (what a host
# without netfilter rules sees) and after (the fair base for iptables mode).
echo "### proxy benchmark: one pod, ${DURATION}s per cell, wrk -t1 -c$CONNS"
echo
echo "| path | requests/s | p50 | p99 | errors |"; echo "|---|---|---|---|---|"
wrk_cell "direct keep-alive" http://10.244.1.2:8080/
wrk_cell "direct short" http://10.244.1.2:8080/ -H "Connection: close"
serve userspace --proxy-bind 127.0.0.1
wrk_cell "userspace keep-alive" http://127.0.0.1:80/
wrk_cell "userspace short" http://127.0.0.1:80/ -H "Connection: close"
stop_serve
serve iptables
wrk_cell "iptables keep-alive" http://10.96.0.10:80/
wrk_cell "iptables short" http://10.96.0.10:80/ -H "Connection: close"
stop_serve
wrk_cell "direct+conntrack keep-alive" http://10.244.1.2:8080/
wrk_cell "direct+conntrack short" http://10.244.1.2:8080/ -H "Connection: close"

echo; echo "| bulk path | Gbit/s |"; echo "|---|---|"
bulk_cell "direct bulk" 10.244.1.2 5201
serve userspace --proxy-bind 127.0.0.1
bulk_cell "userspace bulk" 127.0.0.1 5201
stop_serve
serve iptables
bulk_cell "iptables bulk" 10.96.0.10 5201
stop_serve
$N "$BIN" cleanup > /dev/null 2>&1 || true
bulk_cell "direct+conntrack bulk" 10.244.1.2 5201

ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
echo; echo "| goal | ratio | target |"; echo "|---|---|---|"
echo "| userspace / direct, bulk | $(ratio ${R[userspace bulk]} ${R[direct bulk]}) | ≥ 0.70 |"
echo "| userspace / direct, short connections | $(ratio ${R[userspace short]} ${R[direct short]}) | ≥ 0.50 |"
echo "| iptables / direct+conntrack, keep-alive | $(ratio ${R[iptables keep-alive]} ${R[direct+conntrack keep-alive]}) | ≥ 0.95 |"
echo "| iptables / direct+conntrack, short connections | $(ratio ${R[iptables short]} ${R[direct+conntrack short]}) | ≥ 0.95 |"
echo "| iptables / direct+conntrack, bulk | $(ratio ${R[iptables bulk]} ${R[direct+conntrack bulk]}) | ≥ 0.95 |"
echo "| iptables / direct, short connections (conntrack's cost included) | $(ratio ${R[iptables short]} ${R[direct short]}) | (none) |"
echo "| userspace / direct, keep-alive | $(ratio ${R[userspace keep-alive]} ${R[direct keep-alive]}) | (none) |"
