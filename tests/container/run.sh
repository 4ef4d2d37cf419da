#!/usr/bin/env bash
# Builds the svcbox image and the Compose demo with podman (standing in for Docker: no engine and no
# registry here) and checks them for real: Service traffic through svcbox's rules and DNS (from the
# client container and from a `compose run` one), failover when a pod stops, rules only inside
# svcbox's container, the userspace mode without NET_ADMIN, and a teardown that leaves nothing
# behind (the host's netfilter state is compared before and after). Root only; scripts/test.sh runs
# it last, so CI does. Everything podman stores lives under a work folder removed on every exit;
# the base image and the built images are cached in $SVCBOX_CI_CACHE (default
# /var/cache/svcbox-ci) so that a rerun with unchanged sources skips the build.
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

# ---- packages (the recipe in shared/container-recipe.md), bc for the timings
need=(podman buildah podman-compose runc catatonit fuse-overlayfs slirp4netns netavark aardvark-dns
      uidmap debootstrap iptables nftables bc)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
say "packages ready"

# The host's whole netfilter state, without counters: nf_tables (what iptables-nft and netavark
# write) and the legacy x_tables (what libiptc writes), IPv4 and IPv6. Compared at the end: the
# builds use the host's network (no netavark rules for them), and the demo network's own rules must
# be gone after teardown.
host_netfilter() {
  timeout 30 nft -s list ruleset 2>&1
  local save
  for save in iptables-legacy-save ip6tables-legacy-save; do
    timeout 30 "$save" 2>&1 | { grep -v '^#' || true; } | sed 's/\[[0-9]*:[0-9]*\]//'
  done
}
netfilter_before=$(host_netfilter)
# netavark turns IPv4 forwarding on for a bridge network and never back off: put it back
forward_before=$(sysctl -n net.ipv4.ip_forward)
restore_forwarding() {
  [ "$(sysctl -n net.ipv4.ip_forward)" = "$forward_before" ] || sysctl -qw net.ipv4.ip_forward="$forward_before"
}
subnets=()
demo_build=

# ---- podman confined to a work folder: storage, run state and network definitions
work=$(mktemp -d /tmp/svcbox-ci.XXXXXX)
mkdir -p "$work/networks"
cat >"$work/containers.conf" <<CONF
[containers]
# root lacks CAP_SYS_RESOURCE on this VM: podman must not raise the limits above the hard ones
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=16384:16384"]
[engine]
# crun refuses the hybrid cgroup layout here
runtime = "runc"
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
cleanup() {
  local rc=$?
  set +e
  # a demo image build still running in the background (timeout passes the signal on to podman)
  [ -z "$demo_build" ] || { kill "$demo_build" 2>/dev/null && wait "$demo_build"; }
  "${compose[@]}" down -t 0 >/dev/null 2>&1
  timeout 60 podman rm -f -t 0 "$project-userspace" >/dev/null 2>&1
  timeout 60 podman ps -aq --filter "name=$project" | xargs -r timeout 60 podman rm -f -t 0 >/dev/null 2>&1
  timeout 60 podman network ls --format '{{.Name}}' | grep "^$project" |
    xargs -r timeout 60 podman network rm -f >/dev/null 2>&1
  timeout 120 podman system reset -f >/dev/null 2>&1
  # overlay mounts that a crashed run may have left under the work folder
  grep -o " $work[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$work"
  restore_forwarding
  say "cleaned up (exit $rc)"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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

# ---- base image: debootstrap once, then podman load from the cache
mkdir -p "$cache"
if [ ! -s "$cache/debian-bookworm-slim.tar" ]; then
  mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n1)
  mirror=${mirror:-http://deb.debian.org/debian}
  rootfs=$work/rootfs
  timeout 600 debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 20 "$work/debootstrap.log"; fail "debootstrap"; }
  # apt in the image uses the host's sources (deb822); debootstrap's sources.list would repeat them
  cp /etc/apt/sources.list.d/*.sources "$rootfs/etc/apt/sources.list.d/" 2>/dev/null &&
    rm -f "$rootfs/etc/apt/sources.list"
  rm -rf "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc \
    "$rootfs"/usr/share/man "$rootfs"/usr/share/locale
  tar --numeric-owner -C "$rootfs" -c . | timeout 300 podman import -q - debian:bookworm-slim >/dev/null
  rm -rf "$rootfs"
  timeout 300 podman save -q -o "$cache/debian-bookworm-slim.tar.tmp" debian:bookworm-slim
  mv "$cache/debian-bookworm-slim.tar.tmp" "$cache/debian-bookworm-slim.tar"
  say "base image built with debootstrap and cached"
else
  timeout 300 podman load -q -i "$cache/debian-bookworm-slim.tar" >/dev/null
  say "base image loaded from $cache"
fi
timeout 60 podman tag debian:bookworm-slim docker.io/library/debian:bookworm-slim

# ---- the images, keyed by the sources they are built from
# only what the images are built from: not tests, docs or the demo's compose and manifest files
key=$(cd "$repo" && git ls-files -co --exclude-standard |
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
  build=(timeout 1500 podman build --pull=never --format docker --network host)
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

# ---- the Compose demo
while read -r net args; do
  # the demo pins its subnet: a host that already routes it would have its traffic taken over
  subnet=$(sed -n 's/.*--subnet=\([^ ]*\).*/\1/p' <<<"$args")
  [ -z "$subnet" ] || [ -z "$(ip route show match "$subnet" | grep -v '^default')" ] ||
    fail "the host already routes $subnet (needed by the demo)"
  [ -z "$subnet" ] || subnets+=("$subnet")
  timeout 60 podman network create $args "$net" >/dev/null || fail "network $net"
done <"$work/networks.txt"
"${compose[@]}" up -d --no-build >"$work/up.log" 2>&1 || { cat "$work/up.log"; fail "compose up"; }
say "compose up"
c_svcbox=${project}_svcbox_1 c_pod1=${project}_pod-1_1 c_client=${project}_client_1
for c in "$c_svcbox" "$c_pod1" "${project}_pod-2_1" "$c_client"; do
  timeout 30 podman container exists "$c" || { "${compose[@]}" ps; fail "container $c missing"; }
done

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
host_rules=$( (iptables-legacy-save -t nat; iptables-save -t nat) 2>/dev/null | grep -c SVCBOX || true)
[ "$host_rules" -eq 0 ] || fail "SVCBOX rules in the host's nat table"

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
for subnet in "${subnets[@]}"; do
  [ -z "$(ip -o addr show to "$subnet")" ] || fail "an address in $subnet is still on the host: $(ip -o addr show to "$subnet")"
done
restore_forwarding
netfilter_after=$(host_netfilter)
if [ "$netfilter_before" != "$netfilter_after" ]; then
  diff <(echo "$netfilter_before") <(echo "$netfilter_after") | head -n 40
  fail "the host's netfilter rules changed (diff above: < before, > after; nft -s list ruleset, ip(6)tables-legacy-save)"
fi
say "teardown: no containers, networks or bridges; forwarding and the host's netfilter rules as before"
say "PASS"
