#!/usr/bin/env bash
# Load test of the change streams: N open `GET /presence/v1/changes/stream` connections on one
# node, and how long one Set takes to reach all of them.
#
#   benches/load/streams.sh                      # 10 000 streams, 20 Sets
#   benches/load/streams.sh --streams 2000 --sets 10
#   benches/load/streams.sh --server-cpus 0,1 --client-cpus 0,1   # both cores shared
#   benches/load/streams.sh --floor              # the same against examples/floor.rs
#   benches/load/streams.sh --no-build --binary OLD_BUILD   # another build of presence
#
# Builds in release mode, makes a fresh SQLite database with an administrator "bench" (a real
# Argon2id password), starts presence pinned to core 0 (--server-cpus) with room for the
# connections, and runs examples/streams.rs pinned to core 1 (--client-cpus): it opens the streams, then makes the Sets one every
# half second and measures, for every stream, the time from just before each Set was sent to
# the moment its event was read. Prints the latencies' percentiles over every stream and Set,
# and the server's memory: resident before the streams opened, and at its peak after, per
# stream.
#
# With --floor the server is examples/floor.rs instead: hyper and axum sending one fixed event
# to every stream per Set, with no authentication, history, feed or ring; what presence spends
# beyond it is its own.
#
# With PERF_OUT=FILE in the environment, `perf record -e cpu-clock -g` samples the server for 3 s
# from 6 s after the client starts (while the Sets fan out) into FILE.
#
# Traffic goes to 127.0.0.1 only, bounded by --streams and --sets.

set -euo pipefail

streams=10000
sets=20
port=18300
server_cpus=0
client_cpus=1
build=1
floor=0
presence_binary=target/release/presence
while [[ $# -gt 0 ]]; do
    case "$1" in
        --streams) streams="$2"; shift 2 ;;
        --sets) sets="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        --server-cpus) server_cpus="$2"; shift 2 ;;
        --client-cpus) client_cpus="$2"; shift 2 ;;
        --no-build) build=0; shift ;;
        --floor) floor=1; shift ;;
        --binary) presence_binary="$2"; shift 2 ;;
        -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

say() { printf '%s\n' "$*" >&2; }
cd "$(dirname "$0")/../.."
if ((build)); then
    say "building (release)"
    cargo build --release --quiet --bin presence --example streams --example floor
fi
presence=$presence_binary
client=target/release/examples/streams

# Each stream is a socket in the server and one in the client, each a process of its own.
ulimit -n $((streams + 1024))

work=$(mktemp -d)
server_pid=""
cleanup() {
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

url="sqlite://$work/presence.db"
password="bench-password-$RANDOM$RANDOM"
"$presence" --database "$url" migrate >/dev/null
printf '%s\n' "$password" |
    "$presence" --database "$url" user add bench --associate-id 1 --admin --password-stdin >/dev/null

if ((floor)); then
    taskset -c "$server_cpus" target/release/examples/floor "127.0.0.1:$port" >"$work/server.log" 2>&1 &
else
    PRESENCE_LOG=warn taskset -c "$server_cpus" "$presence" --database "$url" serve --listen "127.0.0.1:$port" \
        --max-connections $((streams + 1000)) --max-requests $((streams + 1000)) --max-streams "$streams" >"$work/server.log" 2>&1 &
fi
server_pid=$!
for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.1
done

kib() { awk -v key="$1:" '$1 == key { print $2 }' "/proc/$server_pid/status"; }
before=$(kib VmRSS)
say "presence: $before KiB resident before the streams; opening $streams streams"

if [[ -n "${PERF_OUT:-}" ]]; then
    (sleep 6; perf record -e cpu-clock -F 4000 -g -p "$server_pid" -o "$PERF_OUT" -- sleep 3 >/dev/null 2>&1) &
fi
taskset -c "$client_cpus" "$client" "127.0.0.1:$port" "bench:$password" "$streams" "$sets" 1 | tee "$work/client.out"

peak=$(kib VmHWM)
rss=$(kib VmRSS)
per_stream=$(awk -v a="$peak" -v b="$before" -v n="$streams" 'BEGIN { printf "%.1f", (a - b) / n }')
echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(uname -r)"
((floor)) && echo "server: examples/floor.rs"
echo "server memory: $before KiB before, $rss KiB with the streams open, $peak KiB at peak"
echo "per stream: $per_stream KiB (peak less before, over $streams streams)"
