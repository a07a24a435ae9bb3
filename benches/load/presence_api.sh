#!/usr/bin/env bash
# The presence API under load, side by side with the floor and with SuperOffice's Get.
#
#   benches/load/presence_api.sh                          # 5 rounds of 5 s
#   benches/load/presence_api.sh --baseline OLD_BINARY    # also today's Get, of an older build
#   benches/load/presence_api.sh --before OLD_BINARY      # also an older build's batches and Gets
#   benches/load/presence_api.sh --associates 300000      # more associates than the caches hold
#   benches/load/presence_api.sh --memory                 # memory for 1 000 000 users instead
#
# Builds in release mode (unless --no-build), makes fresh SQLite databases of 10 000 associates
# (or --associates), and starts, all pinned to one core: the floor (examples/floor.rs),
# presence on a plain database, presence on a database where a tenth of the users have a timed
# status and a tenth a planned absence (half of them in force), with --baseline the older
# binary on a plain database of its own, and with --before an older build that has the
# presence API on a database like the timed one, which gets the same batches and Gets as the
# timed server in each round. wrk runs on the other core. Each round runs, alternating the
# order: batch reads of 1000 random ids against the floor and against presence (timers and
# absences present), and SuperOffice's Get against each presence. It prints medians; each
# ratio is the median of the rounds' own ratios, so that the machine's drift cancels out.
#
# --memory: a database of 1 000 000 users with one planned absence each; presence starts on
# it, its resident memory is read, every user is read once in batches of 1000 (which fills the
# user cache to its bounds), and the memory is read again.
#
# Traffic goes to 127.0.0.1 only; every run is bounded by --duration.

set -euo pipefail

rounds=5
duration=5
associates=10000
connections=16
server_cpu=0
client_cpu=1
port=18280
baseline=""
older=""
build=1
memory=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds) rounds="$2"; shift 2 ;;
        --duration) duration="$2"; shift 2 ;;
        --associates) associates="$2"; shift 2 ;;
        --baseline) baseline="$(realpath "$2")"; shift 2 ;;
        --before) older="$(realpath "$2")"; shift 2 ;;
        --no-build) build=0; shift ;;
        --memory) memory=1; shift ;;
        --port) port="$2"; shift 2 ;;
        -h | --help) sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
if ((build)); then
    cargo build --release --bin presence --example floor >&2
fi
presence="$PWD/target/release/presence"
floor="$PWD/target/release/examples/floor"
here="$PWD/benches/load"
command -v wrk >/dev/null || { echo "wrk is missing: benches/load/run.sh installs it" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is needed to fill the databases" >&2; exit 1; }

login=bench
password="bench-password-$RANDOM$RANDOM"
authorization="Basic $(printf '%s:%s' "$login" "$password" | base64 -w0)"
ticks=$(getconf CLK_TCK)
work="$(mktemp -d "${TMPDIR:-/tmp}/presence-api.XXXXXX")"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# make_database BINARY FILE COUNT TIMERS: associates 1..COUNT, "bench" (1) an administrator
# with a password; with TIMERS, a tenth with a timed status and a tenth with an absence.
make_database() {
    local binary="$1" file="$2" count="$3" timers="$4"
    "$binary" --database "sqlite://$file" migrate >/dev/null
    printf '%s\n' "$password" | "$binary" --database "sqlite://$file" \
        user add "$login" --associate-id 1 --admin --password-stdin >/dev/null
    python3 "$here/fill_database.py" "$file" "$count" "$timers"
}

start() { # start NAME PORT COMMAND...
    local name="$1" at="$2"
    shift 2
    taskset -c "$server_cpu" "$@" >"$work/$name.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 300); do
        (exec 3<>"/dev/tcp/127.0.0.1/$at") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "$name did not start; see its log:" >&2
    cat "$work/$name.log" >&2
    exit 1
}

rss_kb() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }
hwm_kb() { awk '/VmHWM/ { print $2 }' "/proc/$1/status"; }

if ((memory)); then
    users=1000000
    echo "filling a database with $users users, each with one planned absence" >&2
    make_database "$presence" "$work/large.db" "$users" 0
    python3 - "$work/large.db" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
