#!/usr/bin/env bash
# Load test of webhook intake, side by side: each server pinned to one core
# (GOMAXPROCS=1, CPU 0) on 127.0.0.1, wrk on the other core with 8
# connections, every request a signed issue_comment with its own delivery id.
# ROUNDS rounds (default 3), the servers interleaved within each round and
# each started afresh; the report gives the median and spread per server,
# answers by status (202 queued, 200 duplicate, 204 ignored), p99, the
# server's CPU share during the load (under 100 %: the bottleneck was
# elsewhere, e.g. the load generator), and the bot's resident memory (VmRSS)
# idle and at its peak (VmHWM) after the load.
#
#   scripts/load-intake.sh [SECONDS]
#     a 12 KB comment that is not a command, sent to `packit-launch serve`,
#     to a server that only checks the HMAC and to one that verifies and
#     decodes the whole event with go-github (scripts/loadref).
#   COMMAND=1 scripts/load-intake.sh [SECONDS]
#     `/launch` in a delivery shaped like GitHub's (~12 KB: the repository,
#     the issue, users), every one queued in a real redis-server (202),
#     to the bot whose worker runs beside intake against a fake GitHub that
#     answers at once, and to the bot while GitHub is unreachable (a closed
#     port: every job's token request fails, as in an outage).
#   BIN=path measures that binary instead of building this tree's.
#   PER_MINUTE=n sets limits.commands_per_minute (default: the example
#     config's 10, the bot's default): the load's commands all
#     come from one person, so past the budget their jobs answer nothing.
#     PER_MINUTE=100000 sends every command down the whole decision path.
#
# Needs wrk, redis-server (and redis-cli), python3, openssl, taskset, curl
# (Debian: apt-get install -y wrk redis-server python3 openssl util-linux curl).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
rounds=${ROUNDS:-3}
port=${PORT:-3917}
secret=load-test-secret
for tool in wrk redis-server redis-cli python3 openssl taskset curl; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (Debian: apt-get install -y wrk redis-server python3 openssl util-linux curl)" >&2; exit 1; }
done
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# Built as deploy/Containerfile builds what operators run.
if [ -n "${BIN:-}" ]; then cp "$BIN" "$work/packit-launch"; else CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$work/packit-launch" ./cmd/packit-launch; fi
go build -o "$work/loadref" ./scripts/loadref
# A throwaway App key: intake is served only when a worker can run commands.
openssl genrsa -out "$work/app.pem" 2048 2>/dev/null
config=examples/packit-launch.yaml
if [ -n "${PER_MINUTE:-}" ]; then
  config=$work/packit-launch.yaml
  sed "s/^  commands_per_minute: .*/  commands_per_minute: $PER_MINUTE/" examples/packit-launch.yaml > "$config"
  grep -q "^  commands_per_minute: $PER_MINUTE$" "$config" || { echo "examples/packit-launch.yaml sets no limits.commands_per_minute to change" >&2; exit 1; }
fi

