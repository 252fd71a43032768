#!/usr/bin/env bash
# Makes sure the test peers exist: redis-server (installed with apt-get when
# running as root) and moto_server. Stops with the exact install command otherwise.
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

# Headless Chromium drives the setup page in a real browser (its test fails without it).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure-tools: installing chromium with apt-get" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "ensure-tools: chromium is missing; install it with: sudo apt-get install -y chromium" >&2
    exit 1
  fi
fi

# moto_server is a real EC2 API peer for the AWS tests; it comes from PyPI.
if ! command -v moto_server >/dev/null 2>&1; then
  echo "ensure-tools: moto_server is missing; install it with: pipx install 'moto[server]'  (or: python3 -m venv ~/.moto && ~/.moto/bin/pip install 'moto[server]' && export PATH=~/.moto/bin:\$PATH)" >&2
  exit 1
fi
echo "ensure-tools: redis-server $(redis-server --version | awk '{print $3}'), $(command -v moto_server), $(command -v chromium)" >&2
