#!/usr/bin/env bash
# Make the pinned OPA available at .bin/opa: reuse one on PATH at the pinned
# version, else build it with `go install`. Fails loudly when neither works.
set -euo pipefail
want="${OPA_VERSION:-1.22.3}"
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/.bin"
mkdir -p "$bin"

version_of() { "$1" version 2>/dev/null | awk '/^Version:/ {print $2}'; }

if [ -x "$bin/opa" ] && [ "$(version_of "$bin/opa")" = "$want" ]; then
  exit 0
fi
if command -v opa >/dev/null 2>&1 && [ "$(version_of "$(command -v opa)")" = "$want" ]; then
  ln -sf "$(command -v opa)" "$bin/opa"
  echo "ensure-opa: using $(command -v opa) (v$want)"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "ensure-opa: ERROR: OPA v$want is not on PATH and Go is not installed to build it." >&2
  echo "ensure-opa: install OPA v$want (https://www.openpolicyagent.org/docs/#running-opa) or Go, then rerun." >&2
  exit 1
fi
echo "ensure-opa: building OPA v$want with go install (about 90 s on 2 cores) ..."
start=$(date +%s)
if ! GOBIN="$bin" GOFLAGS=-mod=mod go install "github.com/open-policy-agent/opa@v$want"; then
  echo "ensure-opa: ERROR: go install github.com/open-policy-agent/opa@v$want failed." >&2
  exit 1
fi
got="$(version_of "$bin/opa")"
if [ "$got" != "$want" ]; then
  echo "ensure-opa: ERROR: built OPA reports version '$got', expected $want." >&2
  exit 1
fi
echo "ensure-opa: OPA v$want installed at $bin/opa in $(( $(date +%s) - start )) s"