# body FILE COMMENT_ID: the delivery, a /launch when COMMAND is set.
body() {
  python3 - "$1" "${COMMAND:-}" "$2" <<'PY'
import datetime, json, sys
path, command, comment = sys.argv[1], sys.argv[2], int(sys.argv[3])
# Written now: a command older than 30 minutes is answered "too late".
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
api, web = "https://api.github.com", "https://github.com"
def user(login, uid):
    u = {"login": login, "id": uid, "node_id": "MDQ6VXNlcj" + str(uid), "type": "User", "site_admin": False,
         "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4", "gravatar_id": "", "html_url": f"{web}/{login}",
         "user_view_type": "public"}
    for k in ["followers", "following{/other_user}", "gists{/gist_id}", "starred{/owner}{/repo}", "subscriptions",
              "organizations", "repos", "events{/privacy}", "received_events"]:
        u[k.split("{")[0] + "_url"] = f"{api}/users/{login}/{k}"
    u["url"] = f"{api}/users/{login}"
    return u
alice, owner = user("alice", 501), user("packit", 46807394)
repo = {"id": 9, "node_id": "MDEwOlJlcG9zaXRvcnk5", "name": "ogr", "full_name": "packit/ogr", "private": False, "owner": owner,
        "html_url": f"{web}/packit/ogr", "description": "One API for multiple git forges.", "fork": False,
        "url": f"{api}/repos/packit/ogr", "homepage": "https://packit.dev", "size": 12345, "stargazers_count": 60,
        "watchers_count": 60, "language": "Python", "has_issues": True, "has_projects": True, "has_downloads": True,
        "has_wiki": False, "has_pages": False, "has_discussions": False, "forks_count": 45, "archived": False,
        "disabled": False, "open_issues_count": 80, "license": {"key": "mit", "name": "MIT License", "spdx_id": "MIT",
        "url": f"{api}/licenses/mit", "node_id": "MDc6TGljZW5zZTEz"}, "allow_forking": True, "is_template": False,
        "topics": ["git", "github", "gitlab", "pagure", "python"], "visibility": "public", "forks": 45, "open_issues": 80,
        "watchers": 60, "default_branch": "main", "created_at": "2018-12-11T09:45:56Z", "updated_at": "2026-11-24T08:00:00Z",
        "pushed_at": "2026-11-24T11:59:00Z", "git_url": "git://github.com/packit/ogr.git", "ssh_url": "git@github.com:packit/ogr.git",
        "clone_url": f"{web}/packit/ogr.git", "svn_url": f"{web}/packit/ogr", "mirror_url": None}
for k in ["forks", "keys{/key_id}", "collaborators{/collaborator}", "teams", "hooks", "issues/events{/number}", "events",
          "assignees{/user}", "branches{/branch}", "tags", "blobs{/sha}", "git/tags{/sha}", "git/refs{/sha}", "git/trees{/sha}",
          "statuses/{sha}", "languages", "stargazers", "contributors", "subscribers", "subscription", "commits{/sha}",
          "git/commits{/sha}", "comments{/number}", "issues/comments{/number}", "contents/{+path}", "compare/{base}...{head}",
          "merges", "{archive_format}{/ref}", "downloads", "issues{/number}", "pulls{/number}", "milestones{/number}",
          "notifications{?since,all,participating}", "labels{/name}", "releases{/id}", "deployments"]:
    name = k.split("{")[0].split("/")[-1] or "archive"
    repo[name.replace("-", "_") + "_url"] = f"{api}/repos/packit/ogr/{k}"
labels = [{"id": 100 + i, "node_id": f"LA_{i}", "url": f"{api}/repos/packit/ogr/labels/{n}", "name": n,
           "color": "ededed", "default": False, "description": ""} for i, n in enumerate(["kind/feature", "area/api"])]
issue = {"url": f"{api}/repos/packit/ogr/issues/7", "repository_url": f"{api}/repos/packit/ogr",
         "labels_url": f"{api}/repos/packit/ogr/issues/7/labels{{/name}}", "comments_url": f"{api}/repos/packit/ogr/issues/7/comments",
         "events_url": f"{api}/repos/packit/ogr/issues/7/events", "html_url": f"{web}/packit/ogr/pull/7", "id": 77, "node_id": "PR_kwDOA",
         "number": 7, "title": "Make it faster", "user": alice, "labels": labels, "state": "open", "locked": False,
         "assignee": None, "assignees": [], "milestone": None, "comments": 3, "created_at": "2026-11-20T10:00:00Z",
         "updated_at": "2026-11-24T12:00:00Z", "closed_at": None, "author_association": "MEMBER", "active_lock_reason": None,
         "draft": False, "pull_request": {"url": f"{api}/repos/packit/ogr/pulls/7", "html_url": f"{web}/packit/ogr/pull/7",
         "diff_url": f"{web}/packit/ogr/pull/7.diff", "patch_url": f"{web}/packit/ogr/pull/7.patch", "merged_at": None},
         "body": "This makes the forge calls faster by caching the project objects.\n\n" + "Details of the change. " * 40,
         "reactions": {"url": f"{api}/repos/packit/ogr/issues/7/reactions", "total_count": 0, "+1": 0, "-1": 0, "laugh": 0,
         "hooray": 0, "confused": 0, "heart": 0, "rocket": 0, "eyes": 0}, "timeline_url": f"{api}/repos/packit/ogr/issues/7/timeline",
         "performed_via_github_app": None, "state_reason": None}
text = "/launch" if command else "Looks good to me. " + "Some detailed review prose about the change. " * 260
payload = {"action": "created", "issue": issue,
  "comment": {"url": f"{api}/repos/packit/ogr/issues/comments/{comment}", "html_url": f"{web}/packit/ogr/pull/7#issuecomment-{comment}",
              "issue_url": f"{api}/repos/packit/ogr/issues/7", "id": comment, "node_id": "IC_kwDOA", "user": alice,
              "created_at": now, "updated_at": now, "author_association": "MEMBER",
              "body": text, "reactions": issue["reactions"], "performed_via_github_app": None},
  "repository": repo, "sender": alice, "installation": {"id": 55, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNTU="}}
if not command:  # the earlier figures' payload: 12 KB, nearly all of it the comment
    payload = {"action": "created", "issue": {"number": 7, "title": "Make it faster", "state": "open",
               "pull_request": {"url": f"{api}/repos/packit/ogr/pulls/7"}},
               "comment": {"id": comment, "body": text, "user": {"login": "alice", "id": 501, "type": "User"},
                           "created_at": "2026-11-24T12:00:00Z"},
               "repository": {"id": 9, "name": "ogr", "full_name": "packit/ogr", "owner": {"login": "packit"}},
               "sender": {"login": "alice", "id": 501, "type": "User"}, "installation": {"id": 55}}
open(path, "w").write(json.dumps(payload))
PY
  local sig
  sig=$(openssl dgst -sha256 -hmac "$secret" -hex < "$1" | awk '{print $NF}')
  cat > "$1.lua" <<LUA
wrk.method = "POST"
local f = io.open("$1", "rb"); wrk.body = f:read("*a"); f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-GitHub-Event"] = "issue_comment"
wrk.headers["X-Hub-Signature-256"] = "sha256=$sig"
-- A delivery id of its own per request, as GitHub sends: a repeated id is a
-- duplicate (answered 200, nothing queued).
counter = 0
prefix = "load-" .. math.random(1e9) .. "-"
request = function()
  counter = counter + 1
  wrk.headers["X-GitHub-Delivery"] = prefix .. counter
  return wrk.format()
end
codes = {}
response = function(status, headers, body) codes[status] = (codes[status] or 0) + 1 end
threads = {}
setup = function(thread) table.insert(threads, thread) end
done = function(summary, latency, requests)
  local all = {}
  for _, t in ipairs(threads) do
    for status, n in pairs(t:get("codes")) do all[status] = (all[status] or 0) + n end
  end
  local other = 0
  for status, n in pairs(all) do
    if status ~= 200 and status ~= 202 and status ~= 204 then other = other + n end
  end
  local e = summary.errors
  io.write(string.format("CODES %d %d %d %d %d\n", all[202] or 0, all[200] or 0, all[204] or 0, other,
    e.connect + e.read + e.write + e.timeout))
end
LUA
}

rss() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
# ticks PID: the CPU time a process has used, in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# start_bot GITHUB_URL APP_ID KEY: serve on a fresh redis-server (on CPU 1,
# as if on another machine); sets bot_pid.
start_bot() {
  rm -f "$work/redis.sock"
  taskset -c 1 redis-server --port 0 --unixsocket "$work/redis.sock" --save "" --appendonly no >/dev/null &
  redis_pid=$!
  pids+=("$redis_pid")
  for _ in $(seq 50); do [ -S "$work/redis.sock" ] && break; sleep 0.1; done
  REDIS_URL=unix://$work/redis.sock GOMAXPROCS=1 GITHUB_API_URL=$1 AWS_EC2_METADATA_DISABLED=true LOG_LEVEL=error \
    GITHUB_WEBHOOK_SECRET=$secret GITHUB_APP_ID=$2 GITHUB_PRIVATE_KEY_PATH=$3 LISTEN_ADDR=127.0.0.1:$port \
    taskset -c 0 "$work/packit-launch" serve --config "$config" 2>>"$work/serve.log" &
  bot_pid=$!
  pids+=("$bot_pid")
  for _ in $(seq 100); do curl -fs "127.0.0.1:$port/healthz" >/dev/null && return; sleep 0.1; done
  echo "serve did not start:" >&2; cat "$work/serve.log" >&2; exit 1
}

# run NAME ROUND: one measurement of one server, started afresh.
run() {
  local name=$1 round=$2 ghurl=http://127.0.0.1:9/ appid=1 key=$work/app.pem comment=1001 target=$port
  local fake_pid= bot_pid= redis_pid= ref_pid=
  case $name in
    bot-github)
      taskset -c 1 "$work/loadref" -mode github -addr "127.0.0.1:$((port + 3))" -key "$work/gh.pem" -ids "$work/gh.ids" &
      fake_pid=$!; pids+=("$fake_pid")
      for _ in $(seq 50); do [ -s "$work/gh.ids" ] && break; sleep 0.1; done
      read -r appid comment < "$work/gh.ids"
      ghurl=http://127.0.0.1:$((port + 3))/ key=$work/gh.pem ;;
    hmac|decode)
      target=$((port + 1))
      [ "$name" = decode ] && target=$((port + 2))
      GOMAXPROCS=1 taskset -c 0 "$work/loadref" -mode "$name" -addr "127.0.0.1:$target" -secret "$secret" &
      ref_pid=$!; pids+=("$ref_pid")
      for _ in $(seq 50); do curl -s -o /dev/null "127.0.0.1:$target" && break; sleep 0.1; done ;;
  esac
  body "$work/body.json" "$comment"
  local idle=-
  if [ "${name%%-*}" = bot ]; then
    start_bot "$ghurl" "$appid" "$key"
    sleep 2 # settled: the worker's first polls done
    idle=$(rss "$bot_pid" VmRSS)
  fi
  # Its CPU share during the load says whether the server was the bottleneck.
  local server=${bot_pid:-$ref_pid} cpu0
  cpu0=$(ticks "$server")
  taskset -c 1 wrk -t 1 -c 8 --latency -d "${secs}s" -s "$work/body.json.lua" "http://127.0.0.1:$target/api/github/webhooks" > "$work/wrk.out"
  local cpu=$(( ($(ticks "$server") - cpu0) * 100 / (secs * $(getconf CLK_TCK)) ))
  local after=- peak=- backlog=-
  if [ -n "$bot_pid" ]; then
    after=$(rss "$bot_pid" VmRSS) peak=$(rss "$bot_pid" VmHWM)
    # Jobs the worker had not yet taken: near 0 means it kept up with intake.
    backlog=$(redis-cli -s "$work/redis.sock" llen 'asynq:{commands}:pending')
  fi
  python3 - "$work/wrk.out" "$name" "$round" "$idle" "$after" "$peak" "$cpu" "$backlog" >> "$work/results" <<'PY'
import re, sys
out = open(sys.argv[1]).read()
rps = re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)
p99v, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
p99 = float(p99v) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
codes = re.search(r"CODES (.*)", out).group(1)
print(sys.argv[2], sys.argv[3], rps, f"{p99:.2f}", codes, *sys.argv[4:])
PY
  for p in $bot_pid $redis_pid $ref_pid $fake_pid; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -f "$work/gh.ids"
  tail -n 1 "$work/results" >&2
}

