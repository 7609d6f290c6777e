#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on 127.0.0.1 for the service tests.
#
#   scripts/ci_postgres.sh start [DIR]   install PostgreSQL (apt) when missing, create a cluster in
#                                        DIR (default: a new temp folder), start it on a free
#                                        loopback port, create a user and a database, and print
#                                        the SQLAlchemy URL (the only line on stdout)
#   scripts/ci_postgres.sh stop DIR      stop that cluster and delete DIR
#
# Typical use:  FUSIONREC_TEST_PG_URL=$(scripts/ci_postgres.sh start /tmp/fr-pg)
# Run as root, the cluster belongs to the `postgres` user (initdb refuses root).
set -euo pipefail

log() { echo "ci_postgres: $*" >&2; }

pg_bindir() {
  local d
  if command -v pg_config >/dev/null 2>&1; then
    d=$(pg_config --bindir)
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  fi
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$d" ] && [ -x "$d/initdb" ] && { echo "$d"; return; }
  return 1
}

as_owner() {  # run a command as the cluster's owner
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  local dir=${1:-}
  local bin
  if ! bin=$(pg_bindir); then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      log "installing postgresql with apt-get"
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) >&2
    fi
    bin=$(pg_bindir) || { log "PostgreSQL server binaries not found (install the postgresql package)"; exit 1; }
  fi
  [ -n "$dir" ] || dir=$(mktemp -d /tmp/fusionrec-pg.XXXXXX)
  if [ -e "$dir/data" ]; then log "$dir/data already exists; stop it first"; exit 1; fi
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
  local port password url
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
  as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    -E UTF8 --no-instructions >&2
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=on" start >&2
  as_owner "$bin/psql" -h "$dir" -p "$port" -U postgres -v ON_ERROR_STOP=1 -q >&2 <<SQL
CREATE ROLE fusionrec LOGIN PASSWORD '$password';
CREATE DATABASE fusionrec_test OWNER fusionrec;
SQL
  url="postgresql+psycopg://fusionrec:$password@127.0.0.1:$port/fusionrec_test"
  log "cluster in $dir on 127.0.0.1:$port (stop: $0 stop $dir)"
  echo "$url"
}

stop() {
  local dir=${1:?usage: $0 stop DIR}
  local bin
  bin=$(pg_bindir) || { log "PostgreSQL binaries not found"; exit 1; }
  if [ -d "$dir/data" ]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: $0 start [DIR] | stop DIR" >&2; exit 2 ;;
esac
