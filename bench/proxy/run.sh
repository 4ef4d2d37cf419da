#!/bin/bash
# bench/proxy/run.sh — one pod reached four ways, in alternating rounds of one run: direct and
# through the userspace proxy from a node namespace without netfilter rules (node-a, where the
# proxy binds 127.0.0.1 and the client dials it as a client resolving through svcbox would), and
# through iptables mode's DNAT to the ClusterIP and direct again from a second node namespace
# whose nat rules make conntrack track every connection (node-b); and through kube-proxy's
# iptables-mode ruleset for the same Service (the shared router harness's generator), loaded with
# iptables-legacy-restore in a node namespace of its own (node-d): the reference for iptables mode's
# cost per connection. wrk measures requests/s and
# latency with keep-alive and with a new connection per request; iperf3 measures bulk throughput.
# Root only; every namespace is made here, linked only to the pod namespace, removed on exit.
# Timed parts hold flock /tmp/bench.lock. Prints Markdown, then the ratios against the goals
# (bench/proxy/report.py) and exits 1 when one is missed. Not part of CI.
#   DURATION  seconds per cell (default 5)     ROUNDS  rounds of every cell (default 3)
#   CONNS     wrk connections (default 32)     PROXY_FLAGS  extra flags for the userspace serve
#   KINDS     which cells (default "keep-alive short bulk")
#   COMPARE_FLAGS, COMPARE_BIN  when either is set, a second userspace serve (from COMPARE_BIN,
#             default the same binary; with COMPARE_FLAGS instead of PROXY_FLAGS) in a node
#             namespace of its own (node-c, linked to the same pod), measured in the same rounds as
#             "userspace-alt": two builds or settings compared pair by pair, round by round
#   RTB       the shared router harness (default ../shared/bench/router), for kube-proxy's rules
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${SVCBOX_BIN:-$ROOT/build/release/app/svcbox}
POD=${HTTP_POD:-$ROOT/build/release/bench/proxy/http_pod}
DURATION=${DURATION:-5}; CONNS=${CONNS:-32}; ROUNDS=${ROUNDS:-3}; PROXY_FLAGS=${PROXY_FLAGS:-}
KINDS=${KINDS:-keep-alive short bulk}
"$ROOT/scripts/install-deps.sh"
[ -x "$BIN" ] && [ -x "$POD" ] || { echo "build first: scripts/build.sh release" >&2; exit 1; }
RTB=${RTB:-$ROOT/../shared/bench/router}
ID=sbp$$; A=$ID-a; B=$ID-b; C=$ID-c; D=$ID-d; PODNS=$ID-pod; S=$(mktemp -d /tmp/svcbox-proxy-bench.XXXXXX)
NA="ip netns exec $A"; NB="ip netns exec $B"; ND="ip netns exec $D"; P="ip netns exec $PODNS"; L="flock /tmp/bench.lock"
COMPARE_FLAGS=${COMPARE_FLAGS:-}; COMPARE_BIN=${COMPARE_BIN:-}
ALT=${COMPARE_FLAGS}${COMPARE_BIN}
NODES=("$A" "$B" "$D"); [ -z "$ALT" ] || NODES+=("$C")
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP_LOGS:-}" ]; then cp "$S"/*.log "$KEEP_LOGS"/ 2>/dev/null || true; fi
  for ns in "${NODES[@]}" $PODNS; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$S"
}
trap cleanup EXIT

