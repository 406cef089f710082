#!/usr/bin/env bash
# Build the in-process OPA (go/inproc, pinning the same OPA as .bin/opa) into
# .bin/libpolicygate_opa.so with `go build -buildmode=c-shared` (policygate.engine.inproc).
# Rebuilt only when its sources or the Go version change (a stamp beside the library).
# Without Go: a loud warning and exit 0; policygate then decides with the HTTP engine (an
# `opa run` server), which works everywhere. A build that fails with Go present is an error.
#
# --test-hooks: build .bin/libpolicygate_opa_testhooks.so instead, with `-tags pgtesthooks`, which
# adds pg_panic (a deliberate panic, for tests/integration/test_engine_inprocess.py). The production
# library exports no test hook.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/go/inproc"
lib="$root/.bin/libpolicygate_opa.so"
tags=""
if [ "${1:-}" = "--test-hooks" ]; then
  lib="$root/.bin/libpolicygate_opa_testhooks.so"
  tags="pgtesthooks"
fi
stamp="$lib.stamp"
mkdir -p "$root/.bin"

if ! command -v go >/dev/null 2>&1; then
  echo "ensure-opa-inproc: WARNING: Go is not installed, so the in-process OPA ($lib) is not built;" >&2
  echo "ensure-opa-inproc: WARNING: policygate decides with the HTTP engine (an opa run server) instead." >&2
  exit 0
fi

want="$(cd "$src" && cat go.mod go.sum ./*.go | sha256sum | cut -d' ' -f1) $(go env GOVERSION)"
if [ -f "$lib" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "ensure-opa-inproc: building the in-process OPA (about 60 s on 2 cores with OPA's modules cached) ..."
start=$(date +%s)
rm -f "$stamp"
if ! (cd "$src" && GOFLAGS=-mod=mod go build -buildmode=c-shared -trimpath -tags "$tags" -o "$lib.tmp" .); then
  rm -f "$lib.tmp" "${lib%.so}.tmp.h"
  echo "ensure-opa-inproc: ERROR: go build -buildmode=c-shared in $src failed." >&2
  exit 1
fi
mv "$lib.tmp" "$lib"
rm -f "$lib.tmp.h" "${lib%.so}.tmp.h"
echo "$want" >"$stamp"
echo "ensure-opa-inproc: $lib built in $(( $(date +%s) - start )) s"
