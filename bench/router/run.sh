#!/bin/bash
# bench/router/run.sh [full incr data]  (default: all) — svcbox's router against kube-proxy's
# iptables-mode ruleset, side by side in one run, with the shared harness (gen.py, tm.py, conn.py,
# topo.sh from ../shared/bench/router, or $RTB). Root only; every rule goes into network
# namespaces made here (sbr-bench-*, and topo.sh's rtb-*), none linked to the host, removed on
# exit. Timed parts hold flock /tmp/bench.lock. Prints Markdown, then the ratios to the goals.
# Not part of CI. RUNS (default 5) per cell; NFT=0 skips the nft -f column (slow at N=10,000).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RTB=${RTB:-$ROOT/../shared/bench/router}
# The reference (kube-proxy's ruleset, the traffic topology) comes from the shared harness, which a
# plain clone does not have: without it svcbox's own rows still run.
HAVE_REF=1
if [ ! -x "$RTB/gen.py" ]; then
  HAVE_REF=0
  echo "reference column skipped: no shared router harness at $RTB (set RTB=DIR); svcbox's rows only, no data path step" >&2
fi
BENCH=${BENCH:-$ROOT/build/release/bench/router/router_bench}
RUNS=${RUNS:-5}; NFT=${NFT:-1}; S=$(mktemp -d /tmp/svcbox-rtb.XXXXXX)
"$ROOT/scripts/install-deps.sh"   # nftables among them, for the nft -f column
NS=sbr-bench-$$; B="ip netns exec $NS"; L="flock /tmp/bench.lock"
[ -x "$BENCH" ] || { echo "build first: scripts/build.sh release" >&2; exit 1; }
cleanup() { ip netns del $NS 2>/dev/null || true; $RTB/topo.sh down >/dev/null 2>&1 || true; rm -rf "$S"; }
trap cleanup EXIT
fresh() { ip netns del $NS 2>/dev/null || true; ip netns add $NS; }
median() { awk -F'|' '{gsub(/ /, "", $4); print $4}'; }   # column 4 of a tm.py / router_bench row
gen() { [ -s "$S/$1" ] || $RTB/gen.py "${@:2}" > $S/$1; }
printf '*nat\nCOMMIT\n' > $S/reset.rules
[ $HAVE_REF = 0 ] || $RTB/gen.py jumps > $S/jumps.rules
declare -A M

full() {
  echo; echo "### full sync, N services x 3 endpoints (ms)"; echo
  echo "| case | runs | median | min | max | where the time went |"; echo "|---|---|---|---|---|---|"
  for n in 1000 5000 10000; do
    if [ $HAVE_REF = 1 ]; then
      gen ipt-$n.rules ipt $n 3; fresh; R="iptables-legacy-restore -w 60"
      row=$($L $B python3 $RTB/tm.py "kube-proxy iptables-legacy-restore N=$n cold" $RUNS \
        "$R $S/reset.rules && $R --noflush $S/jumps.rules" "$R --noflush $S/ipt-$n.rules")
      echo "$row |"; M[kp$n]=$(echo "$row" | median)
      echo "$($L $B python3 $RTB/tm.py "kube-proxy iptables-legacy-restore N=$n resync" $RUNS "" \
        "$R --noflush $S/ipt-$n.rules") |"
    fi
    fresh; out=$($L $B "$BENCH" full $n $RUNS); echo "$out"
    M[sv$n]=$(echo "$out" | head -1 | median); M[svr$n]=$(echo "$out" | tail -1 | median)
    if [ "$NFT" = 1 ] && [ $HAVE_REF = 1 ]; then
      gen nft-$n.nft nft $n 3; fresh; r=$RUNS; [ $n -ge 10000 ] && r=1
      echo "$($L $B python3 $RTB/tm.py "nft -f (vmap) N=$n cold" $r \
        "nft delete table ip kube-proxy 2>/dev/null || true" "nft -f $S/nft-$n.nft") |"
    fi
  done
}

incr() {
  n=10000; K=4242
  echo; echo "### one Service's endpoint changes at N=$n (ms, alternating A->B / B->A)"; echo
  echo "| case | runs | median | min | max | where the time went |"; echo "|---|---|---|---|---|---|"
  if [ $HAVE_REF = 1 ]; then
    gen ipt-$n.rules ipt $n 3
    for v in 0 1; do gen part-$v.rules ipt $n 3 --var $K:$v --stale $K:$((1 - v)) --partial; done
    fresh; R="iptables-legacy-restore -w 60"
    $B $R --noflush $S/jumps.rules; $B $R --noflush $S/ipt-$n.rules
    row=$($L $B python3 $RTB/tm.py "kube-proxy partial iptables-legacy-restore --noflush" $RUNS "" \
      "$R --noflush $S/part-1.rules" "$R --noflush $S/part-0.rules")
    echo "$row |"; M[kpi]=$(echo "$row" | median)
  fi
  # The ratio takes the sync that reads the table itself, as iptables-restore does; the row
  # after it is what serve does, with the table read while idle.
  fresh; out=$($L $B "$BENCH" incr-reread $n $RUNS); echo "$out"; M[svi]=$(echo "$out" | median)
  fresh; $L $B "$BENCH" incr $n $RUNS
}

