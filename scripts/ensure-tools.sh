#!/usr/bin/env bash
# Makes sure the test peers exist: redis-server (installed with apt-get when
# running as root). Stops with the exact install command otherwise.
set -euo pipefail

if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure-tools: installing redis-server with apt-get" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "ensure-tools: redis-server is missing; install it with: sudo apt-get install -y redis-server" >&2
    exit 1
  fi
fi
# The tests start their own redis-server; a packaged service is not needed.

echo "ensure-tools: redis-server $(redis-server --version | awk '{print $3}')" >&2
