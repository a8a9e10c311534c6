# shellcheck shell=bash
# Private, throwaway PostgreSQL server for bench/apply.sh. Sourced, not run.
#
#   pg_start            initdb + start; sets PG_PORT PG_DIR PG_PID PG_BIN PG_LOG
#                       (PG_EXTRA_SETTINGS: more "-c name=value" words for the server)
#   pg_stop             SIGINT ("fast shutdown") to the postmaster we started, wait, remove PG_DIR
#   pg_url DB           postgres://postgres@127.0.0.1:PORT/DB?sslmode=disable
#   pg_psql DB ARGS...  psql -X -q -v ON_ERROR_STOP=1 against DB
#   pg_fresh_db NAME    drop (if any) + create an empty database from template0
#   pg_drop_db NAME
#   pg_schema_dump DB OUT [EXTRA pg_dump ARGS...]
#                       pg_dump --schema-only --no-owner --exclude-schema=squizzle,
#                       with the \restrict / \unrestrict lines dropped
#
# The server listens on 127.0.0.1 only (plus a Unix socket in PG_DIR), trust
# auth, fsync=off: it measures the tools, not the disk. initdb refuses to run
# as root, so as root the data dir is chowned to `postgres` and initdb/postgres
# run through setpriv.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_PID=""
PG_DIR=""
PG_PORT=""
PG_LOG=""

# Prefix that runs a command as the data dir's owner (setpriv execs it: same pid).
_PG_AS_OWNER=()
if [ "$(id -u)" = 0 ]; then _PG_AS_OWNER=(setpriv --reuid=postgres --regid=postgres --init-groups --); fi
_pg_as_owner() { "${_PG_AS_OWNER[@]}" "$@"; }

_pg_free_port() {
    python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

pg_start() {
    local base avail_kib
    for b in initdb postgres pg_ctl psql pg_dump; do
        [ -x "$PG_BIN/$b" ] || { echo "error: $PG_BIN/$b not found (PostgreSQL 15 server binaries needed)" >&2; return 1; }
    done
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        echo "error: running as root but there is no 'postgres' user to run initdb/postgres as" >&2
        return 1
    fi
    # /dev/shm when it has room (>= 1 GiB free): the data dir then lives in RAM.
    base=/tmp
    if [ -d /dev/shm ] && [ -w /dev/shm ]; then
        avail_kib=$(df -Pk /dev/shm | awk 'NR == 2 { print $4 }')
        [ "${avail_kib:-0}" -ge 1048576 ] && base=/dev/shm
    fi
    PG_DIR=$(mktemp -d "$base/squizzle-bench-pg.XXXXXX")
    mkdir -p "$PG_DIR/data" "$PG_DIR/sock"
    PG_LOG=$PG_DIR/server.log
    [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$PG_DIR"
    if ! _pg_as_owner "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
        >"$PG_DIR/initdb.log" 2>&1; then
        echo "error: initdb failed:" >&2; tail -n 20 "$PG_DIR/initdb.log" >&2; return 1
    fi
    local tries
    for tries in 1 2 3 4 5; do
        PG_PORT=$(_pg_free_port)
        # Started directly (not through a function, which would fork a subshell) so that
        # $! is the postmaster itself: pg_stop signals exactly this pid.
        "${_PG_AS_OWNER[@]}" "$PG_BIN/postgres" -D "$PG_DIR/data" -p "$PG_PORT" -k "$PG_DIR/sock" \
            -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50 \
            ${PG_EXTRA_SETTINGS:-} >>"$PG_LOG" 2>&1 &
        PG_PID=$!
        local i
        for i in $(seq 1 100); do
            if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres 2>/dev/null; then
                return 0
            fi
            kill -0 "$PG_PID" 2>/dev/null || break
            sleep 0.1
        done
        # Not ready: port raced away or the server died; stop what we started and retry.
        kill -INT "$PG_PID" 2>/dev/null || true
        wait "$PG_PID" 2>/dev/null || true
        PG_PID=""
        echo "warning: postgres did not come up on port $PG_PORT (try $tries); log tail:" >&2
        tail -n 5 "$PG_LOG" >&2
    done
    echo "error: could not start postgres; see $PG_LOG" >&2
    return 1
}

pg_stop() {
    if [ -n "$PG_PID" ] && kill -0 "$PG_PID" 2>/dev/null; then
        kill -INT "$PG_PID" 2>/dev/null || true
        local i
        for i in $(seq 1 100); do
            kill -0 "$PG_PID" 2>/dev/null || break
            sleep 0.1
        done
        wait "$PG_PID" 2>/dev/null || true
    fi
    PG_PID=""
    if [ -n "$PG_DIR" ] && [ -d "$PG_DIR" ]; then
        rm -rf "$PG_DIR"
    fi
    PG_DIR=""
}

pg_url() { echo "postgres://postgres@127.0.0.1:$PG_PORT/$1?sslmode=disable"; }

pg_psql() {
    local db=$1; shift
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$db" "$@"
}

pg_fresh_db() {
    PGOPTIONS='-c client_min_messages=warning' pg_psql postgres -c "DROP DATABASE IF EXISTS \"$1\"" -c "CREATE DATABASE \"$1\" TEMPLATE template0" >/dev/null
}

pg_drop_db() {
    PGOPTIONS='-c client_min_messages=warning' pg_psql postgres -c "DROP DATABASE IF EXISTS \"$1\"" >/dev/null
}

pg_schema_dump() {
    local db=$1 out=$2; shift 2
    "$PG_BIN/pg_dump" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$db" \
        --schema-only --no-owner --exclude-schema=squizzle "$@" |
        grep -v -E '^\\(un)?restrict ' >"$out"
}
