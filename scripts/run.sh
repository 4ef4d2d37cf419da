#!/usr/bin/env bash
# The README's first command: install, build, then run svcbox serve on the seed example
# (examples/service-test.yaml) with two real pods, so the name -> ClusterIP -> pod flow can be
# tried at once.
#
#   as root:  everything lives in network namespaces made for this run (prefix svd<random>):
#             a node namespace runs svcbox in iptables mode (its rules exist only there), two pod
#             namespaces answer HTTP on 8080 with their names, a client namespace resolves through
#             svcbox. Nothing is linked to the host's namespace and no namespace has a route out.
#   no root:  the userspace proxy mode on loopback: pods on 127.0.0.2 and 127.0.0.3, DNS on
#             127.0.0.1:1053, the Service's port 80 relayed on 127.0.0.1:20080.
#
# Ctrl-C (or any error) removes everything the run made: processes by PID, namespaces, the client's
# /etc/netns resolv.conf and the registry directory.
#
# Environment:
#   SVCBOX_DEMO_CHECK=1    no waiting: run the printed commands, check their answers, tear down and
#                          exit 0 (all good) or 1 (tests/demo/test_demo.py uses this)
#   SVCBOX_SKIP_INSTALL=1  skip install-deps.sh and build.sh (with SVCBOX_BIN, a prebuilt binary)
#   SVCBOX_BIN=PATH        the svcbox binary (default build/release/app/svcbox)
#   SVCBOX_DEMO=netns|local  force the layout (default: netns as root, local otherwise)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
if [ "${SVCBOX_SKIP_INSTALL:-0}" != 1 ]; then
  scripts/install-deps.sh --run
  scripts/build.sh release --product
fi
svcbox=$(realpath "${SVCBOX_BIN:-build/release/app/svcbox}")
check=${SVCBOX_DEMO_CHECK:-0}
layout=${SVCBOX_DEMO:-$([ "$(id -u)" -eq 0 ] && echo netns || echo local)}
manifest=$repo/examples/service-test.yaml

say() { echo "svcbox demo: $*" >&2; }
fail() {
  say "FAIL: $*"
  [ -f "${log:-}" ] && { say "serve log:"; cat "$log" >&2; }
  exit 1
}