now = int(time.time() * 1000)
db.execute(
    """INSERT INTO absence (associate_id, starts_at, ends_at, message, created_at)
       SELECT associate_id, ? + associate_id, ? + associate_id, 'Holiday', ? FROM service_user""",
    (now + 86_400_000, now + 7 * 86_400_000, now))
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
PY
    echo "database: $(du -h "$work/large.db" | cut -f1)" >&2
    start presence "$port" "$presence" --database "sqlite://$work/large.db" serve --listen "127.0.0.1:$port"
    pid=${pids[-1]}
    curl -sf -H "Authorization: $authorization" "http://127.0.0.1:$port/presence/v1/users?ids=1" >/dev/null
    before=$(rss_kb "$pid")
    python3 - "$port" "$authorization" "$users" <<'PY'
import http.client, sys
port, authorization, users = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
connection = http.client.HTTPConnection("127.0.0.1", port)
for first in range(1, users + 1, 1000):
    ids = ",".join(str(i) for i in range(first, min(first + 1000, users + 1)))
    connection.request("GET", "/presence/v1/users?ids=" + ids, headers={"Authorization": authorization})
    response = connection.getresponse()
    body = response.read()
    assert response.status == 200, (response.status, body[:200])
PY
    after=$(rss_kb "$pid")
    echo "memory: $((before / 1024)) MB resident after start, $((after / 1024)) MB after reading every user once (peak $(($(hwm_kb "$pid") / 1024)) MB): $(((after - before) / 1024)) MB for the users read"
    exit 0
fi

echo "filling the databases" >&2
make_database "$presence" "$work/plain.db" "$associates" 0
make_database "$presence" "$work/timed.db" "$associates" 1
start floor "$port" "$floor" "127.0.0.1:$port"
start plain $((port + 1)) "$presence" --database "sqlite://$work/plain.db" serve --listen "127.0.0.1:$((port + 1))"
start timed $((port + 2)) "$presence" --database "sqlite://$work/timed.db" serve --listen "127.0.0.1:$((port + 2))"
names=(floor plain timed)
if [[ -n "$baseline" ]]; then
    make_database "$baseline" "$work/baseline.db" "$associates" 0
    start baseline $((port + 3)) "$baseline" --database "sqlite://$work/baseline.db" serve --listen "127.0.0.1:$((port + 3))"
    names+=(baseline)
fi
if [[ -n "$older" ]]; then
    make_database "$older" "$work/older.db" "$associates" 1
    start older $((port + 4)) "$older" --database "sqlite://$work/older.db" serve --listen "127.0.0.1:$((port + 4))"
    older_pid=${pids[-1]}
fi

# drive SECONDS PORT PID SCRIPT ARGS...: one wrk run; prints requests/s and the CPU µs per
# request of the server on PORT (whose pid is PID), as "user+system".
drive() {
    local seconds="$1" at="$2" pid="$3" script="$4"
    shift 4
    local before after requests
    before=$(awk '{ print $14, $15 }' "/proc/$pid/stat")
    taskset -c "$client_cpu" wrk -t1 -c"$connections" -d"${seconds}s" \
        -H "Authorization: $authorization" -s "$script" "http://127.0.0.1:$at/" -- "$@" >"$work/wrk.out"
    after=$(awk '{ print $14, $15 }' "/proc/$pid/stat")
    if grep -q "Non-2xx" "$work/wrk.out"; then
        echo "non-2xx answers from port $at:" >&2
        cat "$work/wrk.out" >&2
        exit 1
    fi
    requests=$(awk '/requests in/ { print $1 }' "$work/wrk.out")
    awk -v before="$before" -v after="$after" -v requests="$requests" -v ticks="$ticks" '
        /Requests\/sec/ {
            split(before, b, " "); split(after, a, " ")
            printf "%s %d+%d\n", $2, (a[1] - b[1]) * 1e6 / ticks / requests, (a[2] - b[2]) * 1e6 / ticks / requests
        }' "$work/wrk.out"
}

batch() { drive "$1" "$2" "$3" "$here/presence_api.lua" batch "$associates" 1000; }
get() { drive "$1" "$2" "$3" "$here/presence.lua" get "$associates"; }

