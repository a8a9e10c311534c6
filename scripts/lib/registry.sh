# A throwaway OCI registry (CNCF distribution, Debian's docker-registry) for
# scripts/demo.sh: filesystem storage in a temp folder, 127.0.0.1 only,
# stopped by its PID when the calling script ends. Sourced after setup.sh and pg.sh.

# Usage: registry_start DIR  -> sets REGISTRY_PID, exports SQUIZZLE_REGISTRY
registry_start() {
  local dir=$1 port
  mkdir -p "$dir/storage"
  port=$(pg_free_port)
  cat >"$dir/config.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YML
  /usr/bin/docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
  REGISTRY_PID=$!
  for _ in $(seq 1 100); do
    python3 - "$port" <<'PY' && break
import sys, urllib.request
try:
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/v2/", timeout=1)
except Exception:
    sys.exit(1)
PY
    sleep 0.1
  done
  export SQUIZZLE_REGISTRY="127.0.0.1:$port/acme/migrations"
}

registry_stop() {
  [ -n "${REGISTRY_PID:-}" ] || return 0
  kill -TERM "$REGISTRY_PID" 2>/dev/null || true
  wait "$REGISTRY_PID" 2>/dev/null || true
  REGISTRY_PID=
}