# Everything the run makes is recorded here the moment it exists, so cleanup removes exactly that.
prefix=svd$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
work=$(mktemp -d "${TMPDIR:-/tmp}/svcbox-demo.XXXXXX")
pids=()
namespaces=()
netns_etc=""
netns_parent_made=""

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  set +e
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  # Bounded: 5 s for a clean stop, then SIGKILL.
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  done
  for ((i = ${#namespaces[@]} - 1; i >= 0; i--)); do ip netns del "${namespaces[i]}"; done
  [ -n "$netns_etc" ] && rm -rf "$netns_etc"
  # /etc/netns too when this run made it and nothing else is in it now.
  [ -n "$netns_parent_made" ] && rmdir /etc/netns 2>/dev/null
  rm -rf "$work"
  if [ "$check" = 1 ]; then if [ "$status" -eq 0 ]; then say "check passed"; else say "check failed"; fi; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[ "$check" = 1 ] && say "layout $layout, namespaces $prefix-*, files in $work"
db=$work/registry.db
export SVCBOX_DB=$db
log=$work/serve.log
# The check never asks svcbox for a name outside the cluster zone; should anything be forwarded,
# it goes to a loopback port where nothing listens, never to the host's resolvers (testing.md).
upstream=()
[ "$check" = 1 ] && upstream=(--upstream 127.0.0.1:9)

# Runs a command in the namespace $1 (netns layout) or right here (local layout).
in_ns() {
  local ns=$1
  shift
  if [ "$layout" = netns ]; then ip netns exec "$ns" "$@"; else "$@"; fi
}

# Polls "$@" every 0.1 s until it succeeds; false after $1 seconds.
wait_for() {
  local seconds=$1
  shift
  for _ in $(seq $((seconds * 10))); do
    "$@" >/dev/null 2>&1 && return 0
    # A serve that stopped (port taken, say) will not come up: say so now, not after the bound.
    if [ -n "${serve_pid:-}" ] && ! kill -0 "$serve_pid" 2>/dev/null; then fail "svcbox serve stopped"; fi
    sleep 0.1
  done
  return 1
}

start() { # start NAMESPACE COMMAND...: in the background, PID recorded
  local ns=$1
  shift
  # A simple command, not a function, goes to the background: bash execs it in the forked child
  # (and ip netns exec execs in turn), so $! is the program itself and kill reaches it.
  [ "$layout" = netns ] && set -- ip netns exec "$ns" "$@"
  if [ "$check" = 1 ]; then
    "$@" >>"$log" 2>&1 &
  else
    "$@" &
  fi
  pids+=($!)
}

if [ "$layout" = netns ]; then
  [ "$(id -u)" -eq 0 ] || fail "the netns layout needs root"
  node=$prefix-node client=$prefix-cli
  pod_ns=("$prefix-pod1" "$prefix-pod2")
  pod_ip=(10.0.1.2 10.0.2.2) # the seed example's pod addresses
  node_ip=(10.0.1.1 10.0.2.1)
  client_ip=10.0.0.2 dns_ip=10.0.0.1

  add_ns() {
    ip netns add "$1"
    namespaces+=("$1")
    ip netns exec "$1" ip link set lo up
  }
  # The veth pair is created inside the node namespace and one end moved out: never a link in the
  # host's namespace.
  link() { # link NS ADDRESS NODE_IF NODE_ADDRESS
    ip netns exec "$node" ip link add "$3" type veth peer name eth0 netns "$1"
    ip netns exec "$node" ip addr add "$4/24" dev "$3"
    ip netns exec "$node" ip link set "$3" up
    ip netns exec "$1" ip addr add "$2/24" dev eth0
    ip netns exec "$1" ip link set eth0 up
    ip netns exec "$1" ip route add default via "$4"
  }
  add_ns "$node"
  ip netns exec "$node" sysctl -qw net.ipv4.ip_forward=1
  # The Service CIDR goes to a link to nowhere (both veth ends stay in the node), as a host's
  # default route would take it: a ClusterIP without endpoints then meets svcbox's REJECT instead
  # of a failed route lookup.
  ip netns exec "$node" ip link add svc0 type veth peer name svc1
  ip netns exec "$node" ip link set svc0 up
  ip netns exec "$node" ip link set svc1 up
  ip netns exec "$node" ip route add 10.96.0.0/12 dev svc0
  add_ns "$client"
  link "$client" "$client_ip" c0 "$dns_ip"
  for i in 0 1; do
    add_ns "${pod_ns[i]}"
    link "${pod_ns[i]}" "${pod_ip[i]}" "p$((i + 1))" "${node_ip[i]}"
  done
  # No route out of the demo: the node (where svcbox probes and forwards from) has no default
  # route, and every other namespace's default route ends at the node.
  [ -z "$(ip netns exec "$node" ip route show default)" ] || fail "the node namespace has a default route"

  netns_etc=/etc/netns/$client
  [ -e "$netns_etc" ] && { netns_etc=""; fail "/etc/netns/$client already exists"; }
  [ -d /etc/netns ] || netns_parent_made=1
  mkdir -p "$netns_etc"
  # ip netns exec mounts this over /etc/resolv.conf for the client only: dig, curl and getent
  # there ask svcbox, with the search path a pod in namespace default has in Kubernetes.
  cat >"$netns_etc/resolv.conf" <<EOF
nameserver $dns_ip
search default.svc.cluster.local svc.cluster.local cluster.local
options ndots:5
EOF
  bind=0.0.0.0
  serve=(serve --proxy-mode iptables --dns-listen "$dns_ip:53")
else
  [ "$(id -u)" -eq 0 ] && say "local layout as root: svcbox still gets --proxy-bind, so it writes no netfilter rule"
  node="" client="" pod_ns=("" "")
  pod_ip=(127.0.0.2 127.0.0.3)
  # The seed example with its pods on loopback addresses: the same Service, port 80 -> 8080.
  sed -e 's/podIP: 10\.0\.1\.2/podIP: 127.0.0.2/' -e 's/podIP: 10\.0\.2\.2/podIP: 127.0.0.3/' \
    "$manifest" >"$work/service-test.yaml"
  manifest=$work/service-test.yaml
  bind=""
  serve=(serve --proxy-mode userspace --proxy-bind 127.0.0.1 --dns-listen 127.0.0.1:1053)
fi

names=(server-pod-1 server-pod-2)
for i in 0 1; do
  start "${pod_ns[i]}" python3 "$repo/scripts/demo-pod.py" "${names[i]}" "${bind:-${pod_ip[i]}}" 8080
  pod_pid[i]=${pids[-1]}
done
for i in 0 1; do
  # From the node (netns) or loopback (local): only addresses of this demo.
  wait_for 10 in_ns "$node" bash -c "echo >/dev/tcp/${pod_ip[i]}/8080" || fail "pod ${names[i]} did not start"
done

"$svcbox" apply -f "$manifest" >&2
start "$node" "$svcbox" "${serve[@]}" --db "$db" --default-probe tcp "${upstream[@]}"
serve_pid=${pids[-1]}

endpoints() { "$svcbox" get endpoints service-test 2>/dev/null | awk 'NR == 2 {print $2}'; }
both_ready() { [ "$(endpoints)" = "${pod_ip[0]}:8080,${pod_ip[1]}:8080" ]; }
wait_for 20 in_ns "$node" curl -sf --max-time 1 http://127.0.0.1:9153/readyz || fail "serve never became ready"
wait_for 20 both_ready || fail "the pods never became ready endpoints: $(endpoints)"

cluster_ip=$("$svcbox" get svc service-test | awk 'NR == 2 {print $3}')
if [ "$layout" = netns ]; then
  port=80
  dig_cmd=(ip netns exec "$client" dig +short +time=2 +tries=1 service-test.default.svc.cluster.local)
  url=http://service-test.default.svc/
  curl_cmd=(ip netns exec "$client" curl -s --max-time 2 "$url")
  want_answer=$cluster_ip
else
  # The listener's port as serve chose it: 80 when allowed, else 20000 + 80 (see docs/userspace.md).
  listener() { "$svcbox" get svc service-test | awk 'NR == 2 {print $5}' | sed -n 's|^80:\([0-9]*\)/TCP.*|\1|p'; }
  has_listener() { [ -n "$(listener)" ]; }
  wait_for 10 has_listener || fail "no proxy listener for service-test:80"
  port=$(listener)
  dig_cmd=(dig +short +time=2 +tries=1 @127.0.0.1 -p 1053 service-test.default.svc.cluster.local)
  url=http://127.0.0.1:$port/
  curl_cmd=(curl -s --max-time 2 "$url")
  want_answer=127.0.0.1 # no netfilter here: DNS answers the proxy's address, not the ClusterIP
fi

# curls COUNT: the pod names that answered, one per line, sorted and counted.
curls() {
  for _ in $(seq "$1"); do "${curl_cmd[@]}" || echo "(no answer)"; done | sort | uniq -c
}

if [ "$check" = 1 ]; then
  answer=$("${dig_cmd[@]}") || fail "dig failed"
  [ "$answer" = "$want_answer" ] || fail "dig answered '$answer', want $want_answer"
  say "dig service-test.default.svc.cluster.local -> $answer"
  served=$(curls 20)
  say "20 requests to $url:"$'\n'"$served"
  for name in "${names[@]}"; do
    grep -q " $name\$" <<<"$served" || fail "$name never answered"
  done
  grep -q "no answer" <<<"$served" && fail "some requests got no answer"
  # Health: kill pod 2's server; the default TCP probe (every 2 s, 3 failures) takes it out.
  kill "${pod_pid[1]}"
  only_first() { [ "$(endpoints)" = "${pod_ip[0]}:8080" ]; }
  wait_for 30 only_first || fail "server-pod-2 did not leave the endpoints: $(endpoints)"
  served=$(curls 10)
  say "after killing server-pod-2, 10 requests:"$'\n'"$served"
  [ "$(awk '{print $2}' <<<"$served")" = server-pod-1 ] || fail "traffic still went elsewhere"
  exit 0
fi

self=$svcbox
db_env="SVCBOX_DB=$db"
if [ "$layout" = netns ]; then
  cat <<INFO

svcbox serve runs in network namespace $node (iptables mode; its rules exist only there),
DNS on $dns_ip:53, admin API on that namespace's 127.0.0.1:9153. The pods server-pod-1
(${pod_ip[0]}, namespace ${pod_ns[0]}) and server-pod-2 (${pod_ip[1]}, ${pod_ns[1]}) answer
HTTP on 8080 with their names. Client namespace $client resolves through svcbox
(/etc/netns/$client/resolv.conf, search default.svc.cluster.local svc.cluster.local cluster.local).
In another terminal, try:

  sudo ip netns exec $client dig service-test.default.svc.cluster.local      # A $cluster_ip
  sudo ip netns exec $client getent hosts service-test                       # the search path
  sudo ip netns exec $client curl -s $url                  # run it a few times: both pods answer
  sudo $db_env $self get endpoints
  sudo ip netns exec $node iptables-legacy-save -t nat | grep SVCBOX           # the DNAT rules
  sudo ip netns exec $node curl -s -H "Authorization: Bearer \$(sudo $db_env $self admin-token)" \\
    http://127.0.0.1:9153/api/v1/services                       # the admin API needs its token
  sudo kill ${pod_pid[1]}      # stop server-pod-2: within ~6 s its probe fails and it leaves
  sudo $db_env $self get endpoints; sudo ip netns exec $client curl -s $url

Ctrl-C stops svcbox and removes the namespaces.

INFO
else
  mapped=""
  [ "$port" = 80 ] || mapped=" (ports below 1024 need root or CAP_NET_BIND_SERVICE, so 80 maps to 20000 + 80)"
  cat <<INFO

No root, so no network namespaces and no netfilter: svcbox serve runs the userspace proxy mode,
relaying service-test's port 80 on 127.0.0.1:$port$mapped, DNS on 127.0.0.1:1053 (answering the proxy's
address 127.0.0.1 for the Service), admin API on 127.0.0.1:9153. The pods server-pod-1
(127.0.0.2:8080) and server-pod-2 (127.0.0.3:8080) answer with their names. In another terminal, try:

  dig @127.0.0.1 -p 1053 service-test.default.svc.cluster.local      # A 127.0.0.1
  curl -s $url                                        # run it a few times: both pods answer
  $db_env $self get svc                # PORT(S) 80:$port/TCP
  $db_env $self get endpoints
  curl -s -H "Authorization: Bearer \$($db_env $self admin-token)" \\
    http://127.0.0.1:9153/api/v1/services                       # the admin API needs its token
  kill ${pod_pid[1]}      # stop server-pod-2: within ~6 s its probe fails and it leaves
  $db_env $self get endpoints; curl -s $url

Ctrl-C stops svcbox and removes everything.

INFO
fi
# Until Ctrl-C, or until serve stops by itself (then its status is the script's).
wait "$serve_pid"
