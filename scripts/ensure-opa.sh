#!/usr/bin/env bash
# Make the pinned OPA available at .bin/opa: reuse one on PATH at the pinned
# version, else build it with `go install`. Fails loudly when neither works.
set -euo pipefail
source "$(dirname "$0")/go-tool.sh"

opa_version() { "$1" version 2>/dev/null | awk '/^Version:/ {print $2}'; }

if ! ensure_go_tool opa "${OPA_VERSION:-1.22.3}" github.com/open-policy-agent/opa opa_version 90; then
  echo "ensure-opa: install OPA v${OPA_VERSION:-1.22.3} (https://www.openpolicyagent.org/docs/#running-opa) or Go, then rerun." >&2
  exit 1
fi
