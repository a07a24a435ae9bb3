#!/usr/bin/env bash
# Instructions a build of presence spends per request, counted by callgrind: a figure that the
# machine's noise does not move, for changes too small for compare.sh to see.
#
#   benches/load/instructions.sh BINARY                       # per Get, the log as by default
#   PRESENCE_LOG=info,access=off benches/load/instructions.sh BINARY
#   benches/load/instructions.sh BINARY --requests 300,1300
#   benches/load/instructions.sh BINARY --batch               # per batch read of 1000 ids
#   benches/load/instructions.sh BINARY --set                 # per Set, each its own commit
#
# Runs the server under `valgrind --tool=callgrind` twice and sends each run a different number
# of requests on one keep-alive connection; the difference of the two totals, divided by the
# difference of the counts, is the cost of one request with start-up, the first Argon2 check
# and shutdown taken out.
#
# Gets: of associate 963, as the demo administrator, on a fresh SQLite database with the demo
# users. --batch (default counts 5,45): GET /presence/v1/users?ids=... of 1000 random distinct
# ids out of 10 000 associates, a tenth with a timed status and a tenth with an absence (half
# in force), as benches/load/presence_api.sh makes them; every user is read once before, so
# that the cache's first fill is not counted. --set: SetUserPresenceStatus of associate 963,
# alternating two statuses so that each is a change; sent one at a time, each Set is a commit of
# its own, so the figure includes a commit's fixed cost that a loaded server shares among the
# Sets of a batch. Traffic goes to 127.0.0.1 only.

set -euo pipefail

[[ $# -ge 1 && "$1" != -* ]] || { sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
binary="$(realpath "$1")"
shift
requests=""
batch=0
set=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --requests) requests="$2"; shift 2 ;;
        --batch) batch=1; shift ;;
        --set) set=1; shift ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done
if [[ -z "$requests" ]]; then
    if ((batch)); then requests=5,45; else requests=300,1300; fi
fi
IFS=, read -r fewer more <<<"$requests"
command -v valgrind >/dev/null || { echo "valgrind is missing (apt-get install valgrind)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# A database of 10 000 associates for --batch; "bench" (1) an administrator.
make_batch_database() {
    "$binary" --database "sqlite://$work/db" migrate >/dev/null
    printf 'bench-password\n' | "$binary" --database "sqlite://$work/db" \
        user add bench --associate-id 1 --admin --password-stdin >/dev/null
    python3 "$(dirname "${BASH_SOURCE[0]}")/fill_database.py" "$work/db" 10000 1
}

# Total instructions of one server run that answers $1 requests.
run() {
    local count=$1 port=$((20000 + RANDOM % 20000)) pid
    rm -f "$work"/db*
    local serve=(serve --listen "127.0.0.1:$port")
    if ((batch)); then make_batch_database; else serve+=(--demo); fi
    valgrind --tool=callgrind --callgrind-out-file="$work/out" "$binary" \
        --database "sqlite://$work/db" "${serve[@]}" >"$work/log" 2>&1 &
    pid=$!
    for _ in $(seq 300); do
        grep -q "listening on" "$work/log" 2>/dev/null && break
        sleep 0.2
    done
    python3 - "$port" "$count" "$batch" "$set" <<'EOF'
import base64, http.client, random, sys
port, count, batch, set_ = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4] == "1"
connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

def send(method, path, body=None, headers=()):
    connection.request(method, path, body=body, headers=dict(headers))
    response = connection.getresponse()
    response.read()
    assert response.status == 200, response.status

if batch:
    headers = {"Authorization": "Basic " + base64.b64encode(b"bench:bench-password").decode()}
    for first in range(1, 10001, 1000):
        send("GET", "/presence/v1/users?ids=" + ",".join(map(str, range(first, first + 1000))),
             headers=headers)
    chosen = random.Random(20261203)
    for _ in range(count):
        ids = chosen.sample(range(1, 10001), 1000)
        send("GET", "/presence/v1/users?ids=" + ",".join(map(str, ids)), headers=headers)
else:
    headers = {
        "Authorization": "Basic dGplMDpUamUw",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    for index in range(count):
        if set_:
            status = "StatusNotAvailable" if index % 2 else "StatusNormal"
            send("POST", "/api/v1/Agents/User/SetUserPresenceStatus", headers=headers,
                 body='{"AssociateId":963,"UserPresenceStatus":{"Status":"%s"}}' % status)
        else:
            send("POST", "/api/v1/Agents/User/GetUserPresenceStatus",
                 body='{"AssociateId":963}', headers=headers)
EOF
    kill -TERM "$pid"
    wait "$pid" || true
    awk '/^(summary|totals):/ { print $2; exit }' "$work/out"
}

low=$(run "$fewer")
high=$(run "$more")
if ((batch)); then what="batch of 1000 ids"; elif ((set)); then what="Set"; else what="Get"; fi
echo "$(( (high - low) / (more - fewer) )) instructions per $what ($binary, PRESENCE_LOG=${PRESENCE_LOG:-default})"
