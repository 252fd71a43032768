#!/usr/bin/env bash
# Memory bound of webhook intake under a flood, measured on the built binary:
# `packit-launch serve` on 127.0.0.1 receives N concurrent POSTs of a 24 MB
# body with a forged signature (event issue_comment, so the bot would keep
# the bytes if it could); while they stream, a correctly signed /launch
# delivery is sent. Reports the peak RSS of serve (VmHWM), the forged
# answers and how long the signed delivery took.
# With MODE slow, the flood is CONCURRENT connections that send their headers
# and one byte of a body and then stall (slowloris), held for 12 s.
# Usage: scripts/flood-intake.sh [CONCURRENT] [MEGABYTES] [MODE]   (default 48 24 big)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-48}
mb=${2:-24}
mode=${3:-big}
port=${PORT:-3918}
for tool in python3 openssl curl; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (Debian: apt-get install -y python3 openssl curl)" >&2; exit 1; }
done
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
go build -o "$work/packit-launch" ./cmd/packit-launch
secret=flood-test-secret
# A throwaway App key: intake is served only when a worker can run commands.
openssl genrsa -out "$work/app.pem" 2048 2>/dev/null
GITHUB_WEBHOOK_SECRET=$secret GITHUB_APP_ID=1 GITHUB_PRIVATE_KEY_PATH=$work/app.pem GITHUB_API_URL=http://127.0.0.1:9/ \
  LISTEN_ADDR=127.0.0.1:$port LOG_LEVEL=error REDIS_URL= GOMEMLIMIT=${GOMEMLIMIT:-96MiB} \
  "$work/packit-launch" serve --config examples/packit-launch.yaml 2>"$work/serve.log" &
pid=$!
for _ in $(seq 100); do curl -fs "127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
idle=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
ulimit -n 65536 2>/dev/null || true
python3 - "$port" "$secret" "$n" "$mb" "$pid" "$idle" "$mode" <<'PY'
import hashlib, hmac, http.client, json, socket, subprocess, sys, threading, time
port, secret, n, mb, pid, idle, mode = int(sys.argv[1]), sys.argv[2].encode(), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6]), sys.argv[7]
big = b'{"action":"created","comment":{"body":"/launch"}}' + b" " * (mb * 1000 * 1000)
forged = "sha256=" + "ab" * 32

def post(body, headers, out, chunked=False):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    t = time.monotonic()
    try:
        if chunked:  # no Content-Length: the server learns the size only at the end
            mv = memoryview(body)
            body = (mv[i:i + (1 << 20)] for i in range(0, len(mv), 1 << 20))
        c.request("POST", "/api/github/webhooks", body=body, headers=headers, encode_chunked=chunked)
        r = c.getresponse(); r.read()
        out.append((r.status, time.monotonic() - t))
    except Exception as e:
        out.append((repr(e), time.monotonic() - t))
    finally:
        c.close()

def rss(field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field):
            return int(line.split()[1])

forged_out, threads, slow = [], [], []
if mode == "slow":
    head = ("POST /api/github/webhooks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 100000\r\nX-GitHub-Event: issue_comment\r\nX-GitHub-Delivery: slow\r\n"
            f"X-Hub-Signature-256: {forged}\r\n\r\n{{").encode()
    for i in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.setblocking(False)
            try:
                s.send(head)  # never blocks: the kernel takes it even past the server's connection cap
            except BlockingIOError:
                pass
            slow.append(s)
        except OSError as e:
            forged_out.append((repr(e), 0))
    start = time.monotonic()
    time.sleep(1)
else:
    for i in range(n):
        h = {"Content-Type": "application/json", "X-GitHub-Event": "issue_comment",
             "X-GitHub-Delivery": f"flood-{i}", "X-Hub-Signature-256": forged}
        # Half announce their length, half are chunked (the worst case: bytes are kept until the cap).
        threads.append(threading.Thread(target=post, args=(big, h, forged_out, i % 2 == 1)))
    start = time.monotonic()
    for t in threads: t.start()
    time.sleep(0.3)  # the flood is streaming
now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
good = json.dumps({"action": "created", "issue": {"number": 7, "pull_request": {"url": "x"}},
    "comment": {"id": 1001, "body": "/launch", "user": {"login": "alice", "type": "User"}, "created_at": now},
    "repository": {"full_name": "packit/ogr"}, "sender": {"login": "alice", "type": "User"},
    "installation": {"id": 55}}).encode()
sig = "sha256=" + hmac.new(secret, good, hashlib.sha256).hexdigest()
# Sent by curl, its own process: the client's threads must not delay it.
res = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", "--max-time", "30",
    "-H", "Content-Type: application/json", "-H", "X-GitHub-Event: issue_comment",
    "-H", f"X-GitHub-Delivery: good-{time.time_ns()}", "-H", f"X-Hub-Signature-256: {sig}",
    "--data-binary", "@-", f"http://127.0.0.1:{port}/api/github/webhooks"], input=good, capture_output=True)
code, secs = res.stdout.decode().split()
good_out = [(int(code), float(secs))]
during = sum(t.is_alive() for t in threads) + len(slow)
if slow:
    time.sleep(max(0, 12 - (time.monotonic() - start)))
    for s in slow: s.close()
for t in threads: t.join()
elapsed = time.monotonic() - start
codes = {}
for c, _ in forged_out: codes[c] = codes.get(c, 0) + 1
if slow:
    print(f"slow flood: {n} connections sending headers and one byte, then stalling, held 12 s; client errors {codes}")
else:
    print(f"flood: {n} concurrent forged POSTs of {mb} MB (issue_comment; half chunked), answers {codes}, all done in {elapsed:.1f} s")
print(f"signed /launch during the flood ({during} forged still in flight): HTTP {good_out[0][0]} in {good_out[0][1]*1000:.0f} ms")
print(f"serve RSS: idle {idle/1024:.1f} MB, peak (VmHWM) {rss('VmHWM')/1024:.1f} MB")
PY
