#!/usr/bin/env bash
# Make a PostgreSQL server available to the test suite and print nothing else but
# one status line. Idempotent and fast when the server is already up.
#
#   - installs PostgreSQL (`apt-get install -y postgresql`) when no server binaries exist;
#   - keeps a project-local cluster in .policygate/pg/data (initdb on first use),
#     run as the `postgres` user when we are root (postgres refuses to run as root);
#   - listens on 127.0.0.1 only, on a free port chosen once and kept in .policygate/pg/port;
#   - creates the role `policygate` and the database `policygate_test`;
#   - writes the SQLAlchemy URL to .policygate/pg/test-url, which tests/conftest.py reads
#     (POLICYGATE_TEST_PG_URL, when set, wins over the file: then nothing is started here).
#
# Any failure exits non-zero: a missing PostgreSQL fails the tests, it never skips them.
set -euo pipefail

if [ -n "${POLICYGATE_TEST_PG_URL:-}" ]; then
  echo "ensure-postgres: using POLICYGATE_TEST_PG_URL"
  exit 0
fi

root="$(cd "$(dirname "$0")/.." && pwd)"
state="$root/.policygate/pg"
mkdir -p "$state"
started=$(date +%s%N)
say() { echo "ensure-postgres: $*"; }
die() { echo "ensure-postgres: ERROR: $*" >&2; exit 1; }

# One caller at a time (two test runs starting together must not both initdb); the
# server started below must not inherit this descriptor, or it would hold the lock.
exec 9>"$state/.lock"
flock -w 300 9 || die "another ensure-postgres held $state/.lock for 5 minutes"

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | while read -r d; do
  [ -x "$d/postgres" ] && [ -x "$d/initdb" ] && echo "$d"; done | tail -n 1; }

bin="$(bindir)"
if [ -z "$bin" ]; then
  [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed and we are not root to install it; install the
  server (Debian: apt-get install postgresql) or set POLICYGATE_TEST_PG_URL to a test database URL."
  say "installing PostgreSQL with apt-get (a psql client alone is not a server) ..."
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q postgresql >"$state/apt.log" 2>&1; then
    apt-get update -q >>"$state/apt.log" 2>&1 || true
    apt-get install -y -q postgresql >>"$state/apt.log" 2>&1 \
      || { tail -n 20 "$state/apt.log" >&2; die "apt-get install -y postgresql failed (log: $state/apt.log)"; }
  fi
  bin="$(bindir)"
  [ -n "$bin" ] || die "apt-get installed postgresql but no server binaries are in /usr/lib/postgresql/*/bin"
fi

# Run server commands as `postgres` when root; as ourselves otherwise.
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  as_pg() { runuser -u postgres -- "$@"; }
  superuser=postgres
else
  as_pg() { "$@"; }
  superuser="$(id -un)"
fi

# The data directory lives in the project; if the `postgres` user cannot reach it
# (a checkout under a private home directory), use one it owns instead.
data="$state/data"
if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$state" 2>/dev/null; then
  data="/var/lib/postgresql/policygate-$(printf '%s' "$root" | sha1sum | cut -c1-12)"
fi
mkdir -p "$data"
[ "$(id -u)" = 0 ] && chown postgres:postgres "$data"
chmod 700 "$data"

# Socket next to the data, unless that path is too long for a Unix socket.
sock="$data"
[ ${#sock} -le 80 ] || sock="/tmp"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ready() { "$bin/pg_isready" -q -h 127.0.0.1 -p "$1" -t 2; }

running_pid() {
  # The postmaster of *this* data directory, if alive (a stale pid file after a
  # machine restart may name a PID that now belongs to someone else).
  local pid
  [ -f "$data/postmaster.pid" ] || return 1
  pid="$(head -n 1 "$data/postmaster.pid")"
  [ -n "$pid" ] && [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$(readlink -f "$data")" ] && echo "$pid"
}

if [ ! -s "$data/PG_VERSION" ]; then
  say "initdb $data ($("$bin/postgres" --version))"
  as_pg "$bin/initdb" -D "$data" -U "$superuser" --auth-local=peer --auth-host=scram-sha-256 \
    -E UTF8 --no-locale >"$state/initdb.log" 2>&1 \
    || { cat "$state/initdb.log" >&2; die "initdb failed"; }
fi

port="$(cat "$state/port" 2>/dev/null || true)"
if pid="$(running_pid)" && [ -n "$port" ] && ready "$port" && [ -s "$state/test-url" ]; then
  say "PostgreSQL already running on 127.0.0.1:$port (pid $pid)"
  exit 0
fi

if [ -z "$(running_pid || true)" ]; then
  rm -f "$data/postmaster.pid"
  if [ -z "$port" ] || ! port_free "$port"; then
    port=""
    for p in $(seq 55432 55631); do
      if port_free "$p"; then port="$p"; break; fi
    done
    [ -n "$port" ] || die "no free TCP port in 55432-55631 on 127.0.0.1"
  fi
  as_pg "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start -o \
    "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$sock -c max_connections=300" \
    >/dev/null 9>&- || { tail -n 20 "$data/server.log" >&2; die "pg_ctl start failed (log: $data/server.log)"; }
  echo "$port" >"$state/port"
fi
ready "$port" || die "PostgreSQL in $data does not answer on 127.0.0.1:$port"

psql_admin() { as_pg "$bin/psql" -h "$sock" -p "$port" -U "$superuser" -d postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
password="policygate-test"  # a throw-away credential of a loopback-only test server
if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = 'policygate'")" != 1 ]; then
  psql_admin -c "CREATE ROLE policygate LOGIN CREATEDB PASSWORD '$password'"
fi
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = 'policygate_test'")" != 1 ]; then
  psql_admin -c "CREATE DATABASE policygate_test OWNER policygate"
fi
echo "postgresql+psycopg://policygate:$password@127.0.0.1:$port/policygate_test" >"$state/test-url"
say "PostgreSQL ready on 127.0.0.1:$port, database policygate_test ($(( ($(date +%s%N) - started) / 1000000 )) ms)"
