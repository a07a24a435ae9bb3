#!/usr/bin/env bash
# Many idle connections against presence: does the server stop at its connection limit, close
# connections that send nothing, stay alive, and go on answering a client already connected?
#
#   benches/load/idle_connections.sh                             # 10 000 connections for 30 s
#   benches/load/idle_connections.sh target/release/presence --count 2000 --hold 15
#   benches/load/idle_connections.sh /tmp/before/presence         # a build without the limits
#
# Builds nothing: the first argument is the presence binary to test (default
# ${CARGO_TARGET_DIR:-target}/release/presence). Makes a fresh SQLite database in a temporary
# folder, starts `presence serve --demo --max-connections 5000` pinned to one core (with the
# open-file limit raised to the hard limit; the server raises its own too, and lowers its
# connection limit to what that leaves room for), and runs idle_connections.py pinned to the
# other: a baseline (the normal client alone), then --count connections that send nothing,
# held --hold seconds, beside the normal client. Prints the script's figures (connections the
# kernel accepted, the server closed and when, the listen backlog, the normal client's
# latency), whether the server is still alive, its peak memory (VmHWM) and most open files, and
# its log lines about the connection limit. A build that does not know --max-connections or
# --header-read-timeout-ms is run without them, and says so. Traffic goes to 127.0.0.1 only;
# every run is bounded in time.

set -euo pipefail

usage() {
    cat <<'EOF'
Usage: benches/load/idle_connections.sh [PRESENCE_BINARY] [options]

  --count N                   idle connections (default 10000)
  --hold S                    seconds to hold them (default 30)
  --normal-rate R             the normal client's Gets per second (default 200)
  --baseline S                seconds of the normal client alone first (default 10)
  --max-connections N         passed to the server (default 5000; 0: not passed, the
                              build's default)
  --header-read-timeout-ms MS passed to the server (only if given)
                              (a build that does not know a flag is run without it, and
                              says so)
  --port N                    the server's port on 127.0.0.1 (default 18380)
  --server-cpu N              the core the server is pinned to (default 0)
  --client-cpu N              the core the clients are pinned to (default 1)
  --keep                      keep the temporary folder (database, server log)
  -h, --help                  this text
EOF
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
presence="${CARGO_TARGET_DIR:-$root/target}/release/presence"
if [[ $# -gt 0 && "$1" != -* ]]; then
    presence="$1"
    shift
fi
count=10000
hold=30
normal_rate=200
baseline=10
max_connections=5000
header_read_timeout_ms=""
port=18380
server_cpu=0
client_cpu=1
keep=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --count) count="$2"; shift 2 ;;
        --hold) hold="$2"; shift 2 ;;
        --max-connections) max_connections="$2"; shift 2 ;;
        --normal-rate) normal_rate="$2"; shift 2 ;;
        --baseline) baseline="$2"; shift 2 ;;
        --header-read-timeout-ms) header_read_timeout_ms="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        --server-cpu) server_cpu="$2"; shift 2 ;;
        --client-cpu) client_cpu="$2"; shift 2 ;;
        --keep) keep=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done
for number in "$count" "$max_connections" "$port" "$server_cpu" "$client_cpu" ${header_read_timeout_ms:+"$header_read_timeout_ms"}; do
    [[ "$number" =~ ^[0-9]+$ ]] || { echo "not a whole number: $number" >&2; exit 2; }
