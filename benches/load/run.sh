#!/usr/bin/env bash
# Load test: presence against a floor (examples/floor.rs), side by side, on this machine.
#
#   benches/load/run.sh                       # 10 000 associates, 5 rounds of 10 s runs
#   benches/load/run.sh --large               # 1 000 000 associates, plus a 10 000 reference
#   benches/load/run.sh --associates 50000 --duration 5 --rounds 5
#   benches/load/run.sh --postgres postgres://user:pass@127.0.0.1/presence
#
# Builds in release mode, installs wrk if missing (apt-get, as root), makes a fresh temporary
# SQLite database with N associates (one of them, login "bench", with a real Argon2id
# password), then for each round starts the floor and presence pinned to one core and runs
# wrk pinned to the other: Get, Set, and a 95/5 Get/Set mix, each against the floor and
# presence back to back with the same requests (the floor first in odd rounds, presence first
# in even ones). With more than 10 000 associates, each round also runs Get on a
# 10 000-associate reference database, so that the two sizes are compared in the same run.
# It prints medians over the rounds; each ratio to the floor is the median of the rounds' own
# ratios, so that a change in the machine's speed between rounds cancels out. Also how busy
# each core was, presence's peak memory (VmHWM), its startup time (launch to first HTTP
# answer) and its Get rate during the warm-up that fills its cache.
#
# Traffic goes to 127.0.0.1 only, and every run is bounded by --duration.

set -euo pipefail

usage() {
    cat <<'EOF'
Usage: benches/load/run.sh [options]

  --associates N     associates in the database (default 10000)
  --large            the same as --associates 1000000
  --duration S       seconds per wrk run (default 10)
  --rounds N         rounds; each runs every workload on the floor and on presence (default 5)
  --connections N    wrk connections, kept alive (default 16)
  --server-cpu N     the core the servers are pinned to (default 0)
  --client-cpu N     the core wrk is pinned to (default 1)
  --port N           presence listens on N, the floor on N+1 (default 18080)
  --postgres URL     also run Get with presence on this PostgreSQL database
  --quiet-wait S     before each run, wait up to S seconds for the rest of the machine to
                     go idle (default 120; 0: do not wait)
  --no-build         use the release binaries already built
  --keep             keep the temporary directory (databases, logs, raw wrk output)
  -h, --help         this text
EOF
}

associates=10000
reference_associates=10000
duration=10
rounds=5
connections=16
server_cpu=0
client_cpu=1
port=18080
postgres_url=""
build=1
keep=0
quiet_wait=120

while [[ $# -gt 0 ]]; do
    case "$1" in
        --associates) associates="$2"; shift 2 ;;
        --large) associates=1000000; shift ;;
        --duration) duration="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --connections) connections="$2"; shift 2 ;;
        --server-cpu) server_cpu="$2"; shift 2 ;;
        --client-cpu) client_cpu="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        --postgres) postgres_url="$2"; shift 2 ;;
        --quiet-wait) quiet_wait="$2"; shift 2 ;;
        --no-build) build=0; shift ;;
        --keep) keep=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done

for number in "$associates" "$duration" "$rounds" "$connections" "$server_cpu" "$client_cpu" "$port" "$quiet_wait"; do
    if ! [[ "$number" =~ ^[0-9]+$ ]]; then
        echo "not a number: $number" >&2
        exit 2
    fi
done
if ((associates < 2 || associates > 2147483647 || rounds < 1 || duration < 1 || connections < 1)); then
    echo "need 2 to 2147483647 associates, at least 1 round, 1 second and 1 connection" >&2
    exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
script="$root/benches/load/presence.lua"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
presence="$target_dir/release/presence"
floor="$target_dir/release/examples/floor"
floor_port=$((port + 1))
login="bench"
password="bench-password-$RANDOM$RANDOM"
authorization="Basic $(printf '%s:%s' "$login" "$password" | base64 -w0)"

say() { printf '%s\n' "$*" >&2; }

# --- Tools -----------------------------------------------------------------------------------

if ! command -v taskset >/dev/null; then
    say "taskset is missing (util-linux)"
    exit 1
