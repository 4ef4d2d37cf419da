#!/usr/bin/env bash
# bench/store: apply 10,000 Services + 30,000 Pods, then measure snapshot rebuild, watcher
# latency (commit -> new snapshot) and memory. Prints Markdown on stdout; progress on stderr.
#
#   bench/store/run.sh
#
# Environment:
#   SERVICES=10000 PODS_PER_SERVICE=3 NAMESPACES=10   size of the generated manifest
#   APPLY_RUNS=3          fresh-registry applies to time (the median is judged)
#   REBUILDS=20 COMMITS=20  store_bench sample counts
#   BUILD_DIR=build/release  where svcbox and store_bench are (and are built, with the
#                            release preset when it is build/release)
#   SKIP_BUILD=1          use the binaries in BUILD_DIR as they are
#   TMPDIR                where the manifest and registry files go (the file system matters:
#                         every commit is fsync'ed)
#
# Local files only: no network, no netfilter, no serve daemon.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/../.."

SERVICES=${SERVICES:-10000}
PODS_PER_SERVICE=${PODS_PER_SERVICE:-3}
NAMESPACES=${NAMESPACES:-10}
APPLY_RUNS=${APPLY_RUNS:-3}
REBUILDS=${REBUILDS:-20}
COMMITS=${COMMITS:-20}
BUILD_DIR=${BUILD_DIR:-build/release}
SKIP_BUILD=${SKIP_BUILD:-0}
APPLY_GOAL_S=3

# Settings from the caller's environment must not reach svcbox (--db is passed explicitly).
for variable in $(compgen -e); do
  if [[ $variable == SVCBOX_* ]]; then unset "$variable"; fi
done

log() { echo "bench/store: $*" >&2; }

if [[ $SKIP_BUILD != 1 ]]; then
  log "building svcbox and store_bench in $BUILD_DIR"
  if [[ $BUILD_DIR == build/release ]]; then
    build() { cmake --preset release && cmake --build --preset release --target svcbox store_bench; }
  else
    build() { cmake --build "$BUILD_DIR" --target svcbox store_bench; }
  fi
  if ! build >&2; then
    log "the build failed; to bench anyway, build elsewhere without -Werror, e.g."
    log "  cmake -S . -B /tmp/svcbox-bench-build -G Ninja -DCMAKE_BUILD_TYPE=Release \\"
    log "    -DSVCBOX_WERROR=OFF -DSVCBOX_TESTS=OFF && BUILD_DIR=/tmp/svcbox-bench-build $0"
    exit 1
  fi
fi
svcbox=$BUILD_DIR/app/svcbox
store_bench=$BUILD_DIR/bench/store/store_bench
for binary in "$svcbox" "$store_bench"; do
  [[ -x $binary ]] || { log "$binary is missing; build it or set BUILD_DIR"; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/svcbox-bench-store.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

manifest=$tmp/manifest.yaml
log "generating $SERVICES Services x $PODS_PER_SERVICE Pods in $NAMESPACES namespaces"
python3 bench/store/gen_manifest.py --services "$SERVICES" --pods-per-service "$PODS_PER_SERVICE" \
  --namespaces "$NAMESPACES" -o "$manifest"
objects=$((SERVICES * (1 + PODS_PER_SERVICE)))

# run_apply DB OUT: applies the manifest; prints "wall_seconds peak_rss_kib" of svcbox apply.
run_apply() {
  python3 - "$svcbox" "$manifest" "$1" "$2" <<'EOF'
import resource, subprocess, sys, time
svcbox, manifest, db, out = sys.argv[1:]
with open(out, "w") as stdout:
    start = time.perf_counter()
    code = subprocess.run([svcbox, "apply", "-f", manifest, "--db", db], stdout=stdout).returncode
    elapsed = time.perf_counter() - start
if code != 0:
    sys.exit("svcbox apply exited with %d" % code)
print("%.2f %d" % (elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
EOF
}

# expect_actions OUT ACTION: every object must be reported with ACTION ("pod/x created").
expect_actions() {
  local count
  count=$(awk -v action="$2" '$2 == action' "$1" | wc -l)
  if [[ $count != "$objects" ]]; then
    log "expected $objects objects $2, svcbox apply reported $count; its first lines:"
    head -5 "$1" >&2
    exit 1
  fi
}

# stats V...: "min median max" of the numbers given.
stats() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.2f %.2f %.2f\n", v[1], m, v[NR] }'
}

fresh_times=()
fresh_rss=()
for run in $(seq 1 "$APPLY_RUNS"); do
  db=$tmp/registry-$run.db
  log "apply $run/$APPLY_RUNS on a fresh registry"
  result=$(run_apply "$db" "$tmp/apply-$run.out")
  read -r seconds rss <<<"$result"
  expect_actions "$tmp/apply-$run.out" created
  fresh_times+=("$seconds")
  fresh_rss+=("$rss")
done
registry=$tmp/registry-$APPLY_RUNS.db
log "re-applying the unchanged manifest"
result=$(run_apply "$registry" "$tmp/reapply.out")
read -r reapply_seconds reapply_rss <<<"$result"
expect_actions "$tmp/reapply.out" unchanged

log "store_bench ($REBUILDS rebuilds, $COMMITS commits of each kind)"
bench_output=$("$store_bench" --rebuilds "$REBUILDS" --commits "$COMMITS" "$registry")

read -r fresh_min fresh_median fresh_max < <(stats "${fresh_times[@]}")
read -r _ _ fresh_rss_max < <(stats "${fresh_rss[@]}")
apply_result=$(awk -v m="$fresh_median" -v g="$APPLY_GOAL_S" 'BEGIN {
  printf "| Apply %d objects, fresh registry, median | %.2f s | ≤ %d s | %.2f× | %s |",
    '"$objects"', m, g, g / m, m <= g ? "PASS" : "MISS" }')

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
fs_type=$(df -PT "$tmp" | awk 'NR == 2 { print $2 }')
cat <<EOF
## bench/store

Manifest: $SERVICES Services + $((SERVICES * PODS_PER_SERVICE)) Pods in $NAMESPACES namespaces \
($(du -k "$manifest" | cut -f1) KiB YAML). Machine: $(nproc) CPUs ($cpu), load average \
$(cut -d' ' -f1-3 /proc/loadavg), registry on $fs_type.

### Apply (\`svcbox apply -f manifest.yaml --db …\`, wall time, includes YAML parsing)

| Run | Runs | Min | Median | Max | Peak RSS of svcbox |
|---|---:|---:|---:|---:|---:|
| Fresh registry (all created) | $APPLY_RUNS | $fresh_min s | $fresh_median s | $fresh_max s | $(awk -v k="$fresh_rss_max" 'BEGIN { printf "%.1f MiB", k / 1024 }') |
| Same manifest again (all unchanged) | 1 | $reapply_seconds s | $reapply_seconds s | $reapply_seconds s | $(awk -v k="$reapply_rss" 'BEGIN { printf "%.1f MiB", k / 1024 }') |

$(sed '/^### Goals/,$d' <<<"$bench_output")

### Summary (headroom = goal / measured; ≥ 1.00 meets the goal)

| Goal | Measured | Target | Headroom | Result |
|---|---:|---:|---:|---|
$apply_result
$(grep -E '\| (PASS|MISS) \|$' <<<"$bench_output")
| Peak RSS of \`svcbox apply\`, fresh registry | $(awk -v k="$fresh_rss_max" 'BEGIN { printf "%.1f MiB", k / 1024 }') | — (no goal) | — | — |
$(grep -E '^\| RSS holding' <<<"$bench_output")
EOF
