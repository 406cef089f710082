#!/usr/bin/env bash
# Make the pinned helm available at .bin/helm (the chart tests run `helm lint` and `helm template`).
set -euo pipefail
source "$(dirname "$0")/go-tool.sh"

# A helm built with `go install` reports only v3.22 (no release ldflags): read the module version Go
# recorded in the binary, and fall back to what helm says (a release binary reports v3.22.0).
helm_version() {
  local mod=""
  if command -v go >/dev/null 2>&1; then
    mod="$(go version -m "$1" 2>/dev/null | awk '$1 == "mod" && $2 == "helm.sh/helm/v3" {print $3}')"
  fi
  if [ -n "$mod" ]; then echo "${mod#v}"; else "$1" version --template '{{.Version}}' 2>/dev/null | sed 's/^v//'; fi
}

ensure_go_tool helm "${HELM_VERSION:-3.22.0}" helm.sh/helm/v3/cmd/helm helm_version 80