if [ -n "${COMMAND:-}" ]; then servers=(bot-github bot-github-down); else servers=(bot hmac decode); fi
echo "$(date -u +%F), $(nproc) CPUs, $(go version | awk '{print $3}'), ${secs}s per run, $rounds rounds; payload $(body "$work/probe.json" 1001; wc -c < "$work/probe.json") bytes" >&2
echo "server round req/s p99ms 202 200 204 other errors rss_idle_kB rss_after_kB rss_peak_kB server_cpu% commands_backlog" >&2
for round in $(seq "$rounds"); do
  for s in "${servers[@]}"; do run "$s" "$round"; done
done
python3 - "$work/results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
by = {}
for r in rows:
    by.setdefault(r[0], []).append(r)
def mb(kb): return f"{int(kb) / 1024:.1f}"
print()
print("| server | req/s median (min–max) | p99 median | 202 | 200 | 204 | other or errors | server CPU | RSS idle → peak after load (MB) | jobs left queued (max) |")
print("|---|---|---|---|---|---|---|---|---|---|")
for name, rs in by.items():
    rps = [float(r[2]) for r in rs]
    p99 = statistics.median(float(r[3]) for r in rs)
    sums = [sum(int(r[i]) for r in rs) for i in range(4, 9)]
    mem = "–"
    if rs[0][9] != "-":
        mem = f"{mb(statistics.median(int(r[9]) for r in rs))} → {mb(max(int(r[11]) for r in rs))}"
    print(f"| {name} | {statistics.median(rps):,.0f} ({min(rps):,.0f}–{max(rps):,.0f}) | {p99:.2f} ms | "
          f"{sums[0]:,} | {sums[1]:,} | {sums[2]:,} | {sums[3] + sums[4]:,} | {statistics.median(int(r[12]) for r in rs)} % | {mem} | "
          f"{max((int(r[13]) for r in rs if r[13] != '-'), default='–')} |")
if "hmac" in by and "bot" in by:
    ratios = [float(b[2]) / float(h[2]) for b, h in zip(by["bot"], by["hmac"])]
    print(f"\nbot / HMAC-only per round: median {statistics.median(ratios):.0%} "
          f"({min(ratios):.0%}–{max(ratios):.0%}); target ≥ 95 %")
PY
