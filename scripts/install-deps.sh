#!/usr/bin/env bash
# Installs the Debian packages svcbox needs, in three tiers. Idempotent: when all packages of the
# tier are present it does nothing (and needs no network).
#   (no option)    everything: build, run, every test and benchmark (scripts/test.sh)
#   --run          what scripts/run.sh needs: a release build of the binary, and the tools its
#                  demo uses (dig, curl, ip, python3 for the pods)
#   --build-only   only what a release build of the binary needs (container/Dockerfile's builder
#                  stage uses this, so the image and the developers build with one package list)
set -euo pipefail

build_packages=(
  g++ cmake ninja-build pkg-config
  libsqlite3-dev libyaml-dev libyaml-cpp-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev
  libboost1.81-dev prometheus-cpp-dev libldns-dev libc-ares-dev libiptc-dev libnetfilter-conntrack-dev
)
run_packages=(
  "${build_packages[@]}"
  python3 procps iproute2 dnsutils curl iptables
)
packages=(
  "${run_packages[@]}"
  # tests and benchmarks
  libgtest-dev libgmock-dev sqlite3 util-linux
  knot-dnsutils conntrack
  # benchmarks (bench/router's nft -f column; bench/proxy's load and bulk clients)
  nftables wrk iperf3
  # fuzz targets (clang + libFuzzer only there; the product builds with g++)
  clang-14 libfuzzer-14-dev libclang-rt-14-dev
  # formatting
  clang-format
)

if [ "${1:-}" = "--build-only" ]; then
  packages=("${build_packages[@]}")
elif [ "${1:-}" = "--run" ]; then
  packages=("${run_packages[@]}")
elif [ $# -gt 0 ]; then
  echo "usage: $0 [--run | --build-only]" >&2
  exit 1
fi

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "svcbox: installing ${missing[*]}" >&2
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "svcbox: these packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
