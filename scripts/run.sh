#!/usr/bin/env bash
# The README's first command: install, build, and start svcbox serve on a registry file under
# ./var with the seed example applied. It opens no ports, writes no netfilter rules and sends no
# traffic: this stage of svcbox only watches the registry and logs every change.
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

svcbox serve is watching $SVCBOX_DB. In another terminal, try:
  SVCBOX_DB=$SVCBOX_DB $svcbox get pods -o wide
  SVCBOX_DB=$SVCBOX_DB $svcbox delete pod server-pod-2     # serve logs the endpoint leaving
  SVCBOX_DB=$SVCBOX_DB $svcbox apply -f examples/service-test.yaml
Stop it with Ctrl-C.

INFO
# The demo runs in the host's network namespace: no netfilter rules here (see README, Router).
exec "$svcbox" serve --proxy-mode none
