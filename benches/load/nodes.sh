#!/usr/bin/env bash
# Two presence nodes on one PostgreSQL database, Sets on both at once: what a commit costs when
# nodes share the database, for two builds side by side.
#
#   benches/load/nodes.sh --before /tmp/before/presence --after target/release/presence
#   benches/load/nodes.sh --before OLD --after NEW --rounds 5 --duration 20 --associates 10000
#   benches/load/nodes.sh                      # one build: ${CARGO_TARGET_DIR:-target}/release
#
# Builds nothing. Starts a throwaway PostgreSQL cluster (as scripts/test-postgres.sh does:
# owned by the `postgres` user under root, trust authentication, 127.0.0.1 only), but with
# fsync and synchronous_commit on, since a Set's commit is what is measured. Installs wrk if
# missing (apt-get, as root). Each round runs every build once (the --before build first in odd
# rounds, the --after build first in even ones), each on a freshly created database: migrated by
# that build, filled with N associates (one of them, login "bench", with a real Argon2id
# password, from `presence user add`; the others with psql), then two `presence serve` nodes on
# two ports, pinned to one core, each warmed up alone, then wrk (Set, presence.lua through
# nodes.lua) against both nodes at the same time, pinned to the other core. It prints each run's
# Sets/s per node and in total, p50 and p99, non-2xx answers and socket errors, then the medians
# over the rounds per build. The cluster is stopped and removed at the end, whatever happens.
# Traffic goes to 127.0.0.1 only; every run is bounded by --duration.

set -euo pipefail

usage() {
    cat <<'EOF'
Usage: benches/load/nodes.sh [--before BINARY] [--after BINARY] [options]

  --before BINARY    the build to compare with (default: none, --after alone)
  --after BINARY     the build to test (default ${CARGO_TARGET_DIR:-target}/release/presence)
  --rounds N         rounds; each runs every build once on a fresh database (default 3)
  --duration S       seconds of Sets on both nodes per run (default 10)
  --warmup S         seconds of Sets on each node alone before a run (default 2)
  --associates N     associates in each database (default 1000)
  --connections N    wrk connections per node, kept alive (default 16)
  --pool-size N      --db-pool-size of each node (default: the build's own)
  --port N           the nodes listen on N and N+1 (default 18480)
  --pg-port N        PostgreSQL's port (default: the first free one from 54339)
  --server-cpu N     the core the nodes are pinned to (default 0)
  --client-cpu N     the core wrk is pinned to (default 1); PostgreSQL is not pinned
  --keep             keep the temporary folder (node logs, raw wrk output)
  -h, --help         this text
EOF
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
before=""
after="${CARGO_TARGET_DIR:-$root/target}/release/presence"
rounds=3
duration=10
warmup=2
associates=1000
connections=16
pool_size=""
port=18480
pg_port=""
server_cpu=0
client_cpu=1
keep=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --before) before="$2"; shift 2 ;;
        --after) after="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --duration) duration="$2"; shift 2 ;;
        --warmup) warmup="$2"; shift 2 ;;
        --associates) associates="$2"; shift 2 ;;
        --connections) connections="$2"; shift 2 ;;
        --pool-size) pool_size="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        --pg-port) pg_port="$2"; shift 2 ;;
        --server-cpu) server_cpu="$2"; shift 2 ;;
        --client-cpu) client_cpu="$2"; shift 2 ;;
        --keep) keep=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done
for number in "$rounds" "$duration" "$warmup" "$associates" "$connections" "$port" "$server_cpu" "$client_cpu" \
    ${pool_size:+"$pool_size"} ${pg_port:+"$pg_port"}; do
    [[ "$number" =~ ^[0-9]+$ ]] || { echo "not a whole number: $number" >&2; exit 2; }
done
if ((associates < 2 || rounds < 1 || duration < 1 || warmup < 1 || connections < 1)); then
    echo "need at least 2 associates, 1 round, 1 second of run and of warm-up, 1 connection" >&2
    exit 2
fi

say() { printf '%s\n' "$*" >&2; }

labels=()
declare -A binaries
if [[ -n "$before" ]]; then
    labels+=(before)
    binaries[before]="$before"
fi
labels+=(after)
binaries[after]="$after"
for label in "${labels[@]}"; do
    [[ -x "${binaries[$label]}" ]] || { say "not an executable: ${binaries[$label]} (--$label)"; exit 2; }
    binaries[$label]="$(realpath "${binaries[$label]}")"
done

# --- Tools -----------------------------------------------------------------------------------

