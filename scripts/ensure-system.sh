#!/bin/sh
# Makes sure the system programs the specs use are installed:
#   redis-server       the Redis backend specs (each spec starts its own server on a free port)
#   mosquitto          interop specs against another broker, mosquitto_passwd for password files
#   mosquitto_pub/sub  interop specs with clients nobody here wrote (Debian: mosquitto-clients)
#   openssl            the certificates of the TLS specs, made by the harness
#   chromium           the dashboard specs in a real headless browser
# - all present: prints their versions and exits 0;
# - some missing and running as root with apt-get: installs them (Debian/Ubuntu);
# - missing otherwise: exits 1 saying how to install them. Never skipped.
set -eu
missing=""
need() { command -v "$1" >/dev/null 2>&1 || missing="$missing $2"; }
need redis-server redis-server
need mosquitto mosquitto
need mosquitto_pub mosquitto-clients
need openssl openssl
need chromium chromium
if [ -z "$missing" ]; then
  echo "system programs: $(redis-server --version | cut -d' ' -f1-3), $(mosquitto -h 2>/dev/null | head -n 1), $(openssl version), $(chromium --version 2>/dev/null)"
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing with apt-get:$missing" >&2
  apt-get update
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
  exit 0
fi
cat >&2 <<MSG
These programs are needed by the specs and are not installed:$missing
Install them, then run the tests again:
  Debian/Ubuntu:  sudo apt-get update && sudo apt-get install -y$missing
  macOS:          brew install redis mosquitto openssl chromium
The specs start their own servers on free loopback ports; no service needs to run.
MSG
exit 1
