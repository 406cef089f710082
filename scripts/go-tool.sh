#!/usr/bin/env bash
# Shared by scripts/ensure-opa.sh and scripts/ensure-helm.sh: make a pinned Go tool available at
# .bin/NAME. Reuse .bin/NAME or one on PATH at the pinned version, else build it with `go install`.
# Fails loudly when neither works (a missing tool fails the tests, it never skips them).
#
#   ensure_go_tool NAME VERSION GO_PACKAGE VERSION_FUNCTION SECONDS_HINT [BUILD_FUNCTION]
#
# VERSION_FUNCTION prints the version of the binary given as $1 (without a leading v).
# BUILD_FUNCTION (optional) builds it as BIN_DIR/NAME given BIN_DIR and VERSION, for a tool that
# `go install PACKAGE@VERSION` cannot fetch (scripts/ensure-regal.sh); the default is go install.
set -euo pipefail

ensure_go_tool() {
  local name="$1" want="$2" package="$3" version_of="$4" hint="$5" build="${6:-}"
  local root bin start got
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  bin="$root/.bin"
  mkdir -p "$bin"
  if [ -x "$bin/$name" ] && [ "$("$version_of" "$bin/$name")" = "$want" ]; then
    return 0
  fi
  if command -v "$name" >/dev/null 2>&1 && [ "$("$version_of" "$(command -v "$name")")" = "$want" ]; then
    ln -sf "$(command -v "$name")" "$bin/$name"
    echo "ensure-$name: using $(command -v "$name") (v$want)"
    return 0
  fi
  if ! command -v go >/dev/null 2>&1; then
    echo "ensure-$name: ERROR: $name v$want is not on PATH and Go is not installed to build it." >&2
    return 1
  fi
  echo "ensure-$name: building $name v$want (about $hint s on 2 cores) ..."
  start=$(date +%s)
  if [ -n "$build" ]; then
    if ! "$build" "$bin" "$want"; then
      echo "ensure-$name: ERROR: building $package v$want failed." >&2
      return 1
    fi
  elif ! GOBIN="$bin" GOFLAGS=-mod=mod go install "$package@v$want"; then
    echo "ensure-$name: ERROR: go install $package@v$want failed." >&2
    return 1
  fi
  got="$("$version_of" "$bin/$name")"
  if [ "$got" != "$want" ]; then
    echo "ensure-$name: ERROR: built $name reports version '$got', expected $want." >&2
    return 1
  fi
  echo "ensure-$name: $name v$want installed at $bin/$name in $(( $(date +%s) - start )) s"
}
