#!/bin/sh
# Makes sure a Chromium is available for the dashboard spec (spec/http/dashboard.spec.ts), which
# drives a real headless browser through playwright-core (no browser download at install time).
# - present (CHROMIUM_PATH, or /usr/bin/chromium): prints its version and exits 0;
# - missing and running as root: installs Debian's `chromium` package with apt-get;
# - missing otherwise: exits 1 with instructions.
set -eu
CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  "$CHROMIUM" --version 2>/dev/null || true
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "chromium not found: installing it with apt-get" >&2
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
  exit 0
fi
cat >&2 <<'MSG'
Chromium is not installed, and the dashboard spec (spec/http/dashboard.spec.ts) needs it.
Install it, then run the tests again:
  Debian/Ubuntu:  sudo apt-get update && sudo apt-get install -y chromium
  elsewhere:      set CHROMIUM_PATH to a Chromium or Chrome binary
MSG
exit 1
