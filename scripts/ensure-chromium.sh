#!/usr/bin/env bash
# Make Debian's Chromium available to the console's browser tests (Playwright drives it with
# executable_path; Playwright cannot download its own browsers here). Installs the `chromium`
# package when /usr/bin/chromium is missing (apt, as root). Any failure exits non-zero: a missing
# browser fails the tests, it never skips them. POLICYGATE_CHROMIUM names another binary.
set -euo pipefail
browser="${POLICYGATE_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$browser" ]; then
  if [ -n "${POLICYGATE_CHROMIUM:-}" ]; then
    echo "ensure-chromium: ERROR: POLICYGATE_CHROMIUM=$browser is not executable" >&2
    exit 1
  fi
  echo "ensure-chromium: installing Debian's chromium (apt-get install -y chromium) ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
fi
echo "ensure-chromium: $("$browser" --version 2>/dev/null | head -1) at $browser"
