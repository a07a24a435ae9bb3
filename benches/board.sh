#!/usr/bin/env bash
# The presence board in headless Chromium with 10 000 Service users: how long the board takes
# to render, and how long a Set takes to show on it.
#
#   benches/board.sh                              # 10 000 users, 10 renders, 20 Sets
#   benches/board.sh --users 2000 --runs 5 --sets 10
#   benches/board.sh --server-cpus 0,1 --browser-cpus 0,1   # both cores shared
#
# Builds presence and examples/board_bench.rs in release mode, makes a fresh SQLite database
# with an administrator "bench" (associate 1, a real Argon2id password) and the Service users
# 2 to USERS (imported without passwords by `presence user import`), starts presence pinned to
# core 0 (--server-cpus), and runs examples/board_bench.rs pinned to core 1 (--browser-cpus)
# with the chromedriver and Chromium it starts (they inherit the pinning). It sets every third
# user not present with a message, signs in through the page, then
#   (a) loads the board RUNS times and reads the time from navigation start to the whole
#       board's first render, as the page records it (presenceBoard.renderedMs);
#   (b) with the board open, makes SETS Sets of one user, one at a time, and times each from
#       just before it was sent to its row changing on the page (a MutationObserver in the
#       page) and to the next frame.
# Prints the medians and 95th percentiles, the machine and the command.
#
# Needs chromium and chromedriver (Debian: chromium, chromium-driver), or
# PRESENCE_TEST_CHROMIUM and PRESENCE_TEST_CHROMEDRIVER naming them. Traffic goes to
# 127.0.0.1 only, bounded by --users and --sets.

set -euo pipefail

command_line="$0 $*"
users=10000
runs=10
sets=20
port=18400
server_cpus=0
browser_cpus=1
build=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --users) users="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        --sets) sets="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        --server-cpus) server_cpus="$2"; shift 2 ;;
        --browser-cpus) browser_cpus="$2"; shift 2 ;;
        --no-build) build=0; shift ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

say() { printf '%s\n' "$*" >&2; }
cd "$(dirname "$0")/.."
if ((build)); then
    say "building (release)"
    cargo build --release --quiet --bin presence --example board_bench
fi
presence=target/release/presence
client=target/release/examples/board_bench

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
{
    echo "login,associate_id"
    seq 2 "$users" | awk '{ printf "user%05d,%d\n", $1, $1 }'
} >"$work/users.csv"
PRESENCE_LOG=warn "$presence" --database "$url" user import "$work/users.csv" >&2

PRESENCE_LOG=warn taskset -c "$server_cpus" "$presence" --database "$url" serve \
    --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.1
done

say "presence on 127.0.0.1:$port with $users users"
taskset -c "$browser_cpus" "$client" "127.0.0.1:$port" "bench:$password" "$users" "$runs" "$sets"
echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(uname -r)"
echo "server on cores $server_cpus, client and browser on cores $browser_cpus"
echo "command: $command_line"