fi
if ! command -v wrk >/dev/null; then
    if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
        say "installing wrk"
        apt-get update >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >/dev/null
    else
        say "wrk is missing: install it (apt-get install wrk) and run again"
        exit 1
    fi
fi
if command -v sqlite3 >/dev/null; then
    sql() { sqlite3 "$1" "$2"; }
elif command -v python3 >/dev/null; then
    sql() {
        python3 - "$1" "$2" <<'EOF'
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
text = sys.argv[2]
if text.lstrip().upper().startswith("SELECT"):
    for row in connection.execute(text):
        print("|".join(str(value) for value in row))
else:
    connection.executescript(text)
EOF
    }
else
    say "need the sqlite3 command or python3 to fill the database"
    exit 1
fi
online=$(nproc)
if ((server_cpu >= online || client_cpu >= online || server_cpu == client_cpu)); then
    say "need two distinct cores (this machine has $online): see --server-cpu and --client-cpu"
    exit 1
fi

if ((build)); then
    say "building (release)"
    # Apart: built together, the server would get the features the example's dev-dependencies
    # turn on (tokio's test-util), which the server as shipped does not have.
    cargo build --release --quiet --bin presence
    cargo build --release --quiet --example floor
fi

# --- Scratch space and clean-up --------------------------------------------------------------

work="$(mktemp -d "${TMPDIR:-/tmp}/presence-load.XXXXXX")"
server_pid=""
floor_pid=""

stop() {
    local pid="$1"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    if [[ -n "$pid" ]]; then
        wait "$pid" 2>/dev/null || true
    fi
}

cleanup() {
    stop "$server_pid"
    stop "$floor_pid"
    if ((keep)); then
        say "kept $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Whether an HTTP GET on the operation's address (no authentication, no body) is answered.
port_answers() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf 'GET /api/v1/Agents/User/GetUserPresenceStatus HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
        IFS= read -r -t 2 line <&3 || exit 1
        [[ "$line" == HTTP/1.1\ * ]]
    ) 2>/dev/null
}

for p in "$port" "$floor_port"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        say "something already listens on 127.0.0.1:$p: pick another --port"
        exit 1
    fi
done

# --- Databases -------------------------------------------------------------------------------

# Makes a SQLite database with associates 1..$2: "bench" (1) with a real password, the others
# ("u2", "u3", ...) present, without a password. Sets fill_ms.
make_database() {
    local file="$1" count="$2"
    local url="sqlite://$file" started rows
    "$presence" --database "$url" migrate >/dev/null
    printf '%s\n' "$password" |
        "$presence" --database "$url" user add "$login" --associate-id 1 --admin --password-stdin >/dev/null
    started=$(date +%s%N)
    sql "$file" "
        WITH RECURSIVE n(id) AS (SELECT 2 UNION ALL SELECT id + 1 FROM n WHERE id < $count)
        INSERT INTO service_user (associate_id, login, password_hash, is_admin, status, message, updated_at)
        SELECT id, 'u' || id, NULL, 0, 1, NULL, 0 FROM n;
        PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
    fill_ms=$((($(date +%s%N) - started) / 1000000))
    rows=$(sql "$file" "SELECT count(*) FROM service_user;")
    if [[ "$rows" != "$count" ]]; then
        say "$file holds $rows associates, not $count"
        exit 1
    fi
    say "  $rows rows in ${fill_ms} ms; $(du -h "$file" | cut -f1) on disk"
}

say "filling a fresh database with $associates associates"
database="$work/presence.db"
make_database "$database" "$associates"
main_fill_ms=$fill_ms
reference=0
if ((associates > reference_associates)); then
    reference=1
    say "filling a reference database with $reference_associates associates"
    make_database "$work/reference.db" "$reference_associates"
fi

# --- Servers ---------------------------------------------------------------------------------

