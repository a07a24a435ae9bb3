#!/usr/bin/env bash
# Instructions a build of presence spends per Get, counted by callgrind: a figure that the
# machine's noise does not move, for changes too small for compare.sh to see.
#
#   benches/load/instructions.sh BINARY                       # the log as by default
#   PRESENCE_LOG=info,access=off benches/load/instructions.sh BINARY
#   benches/load/instructions.sh BINARY --requests 300,1300
#
# Runs the server under `valgrind --tool=callgrind` twice, on a fresh SQLite database with
# the demo users, and sends each run a different number of Gets (of associate 963, as the
# demo administrator, on one keep-alive connection); the difference of the two totals,
# divided by the difference of the counts, is the cost of one Get with start-up, the first
# Argon2 check and shutdown taken out. Traffic goes to 127.0.0.1 only.

set -euo pipefail

[[ $# -ge 1 && "$1" != -* ]] || { sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
binary="$(realpath "$1")"
shift
requests=300,1300
while [[ $# -gt 0 ]]; do
    case "$1" in
        --requests) requests="$2"; shift 2 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done
IFS=, read -r fewer more <<<"$requests"
command -v valgrind >/dev/null || { echo "valgrind is missing (apt-get install valgrind)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Total instructions of one server run that answers $1 Gets.
run() {
    local count=$1 port=$((20000 + RANDOM % 20000)) pid
    rm -f "$work"/db*
    valgrind --tool=callgrind --callgrind-out-file="$work/out" "$binary" \
        --database "sqlite://$work/db" serve --demo --listen "127.0.0.1:$port" \
        >"$work/log" 2>&1 &
    pid=$!
    for _ in $(seq 300); do
        grep -q "listening on" "$work/log" 2>/dev/null && break
        sleep 0.2
    done
    python3 - "$port" "$count" <<'EOF'
import http.client, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
headers = {
    "Authorization": "Basic dGplMDpUamUw",
    "Content-Type": "application/json",
    "Accept": "application/json",
}
for _ in range(count):
    connection.request("POST", "/api/v1/Agents/User/GetUserPresenceStatus",
                       body='{"AssociateId":963}', headers=headers)
    response = connection.getresponse()
    response.read()
    assert response.status == 200, response.status
EOF
    kill -TERM "$pid"
    wait "$pid" || true
    awk '/^(summary|totals):/ { print $2; exit }' "$work/out"
}

low=$(run "$fewer")
high=$(run "$more")
echo "$(( (high - low) / (more - fewer) )) instructions per Get ($binary, PRESENCE_LOG=${PRESENCE_LOG:-default})"
