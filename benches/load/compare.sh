#!/usr/bin/env bash
# Two builds of presence side by side, for a change too small for run.sh's noise to show.
#
#   benches/load/compare.sh OLD_BINARY NEW_BINARY                  # Set, 4 rounds of 5 s
#   benches/load/compare.sh OLD NEW --workload get --rounds 6 --duration 5
#
# Each binary makes and fills its own fresh SQLite database (so each gets the page size and
# schema it would create), both servers start at once pinned to the same core, and every round
# runs wrk against one and then the other, alternating which goes first. It prints each run's
# requests/s and the server's CPU time per request (user + system, from /proc), then the
# medians. Traffic goes to 127.0.0.1 only; every run is bounded by --duration.

set -euo pipefail

usage() {
    sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    cat <<'EOF'

Options: --workload get|set|mix (default set), --rounds N (4), --duration S (5),
--associates N (10000), --connections N (16), --server-cpu N (0), --client-cpu N (1),
--port N (presence A on N, B on N+1; default 18180)
EOF
}

[[ $# -ge 2 && "$1" != -* ]] || { usage >&2; exit 2; }
binaries=("$(realpath "$1")" "$(realpath "$2")")
shift 2
workload=set
rounds=4
duration=5
associates=10000
connections=16
server_cpu=0
client_cpu=1
port=18180
while [[ $# -gt 0 ]]; do
    case "$1" in
        --workload) workload="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --duration) duration="$2"; shift 2 ;;
        --associates) associates="$2"; shift 2 ;;
        --connections) connections="$2"; shift 2 ;;
        --server-cpu) server_cpu="$2"; shift 2 ;;
        --client-cpu) client_cpu="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done
case "$workload" in get | set | mix) ;; *) echo "unknown workload: $workload" >&2; exit 2 ;; esac
for binary in "${binaries[@]}"; do
    [[ -x "$binary" ]] || { echo "not an executable: $binary" >&2; exit 2; }
done
command -v wrk >/dev/null || { echo "wrk is missing: benches/load/run.sh installs it" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is needed to fill the databases" >&2; exit 1; }

script="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/presence.lua"
login=bench
password="bench-password-$RANDOM$RANDOM"
authorization="Basic $(printf '%s:%s' "$login" "$password" | base64 -w0)"
ticks=$(getconf CLK_TCK)
work="$(mktemp -d "${TMPDIR:-/tmp}/presence-compare.XXXXXX")"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for index in 0 1; do
    database="$work/$index.db"
    "${binaries[$index]}" --database "sqlite://$database" migrate >/dev/null
    printf '%s\n' "$password" | "${binaries[$index]}" --database "sqlite://$database" \
        user add "$login" --associate-id 1 --admin --password-stdin >/dev/null
    python3 - "$database" "$associates" <<'EOF'
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute(
    """WITH RECURSIVE n(id) AS (SELECT 2 UNION ALL SELECT id + 1 FROM n WHERE id < ?)
       INSERT INTO service_user (associate_id, login, password_hash, is_admin, status, message, updated_at)
       SELECT id, 'u' || id, NULL, 0, 1, NULL, 0 FROM n""",
    (int(sys.argv[2]),),
)
connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
EOF
    taskset -c "$server_cpu" "${binaries[$index]}" --database "sqlite://$database" \
        serve --listen "127.0.0.1:$((port + index))" >"$work/$index.log" 2>&1 &
    pids+=($!)
done

drive() {
    taskset -c "$client_cpu" wrk -t1 -c"$connections" -d"$1s" -H "Authorization: $authorization" \
        -s "$script" "http://127.0.0.1:$2/" -- "$workload" "$associates"
}

for index in 0 1; do
    for _ in $(seq 100); do
        grep -q "listening on" "$work/$index.log" && break
        sleep 0.1
    done
    drive 2 $((port + index)) >/dev/null # warm-up: the cache, the write-ahead log
done

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
declare -a rates0 rates1 costs0 costs1
for round in $(seq "$rounds"); do
    order=(0 1)
    ((round % 2 == 0)) && order=(1 0)
    for index in "${order[@]}"; do
        before=$(cpu_ticks "${pids[$index]}")
        drive "$duration" $((port + index)) >"$work/wrk.out"
        after=$(cpu_ticks "${pids[$index]}")
        requests=$(awk '/requests in/ { print $1 }' "$work/wrk.out")
        rate=$(awk '/Requests\/sec/ { print $2 }' "$work/wrk.out")
        cost=$(((after - before) * 1000000 / ticks / requests))
        if ((index == 0)); then rates0+=("$rate"); costs0+=("$cost"); else rates1+=("$rate"); costs1+=("$cost"); fi
        printf 'round %d, %s: %s req/s, %d µs of CPU per request%s\n' "$round" \
            "$([[ $index == 0 ]] && echo A || echo B)" "$rate" "$cost" \
            "$(grep -q Non-2xx "$work/wrk.out" && echo ', with non-2xx answers' || true)"
    done
done

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "A: ${binaries[0]}"
echo "B: ${binaries[1]}"
echo "$workload, medians of $rounds rounds of $duration s:" \
    "A $(median "${rates0[@]}") req/s, $(median "${costs0[@]}") µs/request;" \
    "B $(median "${rates1[@]}") req/s, $(median "${costs1[@]}") µs/request;" \
    "B/A $(awk -v a="$(median "${rates0[@]}")" -v b="$(median "${rates1[@]}")" 'BEGIN { printf "%.2f", b / a }')"