# Starts presence on a database URL, pinned; sets server_pid and startup_ms (launch to the
# first HTTP answer, so it includes opening the database and every start-up step).
start_presence() {
    local url="$1" log="$2" started
    started=$(date +%s%N)
    taskset -c "$server_cpu" "$presence" --database "$url" serve --listen "127.0.0.1:$port" \
        >"$log" 2>&1 &
    server_pid=$!
    until port_answers "$port"; do
        if ! kill -0 "$server_pid" 2>/dev/null; then
            server_pid=""
            return 1
        fi
        if (($(date +%s%N) - started > 30000000000)); then
            say "presence did not answer within 30 s; see $log"
            exit 1
        fi
        sleep 0.002
    done
    startup_ms=$(awk -v ns=$(($(date +%s%N) - started)) 'BEGIN { printf "%.1f", ns / 1e6 }')
}

start_floor() {
    taskset -c "$server_cpu" "$floor" "127.0.0.1:$floor_port" >"$work/floor.log" 2>&1 &
    floor_pid=$!
    until port_answers "$floor_port"; do
        kill -0 "$floor_pid" 2>/dev/null || { say "the floor did not start; see $work/floor.log"; exit 1; }
        sleep 0.002
    done
}

# Checks that presence answers a signed-in Get with the contract's bytes, and fills the
# credential cache (the first check runs Argon2) before anything is timed.
check_presence() {
    local answer
    answer=$(
        exec 3<>"/dev/tcp/127.0.0.1/$port"
        printf 'POST /api/v1/Agents/User/GetUserPresenceStatus HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: %s\r\nContent-Type: application/json\r\nContent-Length: 17\r\nConnection: close\r\n\r\n{"AssociateId":2}' "$authorization" >&3
        cat <&3
    )
    # The Set runs change statuses, so any carrier will do; before them it is StatusNormal.
    if [[ "$answer" != "HTTP/1.1 200 OK"* || "$answer" != *$'\r\n\r\n{"Status":"Status'* ]]; then
        say "presence did not answer a signed-in Get as expected:"
        say "$answer"
        exit 1
    fi
}

ticks_per_second=$(getconf CLK_TCK)

# Every core's busy time so far, in clock ticks (steal included: the hypervisor's other guests).
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }

# Waits (up to --quiet-wait seconds) until the machine, idle servers included, used less than
# 15% of a core over a second: on a shared machine, a neighbour's build would otherwise take
# the cores from the run. Whatever still competes shows in the "others" column.
wait_for_quiet() {
    local waited=0 before after
    while ((waited < quiet_wait)); do
        before=$(machine_ticks)
        sleep 1
        after=$(machine_ticks)
        if ((100 * (after - before) < 15 * ticks_per_second)); then
            return
        fi
        if ((waited == 0)); then
            say "  waiting for the machine to go quiet (up to $quiet_wait s)"
        fi
        waited=$((waited + 1))
    done
}

# Runs wrk once against a server; prints
#   req/s p50_µs p99_µs server_core_% server_system_% wrk_core_% others_% non-2xx socket_errors
# where the core figures are CPU time over wall time (100 = one core busy throughout), and
# "others" is what the rest of the machine used meanwhile: a noisy neighbour shows there.
measure() {
    local target_port="$1" target_pid="$2" mode="$3" ids="$4" seconds="$5" out="$6"
    local before after machine_before machine_after wrk_cpu result
    wait_for_quiet
    machine_before=$(machine_ticks)
    before=$(awk '{ print $14, $15 }' "/proc/$target_pid/stat")
    wrk_cpu=$(
        TIMEFORMAT='%U %S'
        { time taskset -c "$client_cpu" wrk -t1 -c"$connections" -d"${seconds}s" --latency \
            -H "Authorization: $authorization" -s "$script" \
            "http://127.0.0.1:$target_port/api/v1/Agents/User/GetUserPresenceStatus" \
            -- "$mode" "$ids" >"$out" 2>&1; } 2>&1
    )
    after=$(awk '{ print $14, $15 }' "/proc/$target_pid/stat")
    machine_after=$(machine_ticks)
    result=$(grep '^RESULT ' "$out") || { say "wrk printed no result; see $out"; exit 1; }
    awk -v r="$result" -v before="$before" -v after="$after" -v hz="$ticks_per_second" -v wrk="$wrk_cpu" \
        -v machine=$((machine_after - machine_before)) '
        BEGIN {
            n = split(r, kv, " ")
            for (i = 2; i <= n; i++) { split(kv[i], p, "="); v[p[1]] = p[2] }
            seconds = v["duration_us"] / 1e6
            split(before, b, " "); split(after, a, " "); split(wrk, w, " ")
            user = (a[1] - b[1]) / hz; kernel = (a[2] - b[2]) / hz
            others = machine / hz - user - kernel - w[1] - w[2]
            printf "%s %s %s %.0f %.0f %.0f %.0f %s %s\n", v["rps"], v["p50_us"], v["p99_us"],
                100 * (user + kernel) / seconds, 100 * kernel / seconds,
                100 * (w[1] + w[2]) / seconds, 100 * (others > 0 ? others : 0) / seconds,
                v["non2xx"], v["socket_errors"]
        }'
}

