#!/usr/bin/env bash
# The README's first command: install, build, and start svcbox serve on a registry file under
# ./var with the seed example applied, its DNS server on 127.0.0.1:1053. It writes no netfilter
# rules and sends no packet of its own (no rules, no probes): DNS answers only what it is asked on
# loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release
export SVCBOX_DB=${SVCBOX_DB:-$PWD/var/registry.db}
svcbox=build/release/app/svcbox
"$svcbox" apply -f examples/service-test.yaml
"$svcbox" get svc
"$svcbox" get endpoints
cat <<INFO

svcbox serve is watching $SVCBOX_DB and answering DNS on 127.0.0.1:1053. In another terminal, try:
  dig @127.0.0.1 -p 1053 service-test.default.svc.cluster.local
  dig @127.0.0.1 -p 1053 -x 10.96.0.1
  curl -s http://127.0.0.1:9153/readyz; curl -s http://127.0.0.1:9153/api/v1/services
  curl -s http://127.0.0.1:9153/metrics | grep -E '^svcbox_(dns_requests_total|endpoints)'
  SVCBOX_DB=$SVCBOX_DB $svcbox get pods -o wide
  SVCBOX_DB=$SVCBOX_DB $svcbox delete pod server-pod-2     # serve logs the endpoint leaving
  SVCBOX_DB=$SVCBOX_DB $svcbox apply -f examples/service-test.yaml
Stop it with Ctrl-C.

INFO
# The demo runs in the host's network namespace: no netfilter rules here (see README, Router).
exec "$svcbox" serve --proxy-mode none --default-probe none --dns-listen 127.0.0.1:1053
