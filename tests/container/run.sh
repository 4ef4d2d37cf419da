#!/usr/bin/env bash
# Builds the svcbox image and the Compose demo with podman (standing in for Docker: no engine and no
# registry here) and checks them for real: Service traffic through svcbox's rules and DNS (from the
# client container and from a `compose run` one), failover when a pod stops, rules only inside
# svcbox's container, the userspace mode without NET_ADMIN, and a teardown that leaves nothing
# behind. Root only; scripts/test.sh runs it last, so CI does.
#
# The host is left as it was found, on a fresh machine as on one where podman ran before:
# - every podman command runs in a network namespace of the test's ($project: lo, then the demo's
#   bridge, no route out), so netavark's bridge, its NETAVARK-* chains and nf_tables tables, the
#   IPv4 forwarding it turns on and aardvark-dns all live and die there. Only the image builds use
#   the host's network (`--network host`, no netavark rules), for apt-get.
# - every podman command also runs in a mount namespace of the test's, where /run/netns (podman's
#   own netns-* entries for its containers), /run/containers, /run/runc and /run/libpod are private
#   tmpfs: podman's mounts and run state never appear on the host and go with that namespace.
# - podman's storage, run root and network definitions live in a work folder removed on every exit.
# - the end compares the host's netfilter state (nft, legacy iptables), its forwarding sysctls and
#   podman's /run/netns entries with what they were before, and checks that no process of podman or
#   of its containers is left and that both namespaces are gone.
# The base image and the built images are cached in $SVCBOX_CI_CACHE (default /var/cache/svcbox-ci)
# so that a rerun with unchanged sources skips the build.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${SVCBOX_CI_CACHE:-/var/cache/svcbox-ci}
project=svcbox-ci-$$
start=$(date +%s.%N)