# Measures and records one run as results[workload,target,round], and checks its answers.
run() {
    local workload="$1" target="$2" round="$3" target_port="$4" target_pid="$5" mode="$6" ids="$7"
    local line rps p50 p99 core sys wrk others non2xx errors
    line=$(measure "$target_port" "$target_pid" "$mode" "$ids" "$duration" "$work/$workload-$target-$round.txt")
    results[$workload,$target,$round]="$line"
    read -r rps p50 p99 core sys wrk others non2xx errors <<<"$line"
    say "  ${names[$workload]}, $target: $rps req/s, p50 $p50 µs, p99 $p99 µs; server core $core% ($sys% system), wrk core $wrk%, others $others%"
    if [[ "$non2xx" != 0 || "$errors" != 0 ]]; then
        say "  ${names[$workload]}, $target: $non2xx answers were not 2xx and $errors socket errors; see $work"
        keep=1
        exit 1
    fi
}

# Runs workload $1 of round $2 (wrk's mode $3) on both servers, back to back: the floor first
# in odd rounds, presence first in even ones, so that a machine getting faster or slower during
# a round favours neither over the rounds.
run_both() {
    local workload="$1" round="$2" mode="$3" order=(floor presence) target
    if ((round % 2 == 0)); then
        order=(presence floor)
    fi
    for target in "${order[@]}"; do
        if [[ $target == floor ]]; then
            run "$workload" floor "$round" "$floor_port" "$floor_pid" "$mode" "$associates"
        else
            run "$workload" presence "$round" "$port" "$server_pid" "$mode" "$associates"
        fi
    done
}

median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
maximum() { printf '%s\n' "$@" | sort -g | tail -n1; }

# --- The machine -----------------------------------------------------------------------------

commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
    commit="$commit (with uncommitted changes)"
fi
echo "## Load test: $(date -u +%Y-%m-%dT%H:%MZ), commit $commit"
echo
echo "- machine: $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -n1)), $(free -g | awk '/^Mem:/ { print $2 }') GiB memory, kernel $(uname -r)"
echo "- $(wrk --version 2>&1 | head -n1 | cut -d' ' -f1-2); $(rustc --version)"
echo "- $associates associates; $rounds rounds of ${duration} s runs; wrk -t1 -c$connections (keep-alive) on core $client_cpu, servers on core $server_cpu"
echo

# --- Rounds ----------------------------------------------------------------------------------

declare -A names=(
    [get]="Get" [set]="Set" [mix]="95/5 Get/Set"
    [reference]="Get, $reference_associates associates" [pg]="Get, PostgreSQL"
)
workloads=(get set mix)
declare -A results
startups=()
peaks=()
warmup=$((duration < 2 ? 1 : 2))
# presence's warm-up on the main database sends each of the script's 65 536 requests at least
# once (with 1 000 000 associates, each first read comes from SQLite, at about 16 000 req/s),
# so that the runs measure a filled cache; the warm-up's own rate is reported as what filling
# it costs.
presence_warmup=$warmup
if ((associates > reference_associates && presence_warmup < 6)); then
    presence_warmup=6
fi
fills=()

