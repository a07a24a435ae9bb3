#!/usr/bin/env bash
# What the change log costs on disk: a build of presence takes Sets for a few seconds, and the
# log's and the users' tables are measured page by page (SQLite's `dbstat`).
#
#   benches/load/log_size.sh BINARY            # 10 000 associates, 3 s of Sets
#   benches/load/log_size.sh BINARY --seconds 10
#
# Makes a fresh SQLite database with an administrator "bench" and 10 000 associates
# (fill_database.py), starts the binary pinned to core 0, and sends it Sets with wrk pinned
# to core 1 (benches/load/presence.lua, 16 connections). Prints each table's pages and bytes,
# the changes logged, and the bytes a change. Traffic goes to 127.0.0.1 only.

set -euo pipefail

[[ $# -ge 1 && "$1" != -* ]] || { sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
binary="$(realpath "$1")"
shift
seconds=3
while [[ $# -gt 0 ]]; do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done
for tool in wrk sqlite3 python3; do
    command -v "$tool" >/dev/null || { echo "$tool is missing" >&2; exit 1; }
done

script="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/presence.lua"
work="$(mktemp -d)"
pid=""
cleanup() {
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

password="bench-password-$RANDOM$RANDOM"
"$binary" --database "sqlite://$work/db" migrate >/dev/null
printf '%s\n' "$password" |
    "$binary" --database "sqlite://$work/db" user add bench --associate-id 1 --admin --password-stdin >/dev/null
python3 "$(dirname "${BASH_SOURCE[0]}")/fill_database.py" "$work/db" 10000 0
port=$((20000 + RANDOM % 20000))
taskset -c 0 "$binary" --database "sqlite://$work/db" serve --listen "127.0.0.1:$port" >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    grep -q "listening on" "$work/log" && break
    sleep 0.1
done
authorization="Basic $(printf 'bench:%s' "$password" | base64 -w0)"
taskset -c 1 wrk -t1 -c16 -d"${seconds}s" -H "Authorization: $authorization" -s "$script" \
    "http://127.0.0.1:$port/" -- set 10000 >/dev/null
kill "$pid"
wait "$pid" 2>/dev/null || true
pid=""
sqlite3 "$work/db" <<'SQL'
SELECT name || ': ' || count(*) || ' pages, ' || sum(pgsize) || ' bytes'
FROM dbstat WHERE name IN ('service_user', 'user_change') GROUP BY name;
SELECT 'changes logged: ' || count(*) FROM user_change;
SELECT 'bytes a change: '
       || ((SELECT sum(pgsize) FROM dbstat WHERE name = 'user_change') / count(*))
FROM user_change;
SQL