command -v taskset >/dev/null || { say "taskset is missing (util-linux)"; exit 1; }
command -v psql >/dev/null || { say "psql is missing (Debian: apt-get install -y postgresql-client)"; exit 1; }
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
online=$(nproc)
if ((server_cpu >= online || client_cpu >= online || server_cpu == client_cpu)); then
    say "need two distinct cores (this machine has $online): see --server-cpu and --client-cpu"
    exit 1
fi

# The folder with initdb, pg_ctl and postgres: on PATH, or where Debian and Ubuntu put them.
pg_bin() {
    local initdb dir
    if initdb="$(command -v initdb)" && [[ -x "$(dirname "$(readlink -f "$initdb")")/postgres" ]]; then
        dirname "$(readlink -f "$initdb")"
        return
    fi
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" && -x "$dir/postgres" ]]; then
            echo "$dir"
            return
        fi
    done
    return 1
}
bin="$(pg_bin)" || { say "the PostgreSQL server programs are missing (Debian: apt-get install -y postgresql)"; exit 1; }
# PostgreSQL refuses to run as root: under root the cluster belongs to the `postgres` user.
if [[ $EUID -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
    say "running as root needs a 'postgres' user to own the cluster (the postgresql package creates it)"
    exit 1
fi
as_owner() {
    if [[ $EUID -ne 0 ]]; then
        "$@"
    elif command -v runuser >/dev/null; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && su postgres -s /bin/sh -c "$(printf '%q ' "$@")")
    fi
}

port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$port" $((port + 1)); do
    port_is_free "$p" || { say "something already listens on 127.0.0.1:$p: pick another --port"; exit 1; }
done
if [[ -z "$pg_port" ]]; then
    for pg_port in $(seq 54339 54439); do
        port_is_free "$pg_port" && break
    done
fi
port_is_free "$pg_port" || { say "port $pg_port on 127.0.0.1 is taken: pick another --pg-port"; exit 1; }

# --- Scratch space and clean-up --------------------------------------------------------------

work="$(mktemp -d "${TMPDIR:-/tmp}/presence-nodes.XXXXXX")"
# The cluster has a folder of its own: under root it belongs to `postgres`, who cannot reach
# into $work. It is on the same file system as $work, a real disk unless TMPDIR says otherwise,
# so that fsync costs what it does in production.
cluster="$(mktemp -d "${TMPDIR:-/tmp}/presence-nodes-pg.XXXXXX")"
[[ $EUID -eq 0 ]] && chown postgres: "$cluster"
node_pids=()
wrk_pids=()

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

stop_nodes() {
    local pid
    for pid in "${node_pids[@]}"; do stop "$pid"; done
    node_pids=()
}

cleanup() {
    local pid
    for pid in "${wrk_pids[@]}"; do stop "$pid"; done
    stop_nodes
    if [[ -f "$cluster/data/postmaster.pid" ]]; then
        as_owner "$bin/pg_ctl" stop --silent -D "$cluster/data" -m fast -w -t 60 ||
            say "pg_ctl stop failed; removing the cluster anyway"
    fi
    rm -rf "$cluster"
    if ((keep)); then
        say "kept $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- PostgreSQL ------------------------------------------------------------------------------

say "starting PostgreSQL on 127.0.0.1:$pg_port"
# --no-sync only spares initdb's own files a flush; the server below flushes every commit.
as_owner "$bin/initdb" --pgdata="$cluster/data" --username=postgres --auth=trust \
    --encoding=UTF8 --no-locale --no-sync --no-instructions >"$work/initdb.log" 2>&1 ||
    { say "initdb failed: $(cat "$work/initdb.log")"; exit 1; }
pg_options=(
    -c listen_addresses=127.0.0.1
    -c port="$pg_port"
    # The socket stays inside the cluster: the system's socket folder may not be writable.
    -c unix_socket_directories="'$cluster'"
    # What is measured: a Set is answered once its commit is on disk, as in production.
    -c fsync=on
    -c synchronous_commit=on
    -c full_page_writes=on
    # Two nodes' pools and psql, with room for a larger --pool-size.
    -c max_connections=300
)
as_owner "$bin/pg_ctl" start --silent -D "$cluster/data" -l "$cluster/data/server.log" \
    -w -t 60 -o "${pg_options[*]}" >&2 ||
    { say "PostgreSQL did not start: $(tail -n 20 "$cluster/data/server.log" 2>/dev/null)"; exit 1; }
admin_url="postgres://postgres@127.0.0.1:$pg_port/postgres?sslmode=disable"
for _ in $(seq 100); do
    psql -X -qtA "$admin_url" -c 'SELECT 1' >/dev/null 2>&1 && break
    sleep 0.1
done
pg() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
pg_settings=$(psql -X -qtA "$admin_url" -c "SELECT current_setting('server_version') || ', fsync ' ||
    current_setting('fsync') || ', synchronous_commit ' || current_setting('synchronous_commit') ||
    ', wal_sync_method ' || current_setting('wal_sync_method')")

# --- Runs ------------------------------------------------------------------------------------

login="bench"
password="bench-password-$RANDOM$RANDOM"
authorization="Basic $(printf '%s:%s' "$login" "$password" | base64 -w0)"
script="$root/benches/load/nodes.lua"
# Half of presence.lua's cycle of 65 536 requests: see nodes.lua.
offsets=(0 32768)

# A fresh database for one run, migrated by the build that runs on it; sets url.
make_database() {
    local binary="$1" name="$2"
    pg "$admin_url" -c "CREATE DATABASE $name" >/dev/null
    url="postgres://postgres@127.0.0.1:$pg_port/$name?sslmode=disable"
    "$binary" --database "$url" migrate >/dev/null
    printf '%s\n' "$password" |
        "$binary" --database "$url" user add "$login" --associate-id 1 --admin --password-stdin >/dev/null
    pg "$url" -c "
        INSERT INTO service_user
            (associate_id, login, login_folded, password_hash, is_admin, status, message, updated_at)
        SELECT id, 'u' || id, 'u' || id, NULL, false, 1, NULL, 0 FROM generate_series(2, $associates) AS id;" \
        -c "VACUUM ANALYZE;" >/dev/null
    local rows
    rows=$(psql -X -qtA "$url" -c 'SELECT count(*) FROM service_user')
    [[ "$rows" == "$associates" ]] || { say "$name holds $rows associates, not $associates"; exit 1; }
}

# Starts the two nodes of one build on $url; logs to $work/$1-node-N.log.
start_nodes() {
    local binary="$1" prefix="$2" index log
    local flags=()
    [[ -n "$pool_size" ]] && flags+=(--db-pool-size "$pool_size")
    for index in 0 1; do
        log="$work/$prefix-node-$((index + 1)).log"
        taskset -c "$server_cpu" "$binary" --database "$url" serve \
            --listen "127.0.0.1:$((port + index))" "${flags[@]}" >"$log" 2>&1 &
        node_pids+=($!)
    done
    for index in 0 1; do
        log="$work/$prefix-node-$((index + 1)).log"
        for _ in $(seq 300); do
            grep -q "listening on" "$log" && break
            kill -0 "${node_pids[$index]}" 2>/dev/null || { say "node $((index + 1)) stopped: $(cat "$log")"; exit 1; }
            sleep 0.1
        done
        grep -q "listening on" "$log" || { say "node $((index + 1)) did not start within 30 s; see $log"; exit 1; }
    done
}

# wrk with the Set workload against node $1 (0 or 1) for $2 seconds, output to $3. A Set that
# waits longer than 10 s (not 2 s, wrk's default) is an error: a slow commit is measured.
drive() {
    taskset -c "$client_cpu" wrk -t1 -c"$connections" -d"$2s" --timeout 10s \
        -H "Authorization: $authorization" -s "$script" "http://127.0.0.1:$((port + $1))/" \
        -- set "$associates" "${offsets[$1]}" >"$3" 2>&1
}

# One figure of presence.lua's RESULT line.
field() { sed -n "s/^RESULT.* $2=\([0-9.]*\).*/\1/p" "$1"; }

declare -A results
for round in $(seq "$rounds"); do
    order=("${labels[@]}")
    if ((round % 2 == 0)); then
        order=()
        for ((i = ${#labels[@]} - 1; i >= 0; i--)); do order+=("${labels[$i]}"); done
    fi
    for label in "${order[@]}"; do
        binary="${binaries[$label]}"
        prefix="$round-$label"
        say "round $round of $rounds, $label: a fresh database with $associates associates"
        make_database "$binary" "bench_${round}_${label}"
        start_nodes "$binary" "$prefix"
        # Each node alone first: its pool connected, the password verified once, the users
        # read into its copy.
        for index in 0 1; do
            drive "$index" "$warmup" "$work/$prefix-warmup-$((index + 1)).txt"
        done
        say "round $round of $rounds, $label: Sets on both nodes for $duration s"
        wrk_pids=()
        for index in 0 1; do
            drive "$index" "$duration" "$work/$prefix-run-$((index + 1)).txt" &
            wrk_pids+=($!)
        done
        for pid in "${wrk_pids[@]}"; do wait "$pid" || true; done
        wrk_pids=()
        line=""
        total=0
        for index in 1 2; do
            out="$work/$prefix-run-$index.txt"
            grep -q '^RESULT' "$out" || { say "wrk gave no result for node $index: $(cat "$out")"; exit 1; }
            rps=$(field "$out" rps)
            p50=$(awk -v v="$(field "$out" p50_us)" 'BEGIN { printf "%.2f", v / 1000 }')
            p99=$(awk -v v="$(field "$out" p99_us)" 'BEGIN { printf "%.2f", v / 1000 }')
            results[$label,$round,rps$index]=$rps
            results[$label,$round,p50$index]=$p50
            results[$label,$round,p99$index]=$p99
            results[$label,$round,non2xx$index]=$(field "$out" non2xx)
            results[$label,$round,errors$index]=$(field "$out" socket_errors)
            total=$(awk -v a="$total" -v b="$rps" 'BEGIN { print a + b }')
            line+=$(printf 'node %d %.0f Sets/s (p50 %s ms, p99 %s ms), ' "$index" "$rps" "$p50" "$p99")
        done
        results[$label,$round,total]=$total
        # Anything the nodes logged above info: lost connections, 503s, failed commits.
        complaints=$(cat "$work/$prefix-node-1.log" "$work/$prefix-node-2.log" | grep -Eci 'warn|error' || true)
        results[$label,$round,complaints]=$complaints
        printf 'round %d, %-6s %stotal %.0f Sets/s; non-2xx %d, socket errors %d, node log warnings/errors %d\n' \
            "$round" "$label:" "$line" "$total" \
            $((${results[$label,$round,non2xx1]} + ${results[$label,$round,non2xx2]})) \
            $((${results[$label,$round,errors1]} + ${results[$label,$round,errors2]})) "$complaints"
        stop_nodes
        pg "$admin_url" -c "DROP DATABASE bench_${round}_${label}" >/dev/null
    done
done

# --- Report ----------------------------------------------------------------------------------

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# One figure of one build over the rounds; with two keys, an expression of both (awk).
over_rounds() {
    local label="$1" expression="$2" r
    for r in $(seq "$rounds"); do
        awk -v a="${results[$label,$r,$3]}" -v b="${results[$label,$r,${4:-$3}]}" "BEGIN { print $expression }"
    done
}

pool_note="the build's default"
[[ -n "$pool_size" ]] && pool_note="$pool_size"
echo
echo "## Two nodes on PostgreSQL, Sets on both at once: $(date -u +%Y-%m-%dT%H:%MZ)"
echo
for label in "${labels[@]}"; do
    echo "- $label: ${binaries[$label]} ($(date -u -r "${binaries[$label]}" +%Y-%m-%dT%H:%MZ))"
done
echo "- PostgreSQL $pg_settings; data on $(df -T "$cluster" | awk 'NR == 2 { print $2 }') ($cluster)"
echo "- $associates associates, a fresh database per run; $rounds rounds of ${duration} s after ${warmup} s of warm-up per node;" \
    "wrk -t1 -c$connections per node (keep-alive), both on core $client_cpu; the nodes on core $server_cpu;" \
    "PostgreSQL not pinned; db pool per node: $pool_note"
echo
echo "Medians over the rounds. p50 is the mean of the two nodes' p50; p99 the worse node's."
echo
echo "| build | total Sets/s | node 1 Sets/s | node 2 Sets/s | p50 ms | p99 ms | non-2xx | socket errors |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for label in "${labels[@]}"; do
    printf '| %s | %.0f | %.0f | %.0f | %.2f | %.2f | %s | %s |\n' "$label" \
        "$(median $(over_rounds "$label" a total))" \
        "$(median $(over_rounds "$label" a rps1))" "$(median $(over_rounds "$label" a rps2))" \
        "$(median $(over_rounds "$label" '(a + b) / 2' p501 p502))" \
        "$(median $(over_rounds "$label" '(a > b) ? a : b' p991 p992))" \
        "$(median $(over_rounds "$label" 'a + b' non2xx1 non2xx2))" \
        "$(median $(over_rounds "$label" 'a + b' errors1 errors2))"
done
if [[ -n "$before" ]]; then
    # The ratio of each round's pair, then their median: a machine that slows down between
    # rounds slows both builds of a round alike.
    ratios=()
    for r in $(seq "$rounds"); do
        ratios+=("$(awk -v a="${results[before,$r,total]}" -v b="${results[after,$r,total]}" 'BEGIN { printf "%.2f", b / a }')")
    done
    echo
    echo "after / before, total Sets/s: $(median "${ratios[@]}") (median of the rounds' ratios: ${ratios[*]})"
fi