done
for number in "$hold" "$normal_rate" "$baseline"; do
    [[ "$number" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "not a number: $number" >&2; exit 2; }
done

say() { printf '%s\n' "$*" >&2; }

[[ -x "$presence" ]] || { say "not an executable: $presence (build it, or name one)"; exit 2; }
presence="$(realpath "$presence")"
command -v taskset >/dev/null || { say "taskset is missing (util-linux)"; exit 1; }
command -v python3 >/dev/null || { say "python3 is needed"; exit 1; }
online=$(nproc)
if ((server_cpu >= online || client_cpu >= online || server_cpu == client_cpu)); then
    say "need two distinct cores (this machine has $online): see --server-cpu and --client-cpu"
    exit 1
fi
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    say "something already listens on 127.0.0.1:$port: pick another --port"
    exit 1
fi

# Server flags only for a build that knows them: an older one refuses an unknown flag.
server_flags=()
knows() { "$presence" serve --help 2>/dev/null | grep -q -- "--$1"; }
if ((max_connections > 0)); then
    if knows max-connections; then
        server_flags+=(--max-connections "$max_connections")
    else
        say "this build has no --max-connections: running it with its own behaviour"
        max_connections=0
    fi
fi
if [[ -n "$header_read_timeout_ms" ]]; then
    if knows header-read-timeout-ms; then
        server_flags+=(--header-read-timeout-ms "$header_read_timeout_ms")
    else
        say "this build has no --header-read-timeout-ms: running it with its own behaviour"
        header_read_timeout_ms=""
    fi
fi

# --- Scratch space and clean-up --------------------------------------------------------------

work="$(mktemp -d "${TMPDIR:-/tmp}/presence-idle.XXXXXX")"
server_pid=""
sampler_pid=""
client_pid=""

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
    stop "$client_pid"
    stop "$sampler_pid"
    stop "$server_pid"
    if ((keep)); then
        say "kept $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- The server ------------------------------------------------------------------------------

database="sqlite://$work/p.db"
"$presence" --database "$database" migrate >/dev/null
# The open-file limit is raised in a subshell that then becomes the server (exec), so that
# $! is the server's own pid, for /proc.
(
    ulimit -n "$(ulimit -Hn)"
    exec taskset -c "$server_cpu" "$presence" --database "$database" serve --demo \
        --listen "127.0.0.1:$port" "${server_flags[@]}"
) >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 300); do
    grep -q "listening on" "$work/server.log" && break
    kill -0 "$server_pid" 2>/dev/null || { say "the server stopped: $(cat "$work/server.log")"; exit 1; }
    sleep 0.1
done
grep -q "listening on" "$work/server.log" || { say "the server did not start within 30 s"; exit 1; }

# The server's open files, sampled each second: its connections, as it sees them (the most at
# once is reported; the log does not tell).
(
    most=0
    while [[ -d /proc/$server_pid/fd ]]; do
        now=$(ls "/proc/$server_pid/fd" 2>/dev/null | wc -l)
        ((now > most)) && most=$now && echo "$most" >"$work/most-files"
        sleep 1
    done
) &
sampler_pid=$!

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
ticks=$(getconf CLK_TCK)

# --- The run ---------------------------------------------------------------------------------

echo "## Idle connections: $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "- binary: $presence ($(date -u -r "$presence" +%Y-%m-%dT%H:%MZ))"
limit_note="the build's default" timeout_note="the build's default"
((max_connections > 0)) && limit_note="$max_connections"
[[ -n "$header_read_timeout_ms" ]] && timeout_note="$header_read_timeout_ms ms"
echo "- server on core $server_cpu, clients on core $client_cpu; max connections: $limit_note;" \
    "header-read timeout: $timeout_note; the server's open-file limit: $(ulimit -Hn)"
echo
before=$(cpu_ticks "$server_pid")
# Bounded: the baseline, the hold, the release and the last check, with room.
limit=$(awk -v a="$baseline" -v b="$hold" 'BEGIN { printf "%d", a + b + 60 }')
status=0
timeout "$limit" taskset -c "$client_cpu" python3 "$root/benches/load/idle_connections.py" \
    --port "$port" --count "$count" --hold "$hold" --normal-rate "$normal_rate" \
    --baseline "$baseline" --server-pid "$server_pid" &
# In the background, waited for: a signal then reaches the trap at once, which stops it.
client_pid=$!
wait "$client_pid" || status=$?
client_pid=""
after=$(cpu_ticks "$server_pid")
echo
if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "the server is no longer running: its log is below"
else
    echo "server peak memory (VmHWM): $(awk '/^VmHWM:/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$server_pid/status")"
    echo "server CPU time during the runs: $(awk -v t=$((after - before)) -v hz="$ticks" 'BEGIN { printf "%.2f s", t / hz }')"
fi
echo "server open files, most at once (sampled each second): $(cat "$work/most-files" 2>/dev/null || echo unknown)"
# The server logs reaching the limit once, then counts the times it did again.
echo "server log, the connection limit and open files:"
grep -Ei 'connection limit|open files|accepting' "$work/server.log" | sed 's/^/  /' | tail -n 20 || echo "  none"
echo "server log, other warnings and errors:"
grep -Ei 'warn|error' "$work/server.log" | grep -Eiv 'connection limit|open files|accepting' |
    sed 's/^/  /' | tail -n 20 || echo "  none"
if ((status != 0)); then
    say "idle_connections.py failed (exit status $status)"
    exit "$status"
fi
