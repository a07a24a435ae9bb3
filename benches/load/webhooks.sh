#!/usr/bin/env bash
# Webhook deliveries to a receiver on loopback: how many changes a second one node delivers,
# in order, while Sets make them as fast as wrk can.
#
#   benches/load/webhooks.sh                          # ${CARGO_TARGET_DIR:-target}/release
#   benches/load/webhooks.sh --binary PATH --duration 20 --rate 1000
#
# Builds nothing. Makes a fresh SQLite database in a temporary folder with N associates
# (imported without passwords; wrk signs in as the demo administrator), starts a receiver
# (Python's http.server, HTTP/1.1 kept alive, answering 204) and `presence serve
# --allow-private-webhooks`, adds one webhook for every change, then runs wrk's Sets
# (presence.lua's set mode, at most --rate a second when wrk2's -R is there, as fast as it can
# otherwise) for --duration seconds. It prints the Sets a second, the changes made, how many
# the receiver got and how fast (from the first to the last), and the backlog left when wrk
# stopped and how long it took to drain. Installs nothing; needs wrk and python3. Traffic
# goes to 127.0.0.1 only; every step is bounded (the drain by --drain seconds).

set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: benches/load/webhooks.sh [options]

  --binary PATH      the presence build (default ${CARGO_TARGET_DIR:-target}/release/presence)
  --duration S       seconds of Sets (default 10)
  --rate N           Sets a second, with wrk2 (-R); without wrk2, as fast as wrk goes
  --associates N     associates in the database (default 1000)
  --connections N    wrk connections, kept alive (default 8)
  --port N           the server listens on N, the receiver on N+1 (default 18580)
  --drain S          seconds to wait for the backlog to drain after the Sets (default 60)
  --keep             keep the temporary folder (logs, the database)
USAGE
}

here=$(cd "$(dirname "$0")" && pwd)
binary="${CARGO_TARGET_DIR:-$here/../../target}/release/presence"
duration=10 rate="" associates=1000 connections=8 port=18580 drain=60 keep=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --binary) binary=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --rate) rate=$2; shift 2 ;;
        --associates) associates=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        --port) port=$2; shift 2 ;;
        --drain) drain=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
for tool in wrk python3 curl; do
    command -v "$tool" >/dev/null || { echo "webhooks.sh: $tool is missing" >&2; exit 1; }
done
[[ -x $binary ]] || { echo "webhooks.sh: no build at $binary" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ $keep -eq 1 ]]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

export PRESENCE_DATABASE_URL="sqlite://$work/presence.db" PRESENCE_LOG=warn
"$binary" migrate >/dev/null
{
    echo "login,associate_id,admin,password"
    for ((id = 1000; id < 1000 + associates; id++)); do echo "agent$id,$id,false,"; done
} >"$work/users.csv"
"$binary" user import "$work/users.csv" >/dev/null

# The receiver: counts the POSTs and notes the first's and the last's time.
cat >"$work/receiver.py" <<'PY'
import http.server, sys, threading, time
count, first, last = 0, None, None
lock = threading.Lock()
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        global count, first, last
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        now = time.monotonic()
        with lock:
            count += 1
            first = first or now
            last = now
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
def report():
    while True:
        time.sleep(0.2)
        with lock:
            span = (last - first) if first and last else 0
            open(sys.argv[2] + ".tmp", "w").write(f"{count} {span:.3f}\n")
        import os; os.replace(sys.argv[2] + ".tmp", sys.argv[2])
threading.Thread(target=report, daemon=True).start()
server.serve_forever()
PY
python3 "$work/receiver.py" $((port + 1)) "$work/received" &
pids+=($!)

"$binary" serve --listen "127.0.0.1:$port" --demo --allow-private-webhooks 2>"$work/server.log" &
pids+=($!)
for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null && break
    sleep 0.1
done
"$binary" webhook add "http://127.0.0.1:$((port + 1))/hook" >"$work/webhook"
webhook_id=$(sed -n 's/^id: //p' "$work/webhook")
auth="Authorization: Basic $(printf 'tje0:Tje0' | base64)"
latest() {
    python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT coalesce(max(revision), 0) FROM user_change').fetchone()[0])" "$work/presence.db"
}
delivered() {
    curl -fs -H "$auth" "http://127.0.0.1:$port/presence/v1/webhooks" |
        python3 -c "import json,sys; print(next(w['deliveredThrough'] for w in json.load(sys.stdin)['items'] if w['id'] == $webhook_id))"
}
start_revision=$(latest)

rate_flag=()
[[ -n $rate ]] && wrk --help 2>&1 | grep -q -- '-R' && rate_flag=(-R "$rate")
wrk -t 1 -c "$connections" -d "${duration}s" "${rate_flag[@]}" -H "$auth" \
    -s "$here/presence.lua" "http://127.0.0.1:$port" -- set $((1000 + associates - 1)) \
    >"$work/wrk.txt"
sets_per_second=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
end_revision=$(latest)
backlog=$((end_revision - $(delivered)))
drained_at=$(date +%s.%N)
deadline=$(($(date +%s) + drain))
while [[ $(delivered) -lt $end_revision && $(date +%s) -lt $deadline ]]; do sleep 0.2; done
drained=$(echo "$(date +%s.%N) - $drained_at" | bc)
sleep 0.5
read -r received span <"$work/received"
echo "Sets/s (wrk):            $sets_per_second"
echo "revisions made:          $((end_revision - start_revision)) ($start_revision..$end_revision; a Set that stores what was there makes one no webhook gets)"
echo "changes received:        $received"
echo "delivered/s:             $(echo "scale=0; $received / $span" | bc 2>/dev/null || echo "?") (first to last receipt, ${span}s)"
echo "backlog when wrk ended:  $backlog revisions, drained in ${drained}s"
[[ $(delivered) -ge $end_revision ]] || echo "NOT DRAINED within ${drain}s"