data() {
  if [ $HAVE_REF = 0 ]; then
    echo; echo "### data path: skipped (it needs the shared harness's topology, topo.sh)"
    return
  fi
  ROUNDS=${ROUNDS:-5}; CONNS=${CONNS:-300}
  # Two views of the first-packet cost at N=10000, connect() latency in us:
  # - rounds: p50 to the ClusterIP with the ruleset loaded minus p50 straight to a pod with an
  #   empty nat table, in $ROUNDS (default 5) alternating rounds of $CONNS (300) (median of the rounds);
  # - paired: ClusterIP and pod interleaved with the ruleset loaded (the pod path scans too).
  echo; echo "### data path at N=10000: connect() from rtb-cli (us)"; echo
  echo "| ruleset in rtb-node | ClusterIP | p50 ClusterIP (rules) - p50 pod (no rules), per round | median | paired: ClusterIP p50, pod p50, overhead p50 |"
  echo "|---|---|---|---|---|"
  gen ipt-10000.rules ipt 10000 3
  p50() { $L ip netns exec rtb-cli python3 $RTB/conn.py $1 $2 $CONNS | awk -F'|' '{gsub(/ /, "", $1); print $1}'; }
  for who in kube-proxy svcbox svcbox-N=1; do
    $RTB/topo.sh down >/dev/null 2>&1 || true; $RTB/topo.sh up; N="ip netns exec rtb-node"
    if [ $who = kube-proxy ]; then  # gen.py puts the real Service last in KUBE-SERVICES
      cip=10.96.0.10
      load() { $N iptables-legacy-restore --noflush $S/jumps.rules; $N iptables-legacy-restore -w 60 --noflush $S/ipt-10000.rules; }
      unload() { $N iptables-legacy-restore $S/reset.rules; }
    elif [ $who = svcbox ]; then  # the real Service in the last bucket: every bucket rule first
      cip=10.100.39.127
      load() { TARGET_IP=$cip $N "$BENCH" load 10000 >/dev/null; }
      unload() { $N "$BENCH" cleanup 0 >/dev/null; }
    else  # one Service: what DNAT, conntrack's NAT and svcbox's fixed chains cost by themselves
      cip=10.96.0.10
      load() { $N "$BENCH" load 1 >/dev/null; }
      unload() { $N "$BENCH" cleanup 0 >/dev/null; }
    fi
    diffs=()
    for r in $(seq $ROUNDS); do
      unload; $N conntrack -F >/dev/null 2>&1 || true; base=$(p50 10.244.1.2 8080)
      load; $N conntrack -F >/dev/null 2>&1 || true; svc=$(p50 $cip 80)
      diffs+=($((svc - base)))
    done
    med=$(printf '%s\n' "${diffs[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    $N conntrack -F >/dev/null 2>&1 || true
    pair=$($L ip netns exec rtb-cli python3 "$(dirname "$0")/conn_pair.py" $cip 80 10.244.1.2 8080 $CONNS)
    pair=$(echo "$pair" | awk -F'|' '{gsub(/ /, "", $1); gsub(/ /, "", $3); gsub(/ /, "", $5); print $1 ", " $3 ", " $5}')
    echo "| $who | $cip:80 | ${diffs[*]} | $med | $pair |"
    M[$who-overhead]=$med
  done
  $RTB/topo.sh down >/dev/null 2>&1 || true
}

for step in ${@:-full incr data}; do $step; done

echo; echo "### against the goals"; echo
echo "| goal | svcbox | reference | ratio | target |"; echo "|---|---|---|---|---|"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == "") print "reference column skipped"; else printf "%.2f", a / b }'; }
[ -n "${M[sv10000]:-}" ] && echo "| full sync N=10,000 (cold) | ${M[sv10000]} ms | ${M[kp10000]} ms legacy-restore | $(ratio ${M[sv10000]} ${M[kp10000]}) | <= 0.5 |"
[ -n "${M[svr10000]:-}" ] && echo "| full resync N=10,000 (every chain rewritten) | ${M[svr10000]} ms | ${M[kp10000]} ms legacy-restore | $(ratio ${M[svr10000]} ${M[kp10000]}) | <= 0.5 |"
[ -n "${M[svi]:-}" ] && echo "| one endpoint change N=10,000 | ${M[svi]} ms | ${M[kpi]} ms partial restore | $(ratio ${M[svi]} ${M[kpi]}) | <= 0.5 |"
if [ -n "${M[svcbox-overhead]:-}" ]; then
  echo "| first-packet overhead N=10,000 (connect p50, ClusterIP - pod IP) | ${M[svcbox-overhead]} us | kube-proxy: ${M[kube-proxy-overhead]} us | | <= 10 us |"
fi