echo "warming up" >&2
batch 2 "$port" "${pids[0]}" >/dev/null
for i in 1 2; do batch 2 $((port + i)) "${pids[$i]}" >/dev/null; get 2 $((port + i)) "${pids[$i]}" >/dev/null; done
[[ -n "$baseline" ]] && get 2 $((port + 3)) "${pids[3]}" >/dev/null
if [[ -n "$older" ]]; then batch 2 $((port + 4)) "$older_pid" >/dev/null; get 2 $((port + 4)) "$older_pid" >/dev/null; fi

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
declare -a batch_floor batch_timed batch_ratio batch_older to_older get_older get_to_older get_plain get_timed get_base timed_to_plain timed_to_base
for round in $(seq "$rounds"); do
    read -r bf _ < <(batch "$duration" "$port" "${pids[0]}")
    # The older build gets what the timed server gets, batches and Gets, so that their caches
    # see the same traffic.
    if [[ -n "$older" ]] && ((round % 2 == 0)); then
        read -r bo bo_cost < <(batch "$duration" $((port + 4)) "$older_pid")
        read -r go _ < <(get "$duration" $((port + 4)) "$older_pid")
    fi
    read -r bt bt_cost < <(batch "$duration" $((port + 2)) "${pids[2]}")
    if [[ -n "$older" ]] && ((round % 2 == 1)); then
        read -r bo bo_cost < <(batch "$duration" $((port + 4)) "$older_pid")
        read -r go _ < <(get "$duration" $((port + 4)) "$older_pid")
    fi
    if ((round % 2 == 0)); then
        read -r gt gt_cost < <(get "$duration" $((port + 2)) "${pids[2]}")
        read -r gp _ < <(get "$duration" $((port + 1)) "${pids[1]}")
    else
        read -r gp _ < <(get "$duration" $((port + 1)) "${pids[1]}")
        read -r gt gt_cost < <(get "$duration" $((port + 2)) "${pids[2]}")
    fi
    batch_floor+=("$bf"); batch_timed+=("$bt"); batch_ratio+=("$(ratio "$bt" "$bf")")
    get_plain+=("$gp"); get_timed+=("$gt"); timed_to_plain+=("$(ratio "$gt" "$gp")")
    line="round $round: batch floor $bf req/s, presence $bt req/s ($bt_cost µs CPU each, user+system); Get plain $gp, with timers $gt ($gt_cost µs CPU each, user+system)"
    if [[ -n "$baseline" ]]; then
        read -r gb _ < <(get "$duration" $((port + 3)) "${pids[3]}")
        get_base+=("$gb"); timed_to_base+=("$(ratio "$gt" "$gb")")
        line+=", baseline $gb"
    fi
    if [[ -n "$older" ]]; then
        batch_older+=("$bo"); to_older+=("$(ratio "$bt" "$bo")")
        get_older+=("$go"); get_to_older+=("$(ratio "$gt" "$go")")
        line+="; the older build: batch $bo req/s ($bo_cost µs CPU each), Get $go"
    fi
    echo "$line"
done
echo "medians of $rounds rounds of $duration s, 1000 ids a batch, $associates associates:"
echo "  batch: presence $(median "${batch_timed[@]}") req/s ($(awk -v r="$(median "${batch_timed[@]}")" 'BEGIN { printf "%.2f", r * 1000 / 1e6 }') million presences/s), floor $(median "${batch_floor[@]}") req/s, presence/floor $(median "${batch_ratio[@]}")"
echo "  Get: plain $(median "${get_plain[@]}") req/s, with timers and absences $(median "${get_timed[@]}") req/s, ratio $(median "${timed_to_plain[@]}")"
if [[ -n "$baseline" ]]; then
    echo "  Get with timers and absences / baseline binary on a plain database: $(median "${timed_to_base[@]}") (baseline $(median "${get_base[@]}") req/s)"
fi
if [[ -n "$older" ]]; then
    echo "  the older build on a database like the timed one: batch $(median "${batch_older[@]}") req/s, Get $(median "${get_older[@]}") req/s"
    echo "  this build / older, round by round: batch $(median "${to_older[@]}"), Get with timers and absences $(median "${get_to_older[@]}")"
fi