# node-a ── 10.244.1.0/24 ── pod ── 10.244.2.0/24 ── node-b. The pod answers on both links (one
# process, bound to every address), so every path reaches the same server.
for ns in "${NODES[@]}" $PODNS; do ip netns add "$ns"; ip netns exec "$ns" ip link set lo up; done
link() {  # NODE-NS SUBNET-PREFIX POD-IFACE
  ip netns exec "$1" ip link add veth0 type veth peer name "$3" netns $PODNS
  ip netns exec "$1" ip addr add "$2.1/24" dev veth0; ip netns exec "$1" ip link set veth0 up
  $P ip addr add "$2.2/24" dev "$3"; $P ip link set "$3" up
}
link $A 10.244.1 eth0
link $B 10.244.2 eth1
[ -z "$ALT" ] || link $C 10.244.3 eth2
link $D 10.244.4 eth3
# The ClusterIP must route somewhere for OUTPUT's DNAT to see it: toward the pod's link.
$NB ip route add 10.96.0.0/12 dev veth0
$ND ip route add 10.96.0.0/12 dev veth0
# kube-proxy's rules come from the shared harness, which a plain clone does not have.
HAVE_REF=1
if [ -f "$RTB/gen.py" ]; then
  python3 "$RTB/gen.py" jumps > "$S/kube-jumps.rules"
  python3 "$ROOT/bench/proxy/kube_proxy_rules.py" "$RTB" 10.244.4.2 > "$S/kube-proxy.rules"
  $ND iptables-legacy-restore --noflush "$S/kube-jumps.rules"
  $ND iptables-legacy-restore -w 60 --noflush "$S/kube-proxy.rules"
else
  HAVE_REF=0
  echo "reference column skipped: no shared router harness at $RTB (set RTB=DIR): no kube-proxy column" >&2
fi
# node-b's direct connections leave from a second address. From the same one, they would meet at
# the pod the TIME_WAIT sockets of the iptables cell's connections (DNAT makes them the same
# four-tuples), whose sequence numbers and timestamps the client derived from the ClusterIP: about
# half of the SYNs would be refused and retried a second later.
$NB ip addr add 10.244.2.3/24 dev veth0
$NB ip route replace 10.244.2.2/32 dev veth0 src 10.244.2.3
for ns in "${NODES[@]}" $PODNS; do
  [ -z "$(ip netns exec "$ns" ip route show default)" ] || { echo "$ns has a route out" >&2; exit 1; }
done

$P "$POD" 0.0.0.0 8080 pod1 > "$S/pod.log" & PIDS+=($!)
$P iperf3 -s -p 5201 > /dev/null 2>&1 & PIDS+=($!)
registry() {  # DB POD-IP
  "$BIN" apply --db "$1" -f - > /dev/null <<YAML
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
status: {podIP: $2}
YAML
}
registry "$S/a.db" 10.244.1.2
registry "$S/b.db" 10.244.2.2
[ -z "$ALT" ] || registry "$S/c.db" 10.244.3.2
for _ in $(seq 50); do grep -q ready "$S/pod.log" && break; sleep 0.1; done

serve() {  # BIN NS DB MODE [flags...]: start svcbox serve in a node namespace, wait until it serves
  local bin=$1 ns=$2 db=$3 log="$S/serve-$4-${2##*-}.log"; shift 3
  : > "$log"
  ip netns exec "$ns" "$bin" serve --db "$db" --proxy-mode "$@" --dns-listen 127.0.0.1:5300 \
    --upstream 127.0.0.1:9 --admin-listen none --default-probe none > "$log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do grep -q "registry loaded" "$log" && break; sleep 0.1; done
  sleep 0.5
}
# Both serves run for the whole run, so every round can measure every path.
# shellcheck disable=SC2086
serve "$BIN" $A "$S/a.db" userspace --proxy-bind 127.0.0.1 $PROXY_FLAGS
serve "$BIN" $B "$S/b.db" iptables
# shellcheck disable=SC2086
[ -z "$ALT" ] || serve "${COMPARE_BIN:-$BIN}" $C "$S/c.db" userspace --proxy-bind 127.0.0.1 \
  ${COMPARE_FLAGS:-$PROXY_FLAGS}

