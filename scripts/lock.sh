#!/usr/bin/env bash
# Refresh the dependency locks from pyproject.toml (`make lock`): exact versions and hashes that
# `make setup`, .ci/run and the Dockerfile install with --require-hashes. Commit both files.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOL=.bin/locktool
UV_VERSION=0.13.9
if [ ! -x "$TOOL/bin/uv" ] || [ "$("$TOOL/bin/uv" --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  python3 -m venv "$TOOL"
  "$TOOL/bin/pip" install -q "uv==$UV_VERSION"
fi
export SSL_CERT_FILE="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}"
common=(--generate-hashes --python-version 3.11 --python-platform x86_64-unknown-linux-gnu -q)
"$TOOL/bin/uv" pip compile pyproject.toml --extra postgres "${common[@]}" -o requirements.lock
"$TOOL/bin/uv" pip compile pyproject.toml --extra dev --extra postgres "${common[@]}" -o requirements-dev.lock
echo "requirements.lock and requirements-dev.lock refreshed from pyproject.toml"