for round in $(seq "$rounds"); do
    say "round $round of $rounds"
    start_floor
    start_presence "sqlite://$database" "$work/presence-$round.log" || {
        say "presence did not start; see $work/presence-$round.log"
        keep=1
        exit 1
    }
    startups+=("$startup_ms")
    check_presence
    measure "$floor_port" "$floor_pid" get "$associates" "$warmup" "$work/warmup-floor-$round.txt" >/dev/null
    fill=$(measure "$port" "$server_pid" get "$associates" "$presence_warmup" "$work/warmup-presence-$round.txt")
    fills+=("${fill%% *}")
    for workload in "${workloads[@]}"; do
        run_both "$workload" "$round" "$workload"
    done
    peaks+=("$(awk '/^VmHWM:/ { print $2 }' "/proc/$server_pid/status")")
    stop "$server_pid"
    server_pid=""
    if ((reference)); then
        start_presence "sqlite://$work/reference.db" "$work/reference-$round.log"
        check_presence
        measure "$port" "$server_pid" get "$reference_associates" "$warmup" "$work/warmup-reference-$round.txt" >/dev/null
        run reference presence "$round" "$port" "$server_pid" get "$reference_associates"
        results[reference,floor,$round]="${results[get,floor,$round]}"
        stop "$server_pid"
        server_pid=""
    fi
    stop "$floor_pid"
    floor_pid=""
done
if ((reference)); then
    workloads+=(reference)
fi

# --- PostgreSQL ------------------------------------------------------------------------------

pg_note=""
if [[ -n "$postgres_url" ]]; then
    say "PostgreSQL"
    if ! pg_error=$("$presence" --database "$postgres_url" migrate 2>&1); then
        # The error names the URL: hide a password in it.
        pg_error=$(printf '%s' "$pg_error" | tr '\n' ' ' | sed -E 's#//[^/@]*@#//***@#g')
        if [[ "$pg_error" == *"unsupported database URL"* ]]; then
            pg_note="PostgreSQL: not measured. presence refused the URL: this build has no PostgreSQL backend yet ($pg_error)."
        else
            pg_note="PostgreSQL: not measured. presence could not migrate the database ($pg_error)."
        fi
        say "$pg_note"
    elif ! command -v psql >/dev/null; then
        pg_note="PostgreSQL: not measured: psql is needed to fill the database."
        say "$pg_note"
    elif [[ "$(psql -qtA "$postgres_url" -c 'SELECT count(*) FROM service_user')" != 0 ]]; then
        pg_note="PostgreSQL: not measured: the database already holds Service users; give a fresh, empty database."
        say "$pg_note"
    else
        printf '%s\n' "$password" |
            "$presence" --database "$postgres_url" user add "$login" --associate-id 1 --admin --password-stdin >/dev/null
        psql -q -v ON_ERROR_STOP=1 "$postgres_url" -c "
            INSERT INTO service_user
                (associate_id, login, login_folded, password_hash, is_admin, status, message, updated_at)
            SELECT id, 'u' || id, 'u' || id, NULL, false, 1, NULL, 0 FROM generate_series(2, $associates) AS id;" \
            -c "VACUUM ANALYZE service_user;" >/dev/null
        for round in $(seq "$rounds"); do
            say "PostgreSQL round $round of $rounds"
            start_floor
            start_presence "$postgres_url" "$work/pg-$round.log" || {
                say "presence did not start on PostgreSQL; see $work/pg-$round.log"
                keep=1
                exit 1
            }
            check_presence
            run_both pg "$round" get
            stop "$server_pid"
            server_pid=""
            stop "$floor_pid"
            floor_pid=""
        done
        workloads+=(pg)
    fi
fi

# --- Report ----------------------------------------------------------------------------------

