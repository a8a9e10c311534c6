#!/usr/bin/env bash
# squizzle's main job, end to end, on the bundled example (the real drizzle-kit
# history in fixtures/dokploy-drizzle): init -> keygen -> build --sign (an
# air-gapped key pair; CI would sign keylessly with Sigstore) -> verify -> list
# with the local OCI layout store; push the release and its signature to a
# throwaway OCI registry; then, from an empty deploy checkout that requires a
# signature, apply (which pulls, verifies the signature and every hash) ->
# status -> apply again (a no-op) against a throwaway PostgreSQL 15. Both
# servers are started by this script on 127.0.0.1 and stopped when it ends.
# Last, an unsigned release and a tampered one are refused.
# Usage: bash scripts/demo.sh   (work folder: $SQUIZZLE_DEMO_DIR, default /tmp/squizzle-demo)
#        SQUIZZLE_BIN=/path/to/squizzle bash scripts/demo.sh   (a prebuilt binary: no Rust, no build)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$repo/scripts/lib/setup.sh"
. "$repo/scripts/lib/pg.sh"
. "$repo/scripts/lib/registry.sh"

if [ -n "${SQUIZZLE_BIN:-}" ]; then
  [ -x "$SQUIZZLE_BIN" ] || { log "SQUIZZLE_BIN=$SQUIZZLE_BIN is not an executable file"; exit 2; }
  squizzle=$SQUIZZLE_BIN
  log "using the prebuilt $squizzle ($("$squizzle" --version))"
else
  ensure_rust
  log "building squizzle in release mode (cargo build --release --locked): the first build compiles every dependency and takes several minutes (about 14 on 2 cores); later runs only rebuild what changed. cargo's progress follows. To skip this, run with SQUIZZLE_BIN=/path/to/a/prebuilt/squizzle"
  cargo build --release --locked --manifest-path "$repo/Cargo.toml"
  squizzle="$repo/target/release/squizzle"
fi
ensure_postgres
ensure_registry
apt_install python3

work=${SQUIZZLE_DEMO_DIR:-/tmp/squizzle-demo}
rm -rf "$work" && mkdir -p "$work"
cp -r "$repo/fixtures/dokploy-drizzle" "$work/drizzle"
cd "$work"

run() { printf '\n$ %s\n' "$*"; "$@"; }
# A fixed build time makes the release byte-for-byte reproducible.
export SOURCE_DATE_EPOCH=1755734400

run "$squizzle" init
# Require a signature from the key generated next (see docs/signing.md).
sed -i 's/^require_signature = false$/require_signature = true\npublic_keys = ["squizzle.pub"]/' squizzle.toml
export SQUIZZLE_KEY_PASSWORD="demo passphrase, use a secret in real life"
run "$squizzle" keygen
run "$squizzle" build 1.0.0 --notes "dokploy schema, 186 migrations" --sign --key squizzle.key
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
rm -rf "$deploy" && mkdir -p "$deploy" && cp "$work/squizzle.toml" "$work/squizzle.pub" "$deploy/"
cd "$deploy"
printf '\n$ %s\n' "$squizzle apply 1.0.0   # (per-file lines trimmed)"
"$squizzle" apply 1.0.0 | sed -n '1,9p;$p'
run "$squizzle" status
run "$squizzle" apply 1.0.0
cd "$work"

printf '\n# An unsigned release is refused before anything touches the database (exit code 9):\n'
mkdir -p "$work.unsigned" && cp -r "$work/drizzle" "$work/squizzle.toml" "$work/squizzle.pub" "$work.unsigned/"
(
  cd "$work.unsigned"
  "$squizzle" build 1.0.1 --quiet
  set +e
  run "$squizzle" apply 1.0.1 --offline
  code=$?
  set -e
  [ "$code" -eq 9 ] || { echo "expected exit code 9 for an unsigned release, got $code" >&2; exit 1; }
)
rm -rf "$work.unsigned"

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