say() { printf '[%6.1fs] %s\n' "$(echo "$(date +%s.%N) - $start" | bc)" "$*"; }
fail() { say "FAIL: $*"; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
  if [ "${CI:-}" = true ]; then fail "needs root"; fi
  echo "SKIP: tests/container/run.sh needs root (podman as root, netfilter inside containers)"
  exit 0
fi

# ---- packages, bc for the timings
# shellcheck source=tests/container/base-image.sh
. "$repo/tests/container/base-image.sh"
podman_packages_install buildah podman-compose slirp4netns iptables nftables iproute2 bc
say "packages ready"

# ---- the host as it is before the test: compared at the end (and while the demo runs)
# The whole netfilter state, without counters: nf_tables (what iptables-nft and netavark write) and
# the legacy x_tables (what libiptc writes), IPv4 and IPv6. $1: a network namespace (a path) to read
# instead of the host's. A tool that fails fails the snapshot: two equal error messages must not
# pass for two equal rulesets.
netfilter_state() {
  local in=() out save
  [ -z "${1:-}" ] || in=(nsenter --net="$1" --)
  out=$(timeout 30 "${in[@]}" nft -s list ruleset 2>&1) || { echo "nft -s list ruleset: $out" >&2; return 1; }
  printf '%s\n' "$out"
  for save in iptables-legacy-save ip6tables-legacy-save; do
    out=$(timeout 30 "${in[@]}" "$save") || { echo "$save failed" >&2; return 1; }
    printf '## %s\n' "$save"
    { grep -v '^#' <<<"$out" || true; } | sed 's/\[[0-9]*:[0-9]*\]//'
  done
}
# Forwarding and the other global IPv4/IPv6 settings (netavark turns ip_forward on where it runs)
host_sysctls() {
  (cd /proc/sys && grep -H . net/ipv4/ip_forward net/ipv4/conf/all/* net/ipv4/conf/default/* \
    net/ipv6/conf/all/* net/ipv6/conf/default/* 2>/dev/null) || true
}
# podman's network namespaces for its containers (netns-*), on the host's /run/netns
podman_netns() { { ls -A /run/netns 2>/dev/null || true; } | { grep '^netns-' || true; }; }
netfilter_before=$(netfilter_state) || fail "cannot read the host's netfilter state"
sysctls_before=$(host_sysctls)
grep -q '^net/ipv4/ip_forward:' <<<"$sysctls_before" || fail "cannot read the host's sysctls"
podman_netns_before=$(podman_netns)

# ---- state the cleanup needs, set as things are made
work='' demo_build='' podman_ready='' netns_made='' ns_bound='' mnt_ns='' netns_id='' mnt_id=''
run_dirs_made=()
subnets=()

# Processes of this test still running, by PID (never by name): those in its network or mount
# namespace (podman, conmon, netavark, aardvark-dns; only while they exist, see release), those in
# its containers' cgroups (container IDs from podman's event log in the work folder), and those
# naming its work folder.
our_pids() {
  python3 - "$netns_id" "$mnt_id" "$work" $$ <<'PY'
import os, re, sys
netns, mnt, work, script = sys.argv[1:]
ids = set()
for f in ("events.log", "events.kept") if work else ():
    try:
        ids |= set(re.findall(r'"ID":"([0-9a-f]{64})"', open(os.path.join(work, f)).read()))
    except OSError:
        pass
for pid in filter(str.isdigit, os.listdir("/proc")):
    if pid in (script, str(os.getpid()), str(os.getppid())):
        continue
    try:
        if (netns and os.readlink(f"/proc/{pid}/ns/net") == netns) or \
           (mnt and os.readlink(f"/proc/{pid}/ns/mnt") == mnt) or \
           (work and work.encode() in open(f"/proc/{pid}/cmdline", "rb").read()) or \
           (ids and any(f"libpod-{i}" in line for line in open(f"/proc/{pid}/cgroup") for i in ids)):
            print(pid)
    except OSError:
        pass
PY
}
describe_pids() { ps -o pid=,comm=,args= -p "$(IFS=,; echo "$*")" 2>/dev/null | cut -c1-160; }

# podman's own teardown: containers, networks, storage (only ever with the test's confined
# configuration), and podman's netns entries in the test's private /run/netns. Idempotent, bounded.
podman_teardown() {
  local -
  set +e
  # a demo image build still running in the background (timeout passes the signal on to podman)
  [ -z "$demo_build" ] || { kill "$demo_build" 2>/dev/null && wait "$demo_build"; demo_build=; }
  [ -n "$podman_ready" ] || return 0
  podman_ready=
  "${compose[@]}" down -t 0 >/dev/null 2>&1
  timeout 60 podman rm -f -t 0 "$project-userspace" >/dev/null 2>&1
  timeout 60 podman ps -aq | xargs -r timeout 60 podman rm -f -t 0 >/dev/null 2>&1
  timeout 60 podman network ls --format '{{.Name}}' | grep "^$project" |
    xargs -r timeout 60 podman network rm -f >/dev/null 2>&1
  cp "$work/events.log" "$work/events.kept" 2>/dev/null  # for our_pids: reset may remove the log
  timeout 120 podman system reset -f >/dev/null 2>&1
  timeout 30 nsenter --mount="$mnt_ns" -- sh -c \
    'for f in /run/netns/*; do [ -e "$f" ] || continue; umount "$f"; rm -f "$f"; done' 2>/dev/null
}

# The test's namespaces, the folders it made in /run and its work folder. Whatever of the test's
# still runs is stopped first (TERM, then KILL). Idempotent, bounded.
release() {
  local -
  set +e
  local pids deadline d
  pids=$(our_pids)
  if [ -n "$pids" ]; then
    kill -TERM $pids 2>/dev/null
    deadline=$((SECONDS + 10))
    while pids=$(our_pids) && [ -n "$pids" ] && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    [ -z "$pids" ] || { kill -KILL $pids 2>/dev/null; sleep 1; }
  fi
  # the mount namespace goes with its last process and this bind mount (and with it podman's
  # mounts and everything under its private /run folders)
  if [ -n "$ns_bound" ]; then
    umount "$work/ns/mnt" 2>/dev/null
    umount "$work/ns" && ns_bound=
  fi
  [ -z "$netns_made" ] || { ip netns del "$project" && netns_made=; }
  # a released namespace's inode number can go to someone else's new namespace at once: from here
  # on our_pids must not match by it
  mnt_id='' netns_id=''
  # folders the test had to make in /run as mount points for its private ones (a fresh host has
  # none of them); rmdir only removes them empty
  for d in "${run_dirs_made[@]}"; do
    if mountpoint -q "$d" && [ -z "$(ls -A "$d")" ]; then umount "$d"; fi
    rmdir "$d" 2>/dev/null
  done
  run_dirs_made=()
  if [ -n "$work" ]; then
    # mounts left under the work folder (there should be none on the host)
    grep -o " ${work}[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$work"
    work=
  fi
}

cleanup() {
  local rc=$?
  set +e
  podman_teardown
  release
  say "cleaned up (exit $rc)"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- podman confined to a work folder: storage, run state, network definitions, event log
work=$(mktemp -d /tmp/svcbox-ci.XXXXXX)
mkdir -p "$work/networks"
cat >"$work/containers.conf" <<CONF
[containers]
# root lacks CAP_SYS_RESOURCE on this VM: podman must not raise the limits above the hard ones
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=16384:16384"]
[engine]
# crun refuses the hybrid cgroup layout here
runtime = "runc"
# every container the test made, for the check that none of their processes is left
events_logger = "file"
events_logfile_path = "$work/events.log"
[network]
network_config_dir = "$work/networks"
CONF
cat >"$work/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$work/storage"
runroot = "$work/run"
CONF
export CONTAINERS_CONF=$work/containers.conf CONTAINERS_STORAGE_CONF=$work/storage.conf
# (podman below, the cleanup's included, only ever sees this confined configuration)
podman_compose=(podman-compose --podman-path "$work/podman" -p "$project" -f "$work/docker-compose.yml")
compose=(timeout 300 "${podman_compose[@]}")
# podman-compose 1.0.3 ignores a network's ipam and a service's ipv4_address, dns and dns_search,
# all of which the demo needs (and Docker Compose honours). The compose file stays plain Docker
# Compose; here the network is created from its ipam first (podman-compose then uses it), and a
# podman shim adds --ip/--dns/--dns-search to each `podman run` from the same file.
compose_file=$repo/container/docker-compose.yml
mkdir -p "$work/run-args"
python3 - "$compose_file" "$project" "$work" <<'PY'
import os, sys, yaml
path, project, work = sys.argv[1:]
base = os.path.dirname(os.path.abspath(path))
doc = yaml.safe_load(open(path))
nets = doc.get("networks") or {}
with open(f"{work}/networks.txt", "w") as out:
    for name, desc in nets.items():
        args = [f"{project}_{name}"]
        for c in ((desc or {}).get("ipam") or {}).get("config") or []:
            args += [f"--subnet={c['subnet']}"]
            args += [f"--gateway={c['gateway']}"] if "gateway" in c else []
            args += [f"--ip-range={c['ip_range']}"] if "ip_range" in c else []
        out.write(" ".join(args) + "\n")
for service, cnt in doc["services"].items():
    args = []
    for desc in (cnt.get("networks") or {}).values() if isinstance(cnt.get("networks"), dict) else []:
        if desc and "ipv4_address" in desc:
            args.append(f"--ip={desc['ipv4_address']}")
    for d in cnt.get("dns") or []:
        args.append(f"--dns={d}")
    for d in cnt.get("dns_search") or []:
        args.append(f"--dns-search={d}")
    open(f"{work}/run-args/{project}_{service}", "w").write("".join(a + "\n" for a in args))
    # 1.0.3 also rejects a service's networks in mapping form: give it the names only, and the
    # relative paths made absolute, since this copy lives in the work folder.
    if isinstance(cnt.get("networks"), dict):
        cnt["networks"] = list(cnt["networks"])
    vols = []
    for v in cnt.get("volumes") or []:
        src, rest = v.split(":", 1)
        vols.append((os.path.normpath(os.path.join(base, src)) if src.startswith(".") else src) + ":" + rest)
    if vols:
        cnt["volumes"] = vols
    if isinstance(cnt.get("build"), dict):
        cnt["build"]["context"] = os.path.normpath(os.path.join(base, cnt["build"]["context"]))
yaml.safe_dump(doc, open(f"{work}/docker-compose.yml", "w"))
PY
cat >"$work/podman" <<'SHIM'
#!/bin/bash
# podman, plus the per-container arguments tests/container/run.sh derived from the compose file
if [ "${1:-}" = run ]; then
  for arg in "$@"; do
    # NAME is PROJECT_SERVICE_1 for `up`, PROJECT_SERVICE_tmpNNNNN for `run`
    case $arg in --name=*) name=${arg#--name=} extra=${SVCBOX_CI_RUN_ARGS}/${name%_*} ;; esac
  done
  if [ -n "${extra:-}" ] && [ -s "$extra" ]; then
    mapfile -t more <"$extra"
    shift
    exec podman run "${more[@]}" "$@"
  fi
fi
exec podman "$@"
SHIM
chmod +x "$work/podman"
export SVCBOX_CI_RUN_ARGS=$work/run-args
mapfile -t subnets < <(sed -n 's/.*--subnet=\([^ ]*\).*/\1/p' "$work/networks.txt")
host_addrs() { local s; for s in "${subnets[@]}"; do ip -o addr show to "$s"; done; }
addrs_before=$(host_addrs)

# ---- the test's namespaces
# Network: podman and everything it starts (netavark, aardvark-dns, conmon, the containers' veths
# and their bridge) runs in $project, which has lo and nothing else: no link to the host's
# interfaces, no route out.
[ -d /run/netns ] || run_dirs_made+=(/run/netns)  # `ip netns add` makes it, a mount point
if ! ip netns add "$project" 2>"$work/netns.err"; then
  [ "${CI:-}" != true ] || fail "cannot make a network namespace: $(cat "$work/netns.err")"
  echo "SKIP: tests/container/run.sh cannot make a network namespace: $(cat "$work/netns.err")"
  exit 0
fi
netns_made=1
ip -n "$project" link set lo up
netns_id="net:[$(stat -c %i "/run/netns/$project")]"
[ "$(ip -n "$project" -o link show | wc -l)" -eq 1 ] && [ -z "$(ip -n "$project" route show)" ] ||
  fail "the new namespace $project is not empty"
# Mount: a namespace of the test's, kept by a bind mount of its own (`unshare --mount=FILE` needs
# a private mount to put it on). In it podman's own /run folders are private tmpfs: /run/netns,
# where podman bind-mounts a netns-* entry per container network namespace (a fixed path for root),
# /run/containers (netavark's IPAM database and aardvark-dns' configuration, also fixed), runc's
# state and podman's tmpdir. The host's /run/netns is detached there, so this namespace holds no
# reference to anyone else's network namespaces. Image layers and container root filesystems are
# mounted there too, never on the host.
mkdir "$work/ns"
mount --bind "$work/ns" "$work/ns"
ns_bound=1
mount --make-private "$work/ns"
touch "$work/ns/mnt"
unshare --mount="$work/ns/mnt" --propagation slave true || fail "cannot make a mount namespace"
mnt_ns=$work/ns/mnt
mnt_id="mnt:[$(stat -c %i "$mnt_ns")]"
private_run=(/run/netns /run/containers /run/runc /run/libpod)
for d in "${private_run[@]}"; do
  # a mount point is needed on the host; one the test had to make is removed at the end
  [ -d "$d" ] || { mkdir -m 0755 "$d" && run_dirs_made+=("$d"); }
done
nsenter --mount="$mnt_ns" -- sh -ec '
  if mountpoint -q /run/netns; then umount -l /run/netns; fi
  for d; do mount -t tmpfs -o mode=0755 svcbox-ci "$d"; done' sh "${private_run[@]}" ||
  fail "cannot make podman's /run folders private"

# `podman` for the rest of the test (podman-compose's shim included): the real one in both
# namespaces, or with SVCBOX_CI_HOST_NETWORK=1 (image builds) in the mount namespace only
real_podman=$(command -v podman)
mkdir "$work/bin"
{
  echo '#!/bin/bash'
  echo '# podman in the namespaces of tests/container/run.sh'
  printf 'net=(--net=%q)\n' "/run/netns/$project"
  echo '[ "${SVCBOX_CI_HOST_NETWORK:-}" != 1 ] || net=()'
  printf 'exec nsenter --mount=%q "${net[@]}" --wd="$PWD" -- %q "$@"\n' "$mnt_ns" "$real_podman"
} >"$work/bin/podman"
chmod +x "$work/bin/podman"
export PATH=$work/bin:$PATH
podman_ready=1
say "podman confined to the network namespace $project and a mount namespace of the test's"

# ---- base image: debootstrap once (the host's network: it downloads; the test's mount namespace:
# its chroot mounts stay there), then podman load from the cache
msg=$(base_image_load "$cache" "$work" nsenter --mount="$mnt_ns" --) || fail "base image"
say "$msg"

# ---- the images, keyed by the sources they are built from
# only what the images are built from: not tests, docs or the demo's compose and manifest files
# (a copy without .git, as tests/fresh makes, lists its files instead: it holds nothing ignored
# but build/)
source_files() {
  if git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$repo" ls-files -co --exclude-standard
  else
    (cd "$repo" && find . -path ./build -prune -o -type f -print | sed 's|^\./||')
  fi
}
key=$(cd "$repo" && source_files |
  grep -v -e '^tests/' -e '^bench/' -e '^docs/' -e '\.md$' -e '^container/docker-compose.yml$' -e '^container/demo.yaml$' |
  sort | xargs -d '\n' sha256sum 2>/dev/null | sha256sum | cut -c1-16)
images=$cache/images-$key.tar
if [ -s "$images" ]; then
  timeout 300 podman load -q -i "$images" >/dev/null
  say "svcbox and demo images loaded from the cache ($key)"
else
  # --network host: the RUN steps (apt-get) use the host's network as they are, so podman creates no
  # netavark bridge and no NAT rules for the builds. The demo image builds beside svcbox's (apt
  # downloads overlap the compile); --jobs 2 runs svcbox's builder and runtime stages side by side.
  build=(timeout 1500 env SVCBOX_CI_HOST_NETWORK=1 podman build --pull=never --format docker --network host)
  "${build[@]}" -f "$repo/container/Dockerfile.demo" -t svcbox-demo:latest "$repo" \
    >"$work/build-demo.log" 2>&1 &
  demo_build=$!
  # The builder compiles through ccache into $cache/ccache, so a change recompiles only what it
  # touched; with the cache folder gone it is a full build (what a plain docker build does).
  mkdir -p "$cache/ccache"
  "${build[@]}" --jobs 2 --volume "$cache/ccache:/ccache" -f "$repo/container/Dockerfile" -t svcbox:latest "$repo" \
    >"$work/build.log" 2>&1 || { tail -n 30 "$work/build.log"; fail "podman build of container/Dockerfile"; }
  say "svcbox image built"
  wait "$demo_build" || { tail -n 30 "$work/build-demo.log"; demo_build=; fail "podman build of container/Dockerfile.demo"; }
  demo_build=
  say "demo image built"
  rm -f "$cache"/images-*.tar
  timeout 300 podman save -q -m -o "$images.tmp" svcbox:latest svcbox-demo:latest && mv "$images.tmp" "$images"
fi
size=$(timeout 60 podman image inspect svcbox:latest --format '{{.Size}}')
say "runtime image svcbox:latest: $((size / 1000000)) MB"
# built without the tests, so without their hooks (CMakeLists.txt): not even their names
hooks=$(timeout 60 podman run --rm --network none --entrypoint grep svcbox:latest -c SVCBOX_TEST_ \
  /usr/local/bin/svcbox || true)
[ "$hooks" = 0 ] || fail "the image's svcbox reads test hooks (${hooks:-no answer} SVCBOX_TEST_ names)"
say "the image's svcbox holds no test hook"

# ---- the Compose demo, in the test's network namespace
while read -r net args; do
  timeout 60 podman network create $args "$net" >/dev/null || fail "network $net"
done <"$work/networks.txt"
"${compose[@]}" up -d --no-build >"$work/up.log" 2>&1 || { cat "$work/up.log"; fail "compose up"; }
say "compose up"
c_svcbox=${project}_svcbox_1 c_pod1=${project}_pod-1_1 c_client=${project}_client_1
for c in "$c_svcbox" "$c_pod1" "${project}_pod-2_1" "$c_client"; do
  timeout 30 podman container exists "$c" || { "${compose[@]}" ps; fail "container $c missing"; }
done
# Before any traffic: the demo's network is inside the test's namespace, and nothing routes out of
# it (the containers' default route points at the bridge there, which has no route further).
for s in "${subnets[@]}"; do
  [ -n "$(ip -n "$project" -o addr show to "$s")" ] || fail "the demo's bridge for $s is not in $project"
done
[ "$(host_addrs)" = "$addrs_before" ] || fail "the demo's subnets appeared on the host: $(host_addrs)"
[ -z "$(ip -n "$project" route show default)" ] && [ -z "$(ip -n "$project" -6 route show default)" ] ||
  fail "$project has a default route"
say "the demo's bridge is in $project, which routes nowhere else: $(ip -n "$project" route show | tr '\n' ';')"
# the check for leftover processes at the end sees the containers' (svcbox's, by its cgroup)
ctr_pid=$(timeout 10 podman inspect --format '{{.State.Pid}}' "$c_svcbox")
grep -qx "$ctr_pid" <<<"$(our_pids)" || fail "the leftover-process check does not see svcbox's container (PID $ctr_pid)"
healthz() {  # $1 container, $2 path: the image's own HTTP check over bash's /dev/tcp
  timeout 5 podman exec "$1" bash -c "exec 3<>/dev/tcp/127.0.0.1/9153 && printf 'GET $2 HTTP/1.0\r\n\r\n' >&3 && head -n1 <&3" 2>/dev/null | grep -q ' 200 '
}
ask() {  # one request through the Service name from the client; prints the pod's name or "error"
  timeout 10 podman exec "$c_client" curl -s --max-time 2 http://service-test.default.svc 2>/dev/null || echo error
}
count() {  # $1 requests; prints "pod1 pod2 errors"
  local a=0 b=0 e=0 i
  for ((i = 0; i < $1; i++)); do
    case $(ask) in server-pod-1) a=$((a + 1)) ;; server-pod-2) b=$((b + 1)) ;; *) e=$((e + 1)) ;; esac
  done
  echo "$a $b $e"
}

