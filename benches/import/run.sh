#!/usr/bin/env bash
# Bulk import: how long `presence user import` takes for many users, on a fresh database.
#
#   benches/import/run.sh                          # 10 000 with passwords, 1 000 000 without
#   benches/import/run.sh --with-passwords 1000 --without-passwords 100000
#   benches/import/run.sh --postgres postgres://user:pass@127.0.0.1/postgres
#
# Builds in release mode (unless --no-build), writes the two CSV files with awk, then imports
# each into a fresh temporary SQLite database, and, with --postgres, into a fresh database
# created on that server (and dropped afterwards): the URL names a database to connect to for
# CREATE DATABASE (postgres://USER:PASSWORD@HOST:PORT/DATABASE, no options). Each import runs twice on the same database: the second run finds every
# user there and must change nothing, which is timed too. Prints seconds and users per second.

set -euo pipefail

usage() {
    cat <<'EOF'
Usage: benches/import/run.sh [options]

  --with-passwords N      users with a password, each hashed with Argon2id (default 10000)
  --without-passwords N   users without a password (default 1000000)
  --postgres URL          also import into a fresh database on this PostgreSQL server
  --no-build              use the release binary already built
EOF
}

with_passwords=10000
without_passwords=1000000
postgres=""
build=1
while [ $# -gt 0 ]; do
    case "$1" in
        --with-passwords) with_passwords="$2"; shift 2 ;;
        --without-passwords) without_passwords="$2"; shift 2 ;;
        --postgres) postgres="$2"; shift 2 ;;
        --no-build) build=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done

root="$(cd "$(dirname "$0")/../.." && pwd)"
binary="$root/target/release/presence"
if [ "$build" = 1 ]; then
    (cd "$root" && cargo build --release --bin presence)
fi

work="$(mktemp -d)"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

# N users from associate 1 on; a password (distinct per user) when $2 is "yes".
generate() {
    awk -v n="$1" -v passwords="$2" 'BEGIN {
        print "login,associate_id,admin,password"
        for (i = 1; i <= n; i++) {
            printf "user%07d,%d,%s,%s\n", i, i, (i % 1000 == 1 ? "yes" : "no"),
                (passwords == "yes" ? sprintf("pw-%d-%d", i, (i * 7919) % 100003) : "")
        }
    }'
}

generate "$with_passwords" yes > "$work/with-passwords.csv"
generate "$without_passwords" no > "$work/without-passwords.csv"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"

# Imports FILE into DATABASE (a URL) and prints one line: what, users, seconds, users/s.
timed_import() {
    local label="$1" file="$2" database="$3" users="$4"
    local start end seconds summary
    start=$(date +%s.%N)
    summary=$(PRESENCE_LOG=warn "$binary" --database "$database" user import "$file" 2>/dev/null)
    end=$(date +%s.%N)
    seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
    printf '%-44s %9d users %8.2f s %10.0f users/s   (%s)\n' "$label" "$users" "$seconds" \
        "$(awk -v n="$users" -v s="$seconds" 'BEGIN { print (s > 0 ? n / s : 0) }')" \
        "${summary%% (from*}"
}

run_backend() {
    local backend="$1" make_database="$2"
    for kind in with-passwords without-passwords; do
        local users
        if [ "$kind" = with-passwords ]; then users="$with_passwords"; else users="$without_passwords"; fi
        # Sets $database (not a subshell, so that the databases made are remembered).
        "$make_database" "$kind"
        # The schema is made first, so that the time is the import's alone.
        PRESENCE_LOG=warn "$binary" --database "$database" migrate > /dev/null
        timed_import "$backend, $kind, first run" "$work/$kind.csv" "$database" "$users"
        timed_import "$backend, $kind, second run (no change)" "$work/$kind.csv" "$database" "$users"
    done
}

sqlite_database() {
    database="sqlite://$work/$1.db"
}

run_backend sqlite sqlite_database

if [ -n "$postgres" ]; then
    command -v psql > /dev/null || { echo "--postgres needs psql" >&2; exit 1; }
    databases=()
    postgres_database() {
        local name="presence_import_bench_${1//-/_}_$$"
        psql -q "$postgres" -c "CREATE DATABASE $name" > /dev/null
        databases+=("$name")
        # The same server and credentials, another database.
        database="${postgres%/*}/$name"
    }
    drop_databases() {
        for name in "${databases[@]}"; do
            psql -q "$postgres" -c "DROP DATABASE IF EXISTS $name" > /dev/null || true
        done
        rm -rf "$work"
    }
    trap drop_databases EXIT
    run_backend postgres postgres_database
fi
