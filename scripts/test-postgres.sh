#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests' PostgreSQL variants: loopback only, no fsync,
# gone after `stop`.
#
#   export PRESENCE_TEST_POSTGRES_URL="$(scripts/test-postgres.sh start)"
#   cargo nextest run
#   scripts/test-postgres.sh stop
#
# `start` prints the URL of the cluster's `postgres` database (and nothing else on standard
# output); the tests create a fresh database beside it for each test. `check` says whether the
# server programs are installed. PostgreSQL refuses to run as root, so under root the cluster
# belongs to the `postgres` user (which the distribution's package creates); anyone else owns
# theirs. The cluster is the same either way: trust authentication for the `postgres` role,
# listening on 127.0.0.1 only, on PRESENCE_TEST_POSTGRES_PORT or the first free port from 54329.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
# What `stop` needs to find the cluster again. The cluster itself lives here too, unless it
# has to belong to another user, who may not be able to reach into this checkout.
state="$root/target/test-postgres"

say() { echo "test-postgres: $*" >&2; }
fail() {
  say "$*"
  exit 1
}

# The folder with initdb, pg_ctl and postgres: on PATH, or where Debian and Ubuntu put them.
server_bin() {
  local initdb
  if initdb="$(command -v initdb)" && [[ -x "$(dirname "$(readlink -f "$initdb")")/postgres" ]]; then
    dirname "$(readlink -f "$initdb")"
    return
  fi
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" && -x "$dir/postgres" ]]; then
      echo "$dir"
      return
    fi
  done
  return 1
}

# Runs a command as the cluster's owner.
as_owner() {
  if [[ $EUID -ne 0 ]]; then
    "$@"
  elif command -v runuser >/dev/null; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && su postgres -s /bin/sh -c "$(printf '%q ' "$@")")
  fi
}

port_is_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

stop() {
  [[ -f "$state/cluster" ]] || return 0
  local cluster bin
  cluster="$(cat "$state/cluster")"
  if [[ -f "$cluster/data/postmaster.pid" ]]; then
    bin="$(server_bin)" || fail "the PostgreSQL server programs are missing"
    as_owner "$bin/pg_ctl" stop --silent -D "$cluster/data" -m fast -w -t 60 ||
      say "pg_ctl stop failed; removing the cluster anyway"
  fi
  rm -rf "$cluster"
  rm -rf "$state"
  say "stopped and removed the cluster"
}

start() {
  local bin
  bin="$(server_bin)" ||
    fail "the PostgreSQL server programs are missing (Debian: apt-get install -y postgresql)"
  if [[ $EUID -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
    fail "running as root needs a 'postgres' user to own the cluster (the postgresql package creates it)"
  fi
  # A cluster left from an earlier run goes first.
  stop

  mkdir -p "$state"
  local cluster
  if [[ $EUID -eq 0 ]]; then
    cluster="$(mktemp -d "${TMPDIR:-/tmp}/presence-test-postgres.XXXXXX")"
    chown postgres: "$cluster"
  else
    cluster="$state"
  fi
  echo "$cluster" >"$state/cluster"

  local port="${PRESENCE_TEST_POSTGRES_PORT:-}"
  if [[ -z "$port" ]]; then
    for port in $(seq 54329 54429); do
      port_is_free "$port" && break
    done
  fi
  port_is_free "$port" || fail "port $port on 127.0.0.1 is taken"

  as_owner "$bin/initdb" --pgdata="$cluster/data" --username=postgres --auth=trust \
    --encoding=UTF8 --no-locale --no-sync --no-instructions >"$cluster/initdb.log" 2>&1 ||
    fail "initdb failed: $(cat "$cluster/initdb.log")"

  local options=(
    -c listen_addresses=127.0.0.1
    -c port="$port"
    # The socket stays inside the cluster: the system's socket folder may not be writable.
    -c unix_socket_directories="'$cluster'"
    # A test database need not survive a crash of the machine.
    -c fsync=off
    -c synchronous_commit=off
    -c full_page_writes=off
    # Every test process has its own connection pool, and nextest runs several at once.
    -c max_connections=400
  )
  as_owner "$bin/pg_ctl" start --silent -D "$cluster/data" -l "$cluster/data/server.log" \
    -w -t 60 -o "${options[*]}" >&2 ||
    fail "the server did not start: $(tail -n 20 "$cluster/data/server.log" 2>/dev/null)"

  local pg_isready="$bin/pg_isready"
  [[ -x "$pg_isready" ]] || pg_isready="$(command -v pg_isready || true)"
  if [[ -n "$pg_isready" ]]; then
    "$pg_isready" --quiet -h 127.0.0.1 -p "$port" -U postgres -t 30 ||
      fail "the server on port $port does not answer"
  fi
  say "PostgreSQL is listening on 127.0.0.1:$port (cluster in $cluster)"
  echo "postgres://postgres@127.0.0.1:$port/postgres"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  check) server_bin >/dev/null ;;
  *)
    echo "usage: $0 start|stop|check" >&2
    exit 2
    ;;
esac