deadline=$((SECONDS + 90))
until healthz "$c_svcbox" /readyz && [ "$(ask)" != error ]; do
  [ $SECONDS -lt $deadline ] || { timeout 10 podman logs "$c_svcbox" | tail -n 30; fail "demo not answering within 90 s"; }
  sleep 1
done
say "svcbox ready, Service answering"

read -r a b e <<<"$(count 20)"
say "20 requests: server-pod-1 $a, server-pod-2 $b, errors $e"
[ "$a" -gt 0 ] && [ "$b" -gt 0 ] && [ "$e" -eq 0 ] || fail "both pods should answer, without errors"

# The README's `docker compose run --rm client curl http://service-test.default.svc`: a new client
# container on the compose network, with the service's dns settings, answered by a pod. Two
# podman-compose 1.0.3 departures (container/README.md): without --no-deps its `run` first does
# `up --build` of the dependencies, which rebuilds svcbox's image from scratch (a loaded image
# has no layer cache) on podman's default network, and then tries to start a second svcbox_1;
# Docker Compose only starts dependencies that are not running, and svcbox is. -T: no terminal
# here. It also exits 0 whatever the container did, so the answer itself is the check.
out=$(timeout 120 "${podman_compose[@]}" run --no-deps --rm -T client \
  curl -s --max-time 5 http://service-test.default.svc </dev/null 2>"$work/run-client.err") || true
pod=$(grep -x 'server-pod-[12]' <<<"$out" || true)
[ -n "$pod" ] || { echo "$out" | tail -n 5; tail -n 5 "$work/run-client.err"; fail "compose run client curl: no answer from a pod"; }
say "compose run --rm client curl http://service-test.default.svc: $pod"
rules=$(timeout 10 podman exec "$c_svcbox" iptables-legacy-save -t nat | grep -c SVCBOX || true)
[ "$rules" -gt 0 ] || fail "no SVCBOX rules inside svcbox's container"
say "$rules SVCBOX lines in svcbox's nat table"
# (the whole dumps: `iptables-legacy-save -t nat` would itself create an empty legacy nat table in a
# namespace that has none, and a table in the host's stays until reboot)
netfilter_now=$(netfilter_state) || fail "cannot read the host's netfilter state"
! grep -q SVCBOX <<<"$netfilter_now" || fail "SVCBOX rules on the host"
# netavark's rules for the demo network are where podman ran, in the test's namespace (which also
# shows that netfilter_state sees what netavark writes), and none of svcbox's; the host's netfilter
# state and forwarding are still what they were before the test.
ns_netfilter=$(netfilter_state "/run/netns/$project") || fail "cannot read the netfilter state of $project"
ns_chains=$(grep -cE '^[[:space:]]*chain NETAVARK|^:NETAVARK' <<<"$ns_netfilter" || true)
[ "$ns_chains" -gt 0 ] || { echo "$ns_netfilter" | head -n 20; fail "no NETAVARK chains in $project"; }
! grep -q SVCBOX <<<"$ns_netfilter" || fail "SVCBOX rules in $project (they belong in svcbox's container)"
if [ "$netfilter_now" != "$netfilter_before" ]; then
  { diff <(echo "$netfilter_before") <(echo "$netfilter_now") || true; } | head -n 40
  fail "the host's netfilter rules changed while the demo runs (diff above: < before, > now)"
fi
sysctls_now=$(host_sysctls)
[ "$sysctls_now" = "$sysctls_before" ] || { diff <(echo "$sysctls_before") <(echo "$sysctls_now") || true
  fail "the host's sysctls changed while the demo runs (diff above: < before, > now)"; }
say "netavark's $ns_chains NETAVARK chains are in $project; the host's netfilter rules and sysctls are untouched"

# A Service created while serving (the CLI beside serve, as the admin API would): its ClusterIP
# is in the claimed service CIDR, so the client reaches it with no new address or route.
printf '%s\n' 'apiVersion: v1' 'kind: Service' 'metadata: {name: late}' \
  'spec: {selector: {app: server_pod1}, ports: [{port: 80, targetPort: 8080}]}' |
  timeout 20 podman exec -i "$c_svcbox" svcbox apply -f - >/dev/null || fail "apply of a new Service while serving"
deadline=$((SECONDS + 20))
until late=$(timeout 10 podman exec "$c_client" curl -s --max-time 2 http://late.default.svc 2>/dev/null) &&
  [[ $late == server-pod-[12] ]]; do
  [ $SECONDS -lt $deadline ] || fail "a Service created while serving is not reachable: ${late:-no answer}"
  sleep 0.5
done
say "a Service created while serving answers through its ClusterIP: $late"

timeout 30 podman stop -t 0 "$c_pod1" >/dev/null
stopped=$SECONDS
# Traffic alone cannot tell "moved" from a lucky run of random picks: wait for svcbox to mark the pod
# not ready (the probe's verdict), then check the traffic.
deadline=$((SECONDS + 15))
until pods=$(timeout 10 podman exec "$c_svcbox" svcbox get pods server-pod-1 2>&1); [[ $pods == *" 0/1 "* ]]; do
  [ $SECONDS -lt $deadline ] || fail "server-pod-1 still ready 15 s after it stopped: $pods"
  sleep 0.5
done
say "server-pod-1 not ready $((SECONDS - stopped)) s after it stopped"
# The registry says so first; the rules follow within a sync (longer on a loaded machine). Traffic
# is checked once the kernel's rules no longer name the pod.
pod1_ip=172.28.0.11
deadline=$((SECONDS + 15))
# (into a variable: grep -q closing the pipe early would fail podman exec under pipefail)
until nat=$(timeout 10 podman exec "$c_svcbox" iptables-legacy-save -t nat) &&
  [[ $nat != *"--to-destination $pod1_ip:"* ]]; do
  [ $SECONDS -lt $deadline ] || fail "the rules still DNAT to server-pod-1 ($pod1_ip) 15 s after it was marked not ready"
  sleep 0.2
done
say "server-pod-1 gone from the rules $((SECONDS - stopped)) s after it stopped"
read -r a b e <<<"$(count 20)"
say "20 requests: server-pod-1 $a, server-pod-2 $b, errors $e"
[ "$a" -eq 0 ] && [ "$b" -eq 20 ] || fail "all 20 should go to server-pod-2"

# ---- the plain image without NET_ADMIN: userspace mode, health answering; no network at all
# stderr: podman cannot add the healthcheck timer without systemd here; `healthcheck run` works
timeout 60 podman run -d --name "$project-userspace" --network none svcbox:latest >/dev/null 2>"$work/run.err" ||
  { cat "$work/run.err"; fail "podman run of the image without NET_ADMIN"; }
deadline=$((SECONDS + 30))
until healthz "$project-userspace" /healthz; do
  [ $SECONDS -lt $deadline ] || { timeout 10 podman logs "$project-userspace"; fail "/healthz without NET_ADMIN"; }
  sleep 0.5
done
# into a variable first: grep -q closing the pipe early would fail podman logs under pipefail
log=$(timeout 10 podman logs "$project-userspace" 2>&1)
grep -q 'proxy mode userspace (auto' <<<"$log" ||
  { timeout 10 podman logs "$project-userspace"; fail "no userspace-mode line in the log"; }
timeout 30 podman healthcheck run "$project-userspace" >/dev/null || fail "the image's HEALTHCHECK"
say "without NET_ADMIN: userspace mode, /healthz and HEALTHCHECK answer"

# ---- teardown leaves nothing
timeout 60 podman rm -f -t 0 "$project-userspace" >/dev/null 2>&1
"${compose[@]}" down -t 0 >/dev/null 2>&1
for n in $(timeout 30 podman network ls --format '{{.Name}}' | grep "^$project" || true); do
  timeout 30 podman network rm "$n" >/dev/null
done
left=$(timeout 30 podman ps -aq | wc -l)
[ "$left" -eq 0 ] || fail "$left containers left"
! timeout 30 podman network ls --format '{{.Name}}' | grep -q "^svcbox-ci-" || fail "networks left"
# podman removes the netns-* entry of each container it removes (in the test's private /run/netns)
ns_left=$(timeout 10 nsenter --mount="$mnt_ns" -- ls -A /run/netns) || fail "cannot list podman's /run/netns"
[ -z "$ns_left" ] || fail "podman left network namespaces of its containers: $ns_left"
podman_teardown
pids=$(our_pids)
[ -z "$pids" ] || { describe_pids $pids; fail "processes of podman or its containers left (above)"; }
# With no process in them, the namespaces live on only through mounts: the test's own two binds
binds=$(awk -v n="$netns_id" -v m="$mnt_id" '$4 == n || $4 == m {print $5}' /proc/self/mountinfo | sort)
[ "$binds" = "$(printf '%s\n' "/run/netns/$project" "$mnt_ns" | sort)" ] ||
  fail "the test's namespaces are mounted elsewhere too: $(echo $binds)"
say "teardown: no containers, networks, container network namespaces or podman processes"

# ---- the host as it was before
made=("${run_dirs_made[@]}")
release
[ -z "$netns_made" ] && [ -z "$ns_bound" ] && [ ! -e "/run/netns/$project" ] ||
  fail "the test's namespaces are still there"
[ "$(podman_netns)" = "$podman_netns_before" ] ||
  fail "podman's netns-* entries in /run/netns changed: before: ${podman_netns_before:-none}; now: $(podman_netns)"
for d in "${made[@]}"; do
  # (podman run by someone else meanwhile may have put its own state there)
  [ ! -e "$d" ] || [ -n "$(ls -A "$d")" ] || fail "$d, made by the test as a mount point, is still there"
done
[ "$(host_addrs)" = "$addrs_before" ] || fail "addresses in the demo's subnets changed on the host: $(host_addrs)"
sysctls_now=$(host_sysctls)
if [ "$sysctls_now" != "$sysctls_before" ]; then
  diff <(echo "$sysctls_before") <(echo "$sysctls_now") || true
  fail "the host's sysctls changed (diff above: < before, > after)"
fi
netfilter_after=$(netfilter_state) || fail "cannot read the host's netfilter state"
if [ "$netfilter_before" != "$netfilter_after" ]; then
  { diff <(echo "$netfilter_before") <(echo "$netfilter_after") || true; } | head -n 40
  fail "the host's netfilter rules changed (diff above: < before, > after; nft -s list ruleset, ip(6)tables-legacy-save)"
fi
say "the host as before: netfilter rules ($(grep -c '^table' <<<"$netfilter_after" || true) nf_tables tables), sysctls, podman's /run/netns entries; namespaces gone"
say "PASS"