values() { # workload target column: that column's figures over the rounds
    local r
    for r in $(seq "$rounds"); do
        echo "${results[$1,$2,$r]}" | awk -v c="$3" '{ print $c }'
    done
}
# One column's ratio, round by round: workload $1 on target $2 over workload $3 on target $4.
round_ratios() {
    local column="$5" r
    for r in $(seq "$rounds"); do
        awk -v a="$(echo "${results[$1,$2,$r]}" | awk -v c="$column" '{ print $c }')" \
            -v b="$(echo "${results[$3,$4,$r]}" | awk -v c="$column" '{ print $c }')" \
            'BEGIN { printf "%.4f\n", a / b }'
    done
}
# presence / floor for a workload and column: the median of the rounds' ratios.
paired_ratio() { printf '%.2f' "$(median $(round_ratios "$1" presence "$1" floor "$2"))"; }

echo "Medians over $rounds rounds. Ratios are presence / floor, the median of the rounds' own"
echo "ratios (each round measures the two back to back): for req/s higher is better, for latency"
echo "lower is better; the req/s ratio's range over the rounds is in the next column. Core: CPU"
echo "time over wall time of the server's process (100% = its one core busy throughout), of which"
echo "system time in brackets; wrk's core likewise. Others: the CPU the rest of the machine took"
echo "during the run (largest of the rounds); more than a few per cent means a neighbour competed"
echo "for the cores and the figures are low."
echo
echo "| workload | floor req/s | presence req/s | ratio | ratio's range | floor p50 | presence p50 | ratio | floor p99 | presence p99 | ratio | floor core | presence core | wrk core (presence) | others, most |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for w in "${workloads[@]}"; do
    frps=$(median $(values "$w" floor 1)); prps=$(median $(values "$w" presence 1))
    f50=$(median $(values "$w" floor 2)); p50=$(median $(values "$w" presence 2))
    f99=$(median $(values "$w" floor 3)); p99=$(median $(values "$w" presence 3))
    fcore=$(median $(values "$w" floor 4)); fsys=$(median $(values "$w" floor 5))
    pcore=$(median $(values "$w" presence 4)); psys=$(median $(values "$w" presence 5))
    wcore=$(median $(values "$w" presence 6))
    others=$(maximum $(values "$w" floor 7) $(values "$w" presence 7))
    rps_ratios=$(round_ratios "$w" presence "$w" floor 1 | sort -g)
    printf '| %s | %.0f | %.0f | %s | %.2f–%.2f | %s µs | %s µs | %s | %s µs | %s µs | %s | %s%% (%s%%) | %s%% (%s%%) | %s%% | %s%% |\n' \
        "${names[$w]}" "$frps" "$prps" "$(paired_ratio "$w" 1)" \
        "$(head -n1 <<<"$rps_ratios")" "$(tail -n1 <<<"$rps_ratios")" \
        "$f50" "$p50" "$(paired_ratio "$w" 2)" "$f99" "$p99" "$(paired_ratio "$w" 3)" \
        "$fcore" "$fsys" "$pcore" "$psys" "$wcore" "$others"
done
echo
if ((reference)); then
    echo "- Get with $associates associates / Get with $reference_associates: $(printf '%.2f' "$(median $(round_ratios get presence reference presence 1))") (median of the rounds' ratios of req/s)"
fi
echo "- presence startup (launch to first HTTP answer), median: $(median "${startups[@]}") ms (rounds: ${startups[*]} ms)"
echo "- presence Get during its ${presence_warmup} s warm-up (the cache filling), median: $(median "${fills[@]}") req/s (rounds: ${fills[*]})"
echo "- presence peak memory (VmHWM), largest: $(awk -v k="$(maximum "${peaks[@]}")" 'BEGIN { printf "%.1f", k / 1024 }') MiB (rounds: ${peaks[*]} KiB)"
echo "- database: $associates associates, filled in ${main_fill_ms} ms"
if [[ -n "$pg_note" ]]; then
    echo "- $pg_note"
fi
echo
echo "Each round (req/s, p50 µs, p99 µs, server core %, of which system %, wrk core %, others %):"
echo
for w in "${workloads[@]}"; do
    for t in floor presence; do
        if [[ $w == reference && $t == floor ]]; then
            continue
        fi
        printf -- '- %s, %s:' "${names[$w]}" "$t"
        for r in $(seq "$rounds"); do
            printf ' [%s]' "$(echo "${results[$w,$t,$r]}" | cut -d' ' -f1-7)"
        done
        echo
    done
done
