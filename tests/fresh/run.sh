#!/usr/bin/env bash
# The README's two commands, verbatim, on a fresh Debian 12: a privileged podman container made
# from a debootstrap base with nothing preinstalled, holding a copy of this checkout (what git
# tracks plus what it does not ignore). Prints how long each command took and exits non-zero when
# either fails. Not part of CI (it builds everything from nothing: tens of minutes on 2 cores).
#
#   tests/fresh/run.sh [run|test|both]   (default both; each in a container of its own)
#
# The container shares the host's network namespace (--network host: podman makes no netavark
# bridge or rule for it), and both commands write rules only in namespaces they make themselves.
# Its /tmp is a folder of this run on the host's disk, so the container test inside can use
# overlay storage. Root only; the base image is tests/container/run.sh's (made with debootstrap
# when its cache has none).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${SVCBOX_CI_CACHE:-/var/cache/svcbox-ci}
what=${1:-both}
[ "$(id -u)" -eq 0 ] || { echo "tests/fresh/run.sh needs root" >&2; exit 1; }
# shellcheck source=tests/container/base-image.sh
. "$repo/tests/container/base-image.sh"
podman_packages_install

work=$(mktemp -d /var/tmp/svcbox-fresh.XXXXXX)
cat >"$work/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=16384:16384"]
[engine]
runtime = "runc"
CONF
cat >"$work/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$work/storage"
runroot = "$work/run"
CONF
export CONTAINERS_CONF=$work/containers.conf CONTAINERS_STORAGE_CONF=$work/storage.conf
names=()
cleanup() {
  set +e
  for name in "${names[@]}"; do timeout 60 podman rm -f -t 0 "$name" >/dev/null 2>&1; done
  timeout 120 podman system reset -f >/dev/null 2>&1
  grep -o " $work[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

base_image_load "$cache" "$work"
(cd "$repo" && git ls-files -co --exclude-standard -z | tar --null -T - -cf "$work/src.tar")

# $1: a name; the rest: the command, run as root in /src of a fresh container. Prints its time.
fresh() {
  local name=svcbox-fresh-$$-$1 started status=0
  shift
  names+=("$name")
  mkdir -p "$work/$name-tmp"
  chmod 1777 "$work/$name-tmp"
  podman run -d --name "$name" --privileged --network host --cgroupns host \
    -v "$work/$name-tmp:/tmp" -v "$work/src.tar:/src.tar:ro" --entrypoint sleep \
    debian:bookworm-slim infinity >/dev/null
  podman exec "$name" bash -c 'mkdir -p /src && tar -C /src -xf /src.tar'
  started=$SECONDS
  podman exec -w /src -e CI="${CI_INSIDE:-}" "$name" bash -c "$*" >"$work/$name.log" 2>&1 || status=$?
  echo "$* -> exit $status in $((SECONDS - started)) s (log: $work/$name.log)"
  [ $status -eq 0 ] || tail -n 40 "$work/$name.log"
  cp "$work/$name.log" "/var/tmp/$name.log"
  timeout 60 podman rm -f -t 0 "$name" >/dev/null 2>&1
  return $status
}

case $what in
  run | test | both) ;;
  *) echo "usage: $0 [run|test|both]" >&2; exit 1 ;;
esac
status=0
if [ "$what" != test ]; then fresh run "SVCBOX_DEMO_CHECK=1 ./scripts/run.sh" || status=1; fi
if [ "$what" != run ]; then CI_INSIDE=true fresh test "./scripts/test.sh" || status=1; fi
exit $status
