#!/usr/bin/env bash
# Load test of webhook intake: `packit-launch serve` pinned to one core
# (GOMAXPROCS=1, CPU 0) on 127.0.0.1, wrk on the other core with 8
# connections posting a signed 12 KB issue_comment that is not a command.
# COMMAND=1: the comment is `/launch` instead, every delivery unique and
# queued, while GitHub is unreachable (a closed port): the worker's token
# requests fail beside intake, as in an outage.
# BIN=path: measure that binary instead of building this tree's.
# Needs wrk (apt-get install wrk). Usage: scripts/load-intake.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
port=${PORT:-3917}
for tool in wrk python3 openssl taskset curl; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (Debian: apt-get install -y wrk python3 openssl util-linux curl)" >&2; exit 1; }
done
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT

if [ -n "${BIN:-}" ]; then cp "$BIN" "$work/packit-launch"; else go build -o "$work/packit-launch" ./cmd/packit-launch; fi
python3 - "$work/body.json" "${COMMAND:-}" <<'PY'
import json, sys
prose = "Some detailed review prose about the change. " * 260
if sys.argv[2]:
    prose = ""
user = {"login": "alice", "id": 501, "type": "User"}
payload = {"action": "created",
  "issue": {"number": 7, "title": "Make it faster", "state": "open",
            "pull_request": {"url": "https://api.github.com/repos/packit/ogr/pulls/7"}},
  "comment": {"id": 1001, "body": ("/launch" if sys.argv[2] else "Looks good to me. " + prose), "user": user,
              "created_at": "2026-11-24T12:00:00Z"},
  "repository": {"id": 9, "name": "ogr", "full_name": "packit/ogr", "owner": {"login": "packit"}},
  "sender": user, "installation": {"id": 55}}
open(sys.argv[1], "w").write(json.dumps(payload))
PY
secret=load-test-secret
# A throwaway App key: intake is served only when a worker can run commands.
openssl genrsa -out "$work/app.pem" 2048 2>/dev/null
sig=$(openssl dgst -sha256 -hmac "$secret" -hex < "$work/body.json" | awk '{print $NF}')
cat > "$work/post.lua" <<LUA
wrk.method = "POST"
local f = io.open("$work/body.json", "rb"); wrk.body = f:read("*a"); f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-GitHub-Event"] = "issue_comment"
wrk.headers["X-Hub-Signature-256"] = "sha256=$sig"
-- A delivery id of its own per request, as GitHub sends: a repeated id
-- would be a duplicate (answered 200, nothing queued) for a command.
counter = 0
thread_id = math.random(1e9)
request = function()
  counter = counter + 1
  wrk.headers["X-GitHub-Delivery"] = "load-" .. thread_id .. "-" .. counter
  return wrk.format()
end
done = function(summary, latency, requests)
  io.write(string.format("non-2xx or errors: %d\n", summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
# Redis runs beside wrk, as it would on another machine in production.
redis_url=
if command -v redis-server >/dev/null; then
  taskset -c 1 redis-server --port 0 --unixsocket "$work/redis.sock" --save "" --appendonly no >/dev/null &
  redis_pid=$!
  trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; kill "$redis_pid" 2>/dev/null; rm -rf "$work"' EXIT
  for _ in $(seq 50); do [ -S "$work/redis.sock" ] && break; sleep 0.1; done
  redis_url=unix://$work/redis.sock
fi
REDIS_URL=$redis_url GOMAXPROCS=1 GITHUB_API_URL=http://127.0.0.1:9/ AWS_EC2_METADATA_DISABLED=true LOG_LEVEL=error GITHUB_WEBHOOK_SECRET=$secret GITHUB_APP_ID=1 GITHUB_PRIVATE_KEY_PATH=$work/app.pem LISTEN_ADDR=127.0.0.1:$port \
  taskset -c 0 "$work/packit-launch" serve --config examples/packit-launch.yaml 2>"$work/serve.log" &
pid=$!
for _ in $(seq 50); do curl -fs "127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
echo "payload: $(wc -c < "$work/body.json") bytes"
taskset -c 1 wrk -t 1 -c 8 --latency -d "${secs}s" -s "$work/post.lua" "http://127.0.0.1:$port/api/github/webhooks"
# What the bot itself counted (every delivery above, by answer).
curl -fs "127.0.0.1:$port/metrics" | grep '^packit_launch_webhook_deliveries_total' || true
