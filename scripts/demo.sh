#!/usr/bin/env bash
# squizzle's main job, end to end, on the bundled example (the real drizzle-kit
# history in fixtures/dokploy-drizzle): init -> build -> verify -> list with the
# local OCI layout store; push to a throwaway OCI registry; then, from an empty
# deploy checkout, apply (which pulls and verifies the release) -> status ->
# apply again (a no-op) against a throwaway PostgreSQL 15. Both servers are
# started by this script on 127.0.0.1 and stopped when it ends. Last, it shows
# a tampered release being refused.
# Usage: bash scripts/demo.sh   (work folder: $SQUIZZLE_DEMO_DIR, default /tmp/squizzle-demo)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$repo/scripts/lib/setup.sh"
. "$repo/scripts/lib/pg.sh"
. "$repo/scripts/lib/registry.sh"
ensure_rust
ensure_postgres
ensure_registry
apt_install python3

log "building squizzle (release)"
cargo build --release --locked --quiet --manifest-path "$repo/Cargo.toml"
squizzle="$repo/target/release/squizzle"

work=${SQUIZZLE_DEMO_DIR:-/tmp/squizzle-demo}
rm -rf "$work" && mkdir -p "$work"
cp -r "$repo/fixtures/dokploy-drizzle" "$work/drizzle"
cd "$work"

run() { printf '\n$ %s\n' "$*"; "$@"; }
# A fixed build time makes the release byte-for-byte reproducible.
export SOURCE_DATE_EPOCH=1755734400

run "$squizzle" init
run "$squizzle" build 1.0.0 --notes "dokploy schema, 186 migrations"
run "$squizzle" verify 1.0.0
run "$squizzle" list

printf '\n# A throwaway OCI registry and PostgreSQL 15 on 127.0.0.1 (stopped when this script ends):\n'
trap 'pg_stop; registry_stop' EXIT
servers="$work.servers"
rm -rf "$servers"
registry_start "$servers/registry"
pg_start "$servers/pg"
echo "SQUIZZLE_REGISTRY=$SQUIZZLE_REGISTRY"
echo "DATABASE_URL=$DATABASE_URL"
run "$squizzle" push 1.0.0
run "$squizzle" list

printf '\n# A deploy job: an empty checkout with only squizzle.toml; apply pulls, verifies, applies.\n'
deploy="$work.deploy"
rm -rf "$deploy" && mkdir -p "$deploy" && cp "$work/squizzle.toml" "$deploy/"
cd "$deploy"
printf '\n$ %s\n' "$squizzle apply 1.0.0   # (per-file lines trimmed)"
"$squizzle" apply 1.0.0 | sed -n '1,9p;$p'
run "$squizzle" status
run "$squizzle" apply 1.0.0
cd "$work"

printf '\n# Tampering with the stored release is caught (exit code 6):\n'
layer=$("$squizzle" verify 1.0.0 --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["files"][0]["path"])')
blob=$(python3 - <<PY
import json
idx = json.load(open("db/oci/index.json"))
m = json.load(open("db/oci/blobs/sha256/" + idx["manifests"][0]["digest"].split(":")[1]))
print("db/oci/blobs/sha256/" + m["layers"][0]["digest"].split(":")[1])
PY
)
# Rebuild the tarball with one edited migration and swap it in as the stored layer.
cp -r "$work" "$work.evil" && (cd "$work.evil" && echo "-- injected" >> "$layer" \
  && rm -rf db/oci && "$squizzle" build 1.0.0 --quiet) && cp "$work.evil/db/tarballs/squizzle-1.0.0.tar.gz" "$blob"
rm -rf "$work.evil"
set +e
run "$squizzle" verify 1.0.0
code=$?
set -e
[ "$code" -eq 6 ] || { echo "expected exit code 6 from a tampered release, got $code" >&2; exit 1; }
set +e
run "$squizzle" apply 1.0.0 --quiet
apply_code=$?
set -e
[ "$apply_code" -eq 6 ] || { echo "expected apply to refuse the tampered release with 6, got $apply_code" >&2; exit 1; }
printf '\nverify and apply refused the tampered release (exit code 6). Work folder: %s\n' "$work"