RESULTS=$S/results.tsv
# Every cell starts from an empty conntrack table in node-b: entries a cell leaves (TIME_WAIT,
# 120 s) would otherwise clash with the next cell's connections that reuse the same ports (a DNAT
# entry's reply tuple is a direct connection's), and their SYNs would be dropped.
fresh() {
  $NB conntrack -F > /dev/null 2>&1 || true
  $ND conntrack -F > /dev/null 2>&1 || true
}
wrk_cell() {  # ROUND NAME NS URL [extra wrk args]
  local round=$1 name=$2 ns=$3 url=$4; shift 4
  fresh
  local out
  if ! out=$($L ip netns exec "$ns" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$@" "$url"); then
    echo "round $round, $name: wrk failed: $out" >&2; return 0
  fi
  local rps p50 errors
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
  # Read errors are how wrk counts a server's close after "Connection: close": not failures.
  errors=$(echo "$out" | awk '/Socket errors/ && ($4 + $8 + $10) > 0 {print "connect " $4 " write " $8 " timeout " $10}
    /Non-2xx/ {print}' | tr -d ',' | tr '\n' ' ' | sed 's/ *$//')
  printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$rps" "$p50" "${errors:-none}" >> "$RESULTS"
}
bulk_cell() {  # ROUND NAME NS HOST PORT: Gbit/s
  local gbps="" attempt
  fresh
  # iperf3's server takes one test at a time and needs a moment after one ends.
  for attempt in 1 2 3; do
    gbps=$($L ip netns exec "$3" iperf3 -c "$4" -p "$5" -t "$DURATION" -J | python3 -c \
      'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))' \
      2> /dev/null) && break
    sleep 1
  done
  [ -n "$gbps" ] || { echo "round $1, $2: iperf3 failed 3 times" >&2; return 0; }
  printf '%s\t%s\t%s\t-\t-\n' "$1" "$2" "$gbps" >> "$RESULTS"
}
cell() {  # ROUND PATH KIND
  local short=()
  [ "$3" = short ] && short=(-H "Connection: close")
  case "$2 $3" in
    "direct bulk") bulk_cell "$1" "direct bulk" $A 10.244.1.2 5201 ;;
    "userspace bulk") bulk_cell "$1" "userspace bulk" $A 127.0.0.1 5201 ;;
    "userspace-alt bulk") bulk_cell "$1" "userspace-alt bulk" $C 127.0.0.1 5201 ;;
    "iptables bulk") bulk_cell "$1" "iptables bulk" $B 10.96.0.10 5201 ;;
    "direct+conntrack bulk") bulk_cell "$1" "direct+conntrack bulk" $B 10.244.2.2 5201 ;;
    "kube-proxy bulk") bulk_cell "$1" "kube-proxy bulk" $D 10.96.0.10 5201 ;;
    userspace-alt*) wrk_cell "$1" "userspace-alt $3" $C http://127.0.0.1:80/ "${short[@]}" ;;
    userspace*) wrk_cell "$1" "userspace $3" $A http://127.0.0.1:80/ "${short[@]}" ;;
    kube-proxy*) wrk_cell "$1" "kube-proxy $3" $D http://10.96.0.10:80/ "${short[@]}" ;;
    iptables*) wrk_cell "$1" "iptables $3" $B http://10.96.0.10:80/ "${short[@]}" ;;
    direct+conntrack*) wrk_cell "$1" "direct+conntrack $3" $B http://10.244.2.2:8080/ "${short[@]}" ;;
    direct*) wrk_cell "$1" "direct $3" $A http://10.244.1.2:8080/ "${short[@]}" ;;
  esac
}

echo "### proxy benchmark: one pod, $ROUNDS rounds of ${DURATION}s per cell, wrk -t1 -c$CONNS${PROXY_FLAGS:+, userspace serve $PROXY_FLAGS}${ALT:+, userspace-alt serve ${COMPARE_BIN:-(same binary)} ${COMPARE_FLAGS:-$PROXY_FLAGS}}"
echo
PATHS=(direct userspace iptables direct+conntrack kube-proxy)
[ $HAVE_REF = 1 ] || PATHS=(direct userspace iptables direct+conntrack)
[ -z "$ALT" ] || PATHS+=(userspace-alt)
for round in $(seq "$ROUNDS"); do
  # Each round starts one path later, and every other round runs backwards, so no path is always
  # measured first, last, or right after the same other path.
  shift_by=$(((round - 1) % ${#PATHS[@]}))
  order=("${PATHS[@]:$shift_by}" "${PATHS[@]:0:$shift_by}")
  if [ $((round % 2)) -eq 0 ]; then
    for ((i = 0, j = ${#order[@]} - 1; i < j; i++, j--)); do
      t=${order[i]}; order[i]=${order[j]}; order[j]=$t
    done
  fi
  for kind in $KINDS; do
    for path in "${order[@]}"; do cell "$round" "$path" "$kind"; done
  done
done
python3 "$ROOT/bench/proxy/report.py" "$RESULTS"
