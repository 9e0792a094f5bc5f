#!/bin/sh
# Makes sure `redis-server` is available for the Redis integration specs (spec/integration/redis).
# - present: prints its version and exits 0;
# - missing and running as root: installs it with apt-get (Debian/Ubuntu);
# - missing otherwise: exits 1 with instructions.
set -eu
if command -v redis-server >/dev/null 2>&1; then
  redis-server --version
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "redis-server not found: installing it with apt-get" >&2
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server
  redis-server --version
  exit 0
fi
cat >&2 <<'MSG'
redis-server is not installed, and it is needed by the Redis integration specs (spec/integration/redis).
Install it, then run the tests again:
  Debian/Ubuntu:  sudo apt-get update && sudo apt-get install -y redis-server
  macOS:          brew install redis
The specs start their own server on a free loopback port; no Redis service needs to run.
MSG
exit 1
