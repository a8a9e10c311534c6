# A throwaway PostgreSQL 15 server for scripts/demo.sh: started in a temp
# folder as the `postgres` OS user (initdb refuses root), listening on
# 127.0.0.1 only, stopped (by its PID) when the calling script exits.
# Sourced after setup.sh.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

pg_free_port() {
  python3 - <<'PY'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

# Usage: pg_start DIR  -> sets PG_PORT and PG_PID, exports DATABASE_URL
pg_start() {
  local dir=$1
  mkdir -p "$dir"
  chmod 0755 "$dir"
  local as=()
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$dir"
    as=(setpriv --reuid=postgres --regid=postgres --init-groups)
  fi
  "${as[@]}" "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; return 1; }
  PG_PORT=$(pg_free_port)
  "${as[@]}" "$PG_BIN/postgres" -D "$dir/data" -p "$PG_PORT" -k "$dir" \
    -c listen_addresses=127.0.0.1 -c fsync=off >"$dir/server.log" 2>&1 &
  PG_PID=$!
  for _ in $(seq 1 100); do
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break
    sleep 0.1
  done
  "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" || { tail -20 "$dir/server.log" >&2; return 1; }
  "$PG_BIN/psql" -q -X -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "CREATE DATABASE app" postgres
  export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/app?sslmode=disable"
}

pg_stop() {
  [ -n "${PG_PID:-}" ] || return 0
  kill -INT "$PG_PID" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$PG_PID" 2>/dev/null || break; sleep 0.1; done
  PG_PID=
}
