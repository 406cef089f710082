#!/usr/bin/env bash
# Make the pinned helm available at .bin/helm (the chart tests run `helm lint` and `helm template`):
# reuse one on PATH at the pinned version, else build it with `go install` (about 80 s on 2 cores).
# Fails loudly when neither works: a missing helm fails the tests, it never skips them.
set -euo pipefail
want="${HELM_VERSION:-3.22.0}"
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/.bin"
mkdir -p "$bin"

# A helm built with `go install` reports only v3.22 (no release ldflags): read the module version Go
# recorded in the binary, and fall back to what helm says (a release binary reports v3.22.0).
version_of() {
  local mod=""
  if command -v go >/dev/null 2>&1; then
    mod="$(go version -m "$1" 2>/dev/null | awk '$1 == "mod" && $2 == "helm.sh/helm/v3" {print $3}')"
  fi
  if [ -n "$mod" ]; then echo "${mod#v}"; else "$1" version --template '{{.Version}}' 2>/dev/null | sed 's/^v//'; fi
}

if [ -x "$bin/helm" ] && [ "$(version_of "$bin/helm")" = "$want" ]; then
  exit 0
fi
if command -v helm >/dev/null 2>&1 && [ "$(version_of "$(command -v helm)")" = "$want" ]; then
  ln -sf "$(command -v helm)" "$bin/helm"
  echo "ensure-helm: using $(command -v helm) (v$want)"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "ensure-helm: ERROR: helm v$want is not on PATH and Go is not installed to build it." >&2
  exit 1
fi
echo "ensure-helm: building helm v$want with go install (about 80 s on 2 cores) ..."
start=$(date +%s)
if ! GOBIN="$bin" GOFLAGS=-mod=mod go install "helm.sh/helm/v3/cmd/helm@v$want"; then
  echo "ensure-helm: ERROR: go install helm.sh/helm/v3/cmd/helm@v$want failed." >&2
  exit 1
fi
got="$(version_of "$bin/helm")"
if [ "$got" != "$want" ]; then
  echo "ensure-helm: ERROR: built helm reports version '$got', expected $want." >&2
  exit 1
fi
echo "ensure-helm: helm v$want installed at $bin/helm in $(( $(date +%s) - start )) s"
