#!/usr/bin/env bash
# Make the pinned Regal (OPA's Rego linter) available at .bin/regal: `make test` runs `regal lint rego/`.
# `go install github.com/styrainc/regal@VERSION` is refused by the module proxy here (403), so Regal is
# built as a dependency of a throwaway module in a temporary directory (about 100 s on 2 cores).
set -euo pipefail
source "$(dirname "$0")/go-tool.sh"

# A Regal built this way reports no release version: read the module version Go recorded in the binary.
regal_version() {
  local mod=""
  if command -v go >/dev/null 2>&1; then
    mod="$(go version -m "$1" 2>/dev/null | awk '($1 == "dep" || $1 == "mod") && $2 == "github.com/styrainc/regal" {print $3}')"
  fi
  if [ -n "$mod" ]; then echo "${mod#v}"; else "$1" version 2>/dev/null | awk '/^Version:/ {print $2}' | sed 's/^v//'; fi
}

build_regal() {  # build_regal BIN_DIR VERSION: go build inside a throwaway module
  local out="$1" want="$2" work status=0
  work="$(mktemp -d)"
  # no RETURN trap: it would stay set and fire again, with $work unbound, when the caller returns
  (cd "$work" && go mod init x >/dev/null 2>&1 && GOFLAGS=-mod=mod go get "github.com/styrainc/regal@v$want" \
    && GOFLAGS=-mod=mod go build -o "$out/regal" github.com/styrainc/regal) || status=$?
  rm -rf "$work"
  return "$status"
}

ensure_go_tool regal "${REGAL_VERSION:-0.34.1}" github.com/styrainc/regal regal_version 100 build_regal
