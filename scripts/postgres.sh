#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: `start` prints `export CLARA_TEST_POSTGRES_URL=…`
# (and `export CLARA_TEST_POSTGRES_STARTED=1` when this call started it, so the caller knows
# whether to stop it: several test runs may share one server).
set -euo pipefail
cmd=${1:-start}
PGBIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/postgres | sort -V | tail -n1)")
DATA=${CLARA_PGDATA:-/tmp/claractl-pgdata}
# Below the kernel's ephemeral range (32768+): a busy client (the test cluster's etcd) can hold a port up there.
PORT=${CLARA_PGPORT:-15432}
as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }
case "$cmd" in
  start)
    if [ ! -f "$DATA/PG_VERSION" ]; then
      mkdir -p "$DATA"; [ "$(id -u)" = 0 ] && chown postgres "$DATA"
      as_pg "$PGBIN/initdb -D $DATA -U postgres --auth=trust -E UTF8" >/dev/null
    fi
    if ! as_pg "$PGBIN/pg_ctl -D $DATA status" >/dev/null 2>&1; then
      as_pg "$PGBIN/pg_ctl -D $DATA -w -l $DATA/server.log -o '-p $PORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off' start" >/dev/null
      echo "export CLARA_TEST_POSTGRES_STARTED=1"
    fi
    echo "export CLARA_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"
    ;;
  stop) as_pg "$PGBIN/pg_ctl -D $DATA -m fast stop" ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
