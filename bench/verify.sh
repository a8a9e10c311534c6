#!/usr/bin/env bash
# Benchmark of `squizzle verify --offline` of a keylessly signed ~200 MB release:
# integrity (digests, every file hash) and signature (Sigstore bundle) parts,
# against sigstore-python verifying the same bundle and sha256sum/gzip baselines.
# Prints figures and ratios; asserts nothing. See bench/README.md ("verify.sh").
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: bash bench/verify.sh [--runs N]

Builds release 1.0.0 from ~200 MB of generated SQL (2,000 files, the data set of
bench/build.sh) and a tiny release (3 small migrations), signs both keylessly
against loopback Sigstore services (cargo example `sigstore_services`: OIDC
issuer, Fulcio, Rekor on 127.0.0.1, stopped before the timed runs), then measures
wall time and peak RSS of:
    squizzle verify 1.0.0 --offline       signed, require_signature = true   (total)
    squizzle verify 1.0.0 --offline       same release, bundle removed,
                                          require_signature = false          (hashing part)
    the same two on the tiny release                                          (signature part
                                                                               without hashing)
    python3 -m sigstore --trust-config T verify identity --bundle B \
        --cert-identity ID --cert-oidc-issuer ISS <OCI manifest blob>         (same bundle)
    python3 -c 'import sigstore.verify'                                       (its import cost)
    sha256sum <layer blob>                                                    (the baseline)
    openssl dgst -sha256 <layer blob>                                         (SHA-NI when the CPU has it)
    sha256sum <layer blob> && gzip -dc <layer blob> | sha256sum               (same work, shell tools)

Options:
  --runs N     timed runs per row, interleaved; the median is reported (default 3)
  -h, --help   show this text

Environment:
  SQUIZZLE_BIN           binary to measure instead of target/release/squizzle (no release build)
  SIGSTORE_SERVICES_BIN  a built `sigstore_services` example to use (no example build); both
                         are handy when the work tree does not compile at the moment

Runs `cargo build --release --locked` and `cargo build --locked --example
sigstore_services` first (dev profile: the services are not what is measured).
Needs python3 with the PyPI `sigstore` 4.x package (`python3 -m sigstore
--version`), GNU time at /usr/bin/time, bash 5, gzip, sha256sum, openssl. The
services process is stopped by closing its stdin, and killed (by PID) if it is
still there when the script exits. Generated data is cached under bench/.work/
(git-ignored).
This is a measurement, not a test: it exits 0 whatever the figures are.
EOF
}

RUNS=3
while [ $# -gt 0 ]; do
    case "$1" in
        --runs)
            [ $# -ge 2 ] || { echo "error: --runs needs a value" >&2; usage >&2; exit 2; }
            RUNS=$2; shift 2 ;;
        --runs=*) RUNS=${1#--runs=}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "error: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
case "$RUNS" in
    ''|*[!0-9]*|0) echo "error: --runs must be a positive integer, got '$RUNS'" >&2; exit 2 ;;
esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
WORK=$BENCH/.work
LOGS=$WORK/logs/verify
BIN_SRC=${SQUIZZLE_BIN:-$ROOT/target/release/squizzle}
SERVICES_BIN=${SIGSTORE_SERVICES_BIN:-$ROOT/target/debug/examples/sigstore_services}
TIME=/usr/bin/time
SEED=20241122
COUNT=2000
EPOCH=1700000000
VERSION=1.0.0
IDENTITY=https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0
BUNDLE_TYPE=application/vnd.dev.sigstore.bundle.v0.3+json

unset SQUIZZLE_CONFIG SQUIZZLE_ENV SIGSTORE_ID_TOKEN 2>/dev/null || true

[ -n "${EPOCHREALTIME:-}" ] || { echo "error: bash 5 is needed (EPOCHREALTIME)" >&2; exit 1; }
for tool in python3 gzip sha256sum openssl awk sort mkfifo; do
    command -v "$tool" >/dev/null || { echo "error: '$tool' not found" >&2; exit 1; }
done
if ! [ -x "$TIME" ] || ! "$TIME" --version 2>&1 | grep -q 'GNU'; then
    echo "error: GNU time is needed at $TIME (Debian: apt-get install time)" >&2
    exit 1
fi
if ! SIGSTORE_PY=$(python3 -m sigstore --version 2>&1); then
    echo "error: sigstore-python is needed: python3 -m sigstore --version failed:" >&2
    printf '%s\n' "$SIGSTORE_PY" | sed 's/^/    | /' >&2
    echo "(pip install 'sigstore>=4,<5'; scripts/lib/setup.sh has ensure_sigstore_python)" >&2
    exit 1
fi

log() { echo "[bench] $*" >&2; }

mkdir -p "$WORK/data" "$WORK/tmp" "$LOGS"
RUN_DIR=$(mktemp -d "$WORK/tmp/verify.XXXXXX")
SVC_PID=""
cleanup() {
    exec 7>&- 2>/dev/null || true
    if [ -n "$SVC_PID" ] && kill -0 "$SVC_PID" 2>/dev/null; then
        kill "$SVC_PID" 2>/dev/null || true
        wait "$SVC_PID" 2>/dev/null || true
    fi
    rm -rf "$RUN_DIR"
}
trap cleanup EXIT

# ---------------------------------------------------------------- binaries
cargo_build() { # LOGNAME ARGS...
    local name=$1
    shift
    log "cargo build $* ..."
    if ! (cd "$ROOT" && cargo build "$@") >"$LOGS/$name.log" 2>&1; then
        echo "error: cargo build $* failed; last lines of $LOGS/$name.log:" >&2
        tail -n 25 "$LOGS/$name.log" >&2
        exit 1
    fi
}
[ -n "${SQUIZZLE_BIN:-}" ] || cargo_build cargo-release --release --locked
[ -n "${SIGSTORE_SERVICES_BIN:-}" ] || cargo_build cargo-example --locked --example sigstore_services
[ -x "$BIN_SRC" ] || { echo "error: $BIN_SRC is not executable" >&2; exit 1; }
[ -x "$SERVICES_BIN" ] || { echo "error: $SERVICES_BIN is missing after the build" >&2; exit 1; }
# Measure a private copy: other work in this tree may rebuild target/release/squizzle.
mkdir -p "$RUN_DIR/bin" "$RUN_DIR/home"
cp -p "$BIN_SRC" "$RUN_DIR/bin/squizzle"
BIN=$RUN_DIR/bin/squizzle

# ---------------------------------------------------------------- data
DATA=$WORK/data/m$COUNT
# shellcheck source=bench/generated_data.sh
source "$BENCH/generated_data.sh"
ensure_generated_data "$DATA" "$COUNT" "$SEED"

# squizzle with a clean environment: no caller config, private HOME, and no git
# repository above the project (bench/.work/ lies inside this work tree).
SQZ=(env -i "PATH=$PATH" "HOME=$RUN_DIR/home" "GIT_CEILING_DIRECTORIES=$RUN_DIR" "$BIN")

BIG=$RUN_DIR/big
TINY=$RUN_DIR/tiny
mkdir -p "$BIG" "$TINY/migrations"
cp -al "$DATA/migrations" "$BIG/migrations" 2>/dev/null || cp -a "$DATA/migrations" "$BIG/migrations"
printf 'CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL);\n' >"$TINY/migrations/0001_accounts.sql"
printf 'CREATE INDEX accounts_email ON accounts (email);\n' >"$TINY/migrations/0002_accounts_email.sql"
printf 'ALTER TABLE accounts ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();\n' >"$TINY/migrations/0003_created_at.sql"
for proj in "$BIG" "$TINY"; do
    printf '[project]\nmigrations = "migrations"\n' >"$proj/squizzle.toml"
    log "squizzle build $VERSION in ${proj#"$ROOT"/} (not timed) ..."
    (cd "$proj" && SOURCE_DATE_EPOCH=$EPOCH "${SQZ[@]}" build "$VERSION") \
        >"$LOGS/build-$(basename "$proj").log" 2>&1 || {
        echo "error: squizzle build failed; see $LOGS/build-$(basename "$proj").log" >&2
        tail -n 20 "$LOGS/build-$(basename "$proj").log" >&2
        exit 1
    }
done

# ---------------------------------------------------------------- Sigstore services
# The example prints one JSON line, then serves until its stdin reaches EOF: its
# stdin is a FIFO whose write end this shell holds open on fd 7.
mkfifo "$RUN_DIR/services.in"
"$SERVICES_BIN" "$IDENTITY" <"$RUN_DIR/services.in" >"$RUN_DIR/services.json" 2>"$LOGS/services.log" &
SVC_PID=$!
exec 7>"$RUN_DIR/services.in"
for _ in $(seq 1 300); do
    [ -s "$RUN_DIR/services.json" ] && break
    kill -0 "$SVC_PID" 2>/dev/null || { echo "error: sigstore_services exited; see $LOGS/services.log" >&2; exit 1; }
    sleep 0.1
done
[ -s "$RUN_DIR/services.json" ] || { echo "error: sigstore_services printed nothing in 30 s" >&2; exit 1; }
svc() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$RUN_DIR/services.json" "$1"; }
FULCIO=$(svc fulcio); REKOR=$(svc rekor); ISSUER=$(svc issuer)
# Private copies of the trust material: it lives in the services' temp dir,
# which goes away when they stop.
mkdir -p "$RUN_DIR/trust"
cp "$(svc trustedRoot)" "$RUN_DIR/trust/trusted_root.json"
cp "$(svc trustConfig)" "$RUN_DIR/trust/trust_config.json"
TRUSTED_ROOT=$RUN_DIR/trust/trusted_root.json
TRUST_CONFIG=$RUN_DIR/trust/trust_config.json
log "sigstore services (pid $SVC_PID): fulcio $FULCIO, rekor $REKOR, issuer $ISSUER"

config() { # DIR REQUIRE_SIGNATURE(true|false); replaces the file (never writes through a hard link)
    rm -f "$1/squizzle.toml"
    cat >"$1/squizzle.toml" <<EOF
[project]
migrations = "migrations"

[security]
require_signature = $2
fulcio_url = "$FULCIO"
rekor_url = "$REKOR"
trusted_root = "$TRUSTED_ROOT"

[[security.signers]]
identity = "$IDENTITY"
issuer = "$ISSUER"
EOF
}
for proj in "$BIG" "$TINY"; do
    config "$proj" true
    name=$(basename "$proj")
    log "squizzle sign $VERSION in ${proj#"$ROOT"/} (not timed) ..."
    # The token is passed in the environment only, never on a command line.
    # (env -i would drop it, so this one command runs with the caller's environment,
    # SQUIZZLE_CONFIG/SQUIZZLE_ENV unset at the top.)
    if ! (cd "$proj" && SIGSTORE_ID_TOKEN=$(svc token) && export SIGSTORE_ID_TOKEN &&
        HOME=$RUN_DIR/home GIT_CEILING_DIRECTORIES=$RUN_DIR "$BIN" sign "$VERSION") >"$LOGS/sign-$name.log" 2>&1; then
        echo "error: squizzle sign failed; see $LOGS/sign-$name.log" >&2
        tail -n 20 "$LOGS/sign-$name.log" >&2
        exit 1
    fi
    [ -s "$proj/db/tarballs/squizzle-$VERSION.sigstore.json" ] ||
        { echo "error: squizzle sign exited 0 but wrote no bundle in $proj" >&2; exit 1; }
done
# Stop the services (EOF on stdin): verify is offline and must not need them.
exec 7>&-
for _ in $(seq 1 50); do kill -0 "$SVC_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$SVC_PID" 2>/dev/null; then
    log "sigstore_services did not stop on EOF; killing pid $SVC_PID"
    kill "$SVC_PID" 2>/dev/null || true
fi
wait "$SVC_PID" 2>/dev/null || true
SVC_PID=""
rm -f "$RUN_DIR/services.json"

# Unsigned twins: the same db/ (hard links) without the signature referrer and
# bundle file, and require_signature = false, so verify does the integrity part only.
unsigned_copy() { # SIGNED_DIR DEST
    cp -al "$1" "$2"
    rm -f "$2/db/tarballs/squizzle-$VERSION.sigstore.json"
    python3 - "$2/db/oci/index.json" "$BUNDLE_TYPE" <<'EOF'
import json, os, sys
path, bundle_type = sys.argv[1], sys.argv[2]
index = json.load(open(path))
before = len(index["manifests"])
index["manifests"] = [m for m in index["manifests"] if m.get("artifactType") != bundle_type]
if len(index["manifests"]) == before:
    sys.exit("no signature referrer found in " + path)
os.unlink(path)  # a hard link to the signed project's index: replace, do not write through
with open(path, "w") as f:
    json.dump(index, f)
EOF
    config "$2" false
}
unsigned_copy "$BIG" "$RUN_DIR/big-unsigned"
unsigned_copy "$TINY" "$RUN_DIR/tiny-unsigned"

# The signed artifact is the OCI manifest the 1.0.0 tag names; the layer blob is the tarball.
read -r MANIFEST_BLOB LAYER_BLOB LAYER_BYTES < <(python3 - "$BIG/db/oci" "$VERSION" <<'EOF'
import json, os, sys
root, tag = sys.argv[1], sys.argv[2]
index = json.load(open(os.path.join(root, "index.json")))
m = [d for d in index["manifests"] if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag][0]
blob = lambda d: os.path.join(root, "blobs", *d.split(":"))
man = json.load(open(blob(m["digest"])))
layer = max(man["layers"], key=lambda l: l["size"])
print(blob(m["digest"]), blob(layer["digest"]), layer["size"])
EOF
)
TINY_MANIFEST_BLOB=$(python3 - "$TINY/db/oci" "$VERSION" <<'EOF'
import json, os, sys
root, tag = sys.argv[1], sys.argv[2]
index = json.load(open(os.path.join(root, "index.json")))
m = [d for d in index["manifests"] if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag][0]
print(os.path.join(root, "blobs", *m["digest"].split(":")))
EOF
)
BIG_BUNDLE=$BIG/db/tarballs/squizzle-$VERSION.sigstore.json
TINY_BUNDLE=$TINY/db/tarballs/squizzle-$VERSION.sigstore.json

# ---------------------------------------------------------------- rows
declare -A CMD_DIR
declare -a ROWS=()
declare -A CMDS REPS
row_def() { # NAME DIR CMD [REPEAT] (CMD: a string for bash -c, run from DIR)
    ROWS+=("$1")
    CMD_DIR[$1]=$2
    REPS[$1]=${4:-1}
    if [ "${4:-1}" -gt 1 ]; then
        # Short commands: REPEAT invocations per timed run, figures divided by REPEAT.
        CMDS[$1]="for _ in \$(seq $4); do $3 || exit 1; done"
    else
        CMDS[$1]=$3
    fi
}
TINY_REPEAT=20
q() { printf '%q' "$1"; }
SQZ_Q=$(printf '%q ' "${SQZ[@]}")
PYSIG_Q="SIGSTORE_NO_CACHE=1 python3 -m sigstore --trust-config $(q "$TRUST_CONFIG") verify identity --cert-identity $(q "$IDENTITY") --cert-oidc-issuer $(q "$ISSUER")"
row_def "squizzle 200MB signed" "$BIG" "${SQZ_Q}verify $VERSION --offline"
row_def "squizzle 200MB unsigned" "$RUN_DIR/big-unsigned" "${SQZ_Q}verify $VERSION --offline"
row_def "squizzle tiny signed" "$TINY" "${SQZ_Q}verify $VERSION --offline" "$TINY_REPEAT"
row_def "squizzle tiny unsigned" "$RUN_DIR/tiny-unsigned" "${SQZ_Q}verify $VERSION --offline" "$TINY_REPEAT"
row_def "sigstore-python 200MB" "$BIG" "$PYSIG_Q --bundle $(q "$BIG_BUNDLE") $(q "$MANIFEST_BLOB")"
row_def "sigstore-python tiny" "$TINY" "$PYSIG_Q --bundle $(q "$TINY_BUNDLE") $(q "$TINY_MANIFEST_BLOB")"
row_def "python import only" "$RUN_DIR" "python3 -c 'import sigstore.verify'"
row_def "sha256sum layer" "$RUN_DIR" "sha256sum $(q "$LAYER_BLOB") >/dev/null"
row_def "openssl sha256 layer" "$RUN_DIR" "openssl dgst -sha256 $(q "$LAYER_BLOB") >/dev/null"
row_def "sha256sum+gunzip|sha256sum" "$RUN_DIR" "sha256sum $(q "$LAYER_BLOB") >/dev/null && gzip -dc $(q "$LAYER_BLOB") | sha256sum >/dev/null"

# ---------------------------------------------------------------- timing
# EPOCHREALTIME around GNU time (ms resolution; %e has only 10 ms), peak RSS = %M
# (largest single process), CPU = user + system of the command and its children.
declare -A WALLS RSSS CPUS
FAILED=""
run_timed() { # NAME RUN(0 = warm-up, not recorded)
    local name=$1 run=$2 tf logf t0 t1 rc=0 wall rss cpu
    tf=$RUN_DIR/time.out
    logf=$LOGS/${name// /_}-run$run.log
    rm -f "$tf"
    sync
    t0=$EPOCHREALTIME
    (cd "${CMD_DIR[$name]}" && "$TIME" -o "$tf" -f '%e %M %U %S' bash -c "${CMDS[$name]}") >"$logf" 2>&1 || rc=$?
    t1=$EPOCHREALTIME
    if [ "$rc" -ne 0 ]; then
        echo "error: '$name' run $run failed (exit $rc); its output ($logf):" >&2
        sed 's/^/    | /' "$logf" | tail -n 30 >&2
        FAILED+=" [$name run $run]"
        return 0
    fi
    [ "$run" -gt 0 ] || return 0
    local n=${REPS[$name]}
    wall=$(awk -v a="$t0" -v b="$t1" -v n="$n" 'BEGIN { printf (n > 1 ? "%.4f" : "%.3f"), (b - a) / n }')
    read -r rss cpu < <(tail -n 1 "$tf" | awk -v n="$n" '{ printf (n > 1 ? "%d %.4f\n" : "%d %.2f\n"), $2, ($3 + $4) / n }')
    WALLS[$name]+="$wall "
    RSSS[$name]+="$rss "
    CPUS[$name]+="$cpu "
    log "$name run $run/$RUNS: ${wall}s wall, ${cpu}s CPU, $((rss / 1024)) MiB peak RSS"
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "warming the page cache and every tool (one untimed run each)"
cat "$BIG"/db/oci/blobs/sha256/* >/dev/null
for name in "${ROWS[@]}"; do run_timed "$name" 0; done
# What each squizzle run said, to check it verified what we think it verified.
grep -q 'Signature verified' "$LOGS/squizzle_200MB_signed-run0.log" ||
    echo "warning: the signed 200MB verify did not print 'Signature verified' (see $LOGS/squizzle_200MB_signed-run0.log)" >&2
grep -qi 'not signed' "$LOGS/squizzle_200MB_unsigned-run0.log" ||
    echo "warning: the unsigned 200MB verify did not report 'not signed' (see $LOGS/squizzle_200MB_unsigned-run0.log)" >&2
for ((i = 1; i <= RUNS; i++)); do
    for name in "${ROWS[@]}"; do run_timed "$name" "$i"; done # interleaved
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report
median() {
    printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {
        if (NR == 0) printf "n/a"; else if (NR % 2) printf "%s", a[(NR+1)/2]; else printf "%.4f", (a[NR/2]+a[NR/2+1])/2 }'
}
mib() { awk -v k="$1" 'BEGIN { if (k == "n/a") print "n/a"; else printf "%.1f", k / 1024 }'; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "n/a" && b != "n/a") printf "%.4f", a - b; else printf "n/a" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "n/a" && b != "n/a" && b > 0) printf (a / b < 0.1 ? "%.3fx" : "%.2fx"), a / b; else printf "n/a" }'; }
inverse() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "n/a" && b != "n/a" && a > 0) printf "%.0fx", b / a; else printf "n/a" }'; }
# shellcheck disable=SC2086 # word splitting of the space-separated lists is intended
med_w() { median ${WALLS[$1]:-}; }
# shellcheck disable=SC2086
med_r() { median ${RSSS[$1]:-}; }
# shellcheck disable=SC2086
med_c() { median ${CPUS[$1]:-}; }
pairdiff() { # A B -> per-run wall differences A - B (runs are interleaved, so run k of A and B are neighbours)
    local -a a b
    read -r -a a <<<"${WALLS[$1]:-}"
    read -r -a b <<<"${WALLS[$2]:-}"
    local k
    for ((k = 0; k < ${#a[@]} && k < ${#b[@]}; k++)); do
        awk -v x="${a[k]}" -v y="${b[k]}" 'BEGIN { printf "%.4f ", x - y }'
    done
}

commit=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo 'no commit yet')
dirty=""
[ -z "$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ] || dirty=" + uncommitted changes in src/Cargo.*"
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)

echo
echo "=== squizzle verify benchmark ==="
echo "date    : $(date -u '+%Y-%m-%d %H:%M:%SZ')"
echo "machine : nproc=$(nproc), CPU: ${cpu:-unknown}, RAM $(awk '/MemTotal/ { printf "%.1f GiB", $2/1048576 }' /proc/meminfo)"
echo "load avg: $LOAD_START before, $LOAD_END after (1/5/15 min)"
echo "squizzle: $("$BIN" --version 2>/dev/null | head -n 1) (git $commit$dirty; binary ${BIN_SRC#"$ROOT"/} built $(date -u -r "$BIN" '+%Y-%m-%d %H:%M:%SZ'), sha256 $(sha256sum "$BIN" | cut -c1-12))"
echo "sigstore: $SIGSTORE_PY (python3 -m sigstore, $(python3 --version 2>&1))"
echo "data    : $COUNT files, $(du -sb --apparent-size "$DATA/migrations" | awk '{ printf "%.1f MB", $1/1e6 }') of SQL; layer blob (tarball) $(awk -v b="$LAYER_BYTES" 'BEGIN { printf "%.1f MB", b/1e6 }'); tiny = 3 files, $(du -sb --apparent-size "$TINY/migrations" | cut -f1) bytes"
echo "signing : keyless, loopback Fulcio + Rekor (stopped before timing), identity $IDENTITY"
echo "runs    : $RUNS per row, interleaved, page cache warm, one untimed warm-up each; median reported"
echo
printf '%-28s  %13s  %12s  %11s  %s\n' "row" "median wall s" "peak RSS MiB" "CPU s (u+s)" "per run: wall s"
for name in "${ROWS[@]}"; do
    printf '%-28s  %13s  %12s  %11s  %s\n' "$name" "$(med_w "$name")" "$(mib "$(med_r "$name")")" "$(med_c "$name")" "${WALLS[$name]:-}"
done
echo
echo "rows:"
echo "  squizzle 200MB signed      cd <project> && squizzle verify $VERSION --offline   (require_signature = true, keyless bundle as referrer + file)"
echo "  squizzle 200MB unsigned    the same on a copy without the referrer and the bundle file, require_signature = false"
echo "  squizzle tiny signed/unsig the same two on a 3-migration release; $TINY_REPEAT invocations per timed run, figures per invocation"
echo "  sigstore-python 200MB/tiny python3 -m sigstore --trust-config <loopback trust_config.json> verify identity"
echo "                             --bundle db/tarballs/squizzle-$VERSION.sigstore.json --cert-identity ID --cert-oidc-issuer ISS"
echo "                             db/oci/blobs/sha256/<1.0.0 manifest digest>   (the same bundle, the signed OCI manifest)"
echo "  python import only         python3 -c 'import sigstore.verify'"
echo "  sha256sum layer            THE BASELINE: sha256sum db/oci/blobs/sha256/<layer digest>   (the ${LAYER_BYTES}-byte tarball;"
echo "                             what checking a downloaded release against a published checksum costs)"
echo "  openssl sha256 layer       openssl dgst -sha256 <layer blob>   (the same digest, SHA-NI when the CPU has it)"
echo "  sha256sum+gunzip|sha256sum sha256sum <layer blob> && gzip -dc <layer blob> | sha256sum   (squizzle's integrity work with"
echo "                             shell tools: the compressed digest, inflate, a digest of the content; squizzle hashes each file)"

T=$(med_w "squizzle 200MB signed"); H=$(med_w "squizzle 200MB unsigned")
TS=$(med_w "squizzle tiny signed"); TU=$(med_w "squizzle tiny unsigned")
PY=$(med_w "sigstore-python 200MB"); PYT=$(med_w "sigstore-python tiny")
SHA=$(med_w "sha256sum layer"); OSSL=$(med_w "openssl sha256 layer"); PIPE=$(med_w "sha256sum+gunzip|sha256sum")
BIG_DIFFS=$(pairdiff "squizzle 200MB signed" "squizzle 200MB unsigned")
TINY_DIFFS=$(pairdiff "squizzle tiny signed" "squizzle tiny unsigned")
# shellcheck disable=SC2086
SIG=$(median $BIG_DIFFS)
# shellcheck disable=SC2086
SIGT=$(median $TINY_DIFFS)
echo
echo "derived (wall s): signature part = median over runs of (signed run k - unsigned run k)"
echo "  200MB hashing part (unsigned verify, median)  : $H"
echo "  200MB signature part = total - hashing part   : $SIG   (per run: ${BIG_DIFFS}; difference of the medians: $(sub "$T" "$H"))"
echo "  tiny signature part = signed - unsigned       : $SIGT   (per run: ${TINY_DIFFS}; difference of the medians: $(sub "$TS" "$TU"))"
echo "  (the 200MB difference is a few ms out of ~0.4 s of hashing: within its noise; the tiny one is the cleaner figure)"
echo
echo "ratios (below 1.00x: squizzle is faster):"
echo "  squizzle 200MB total / the baseline (sha256sum <layer blob>)  : $(ratio "$T" "$SHA")   ($T / $SHA)"
echo "  squizzle 200MB total / openssl dgst -sha256 <layer blob>      : $(ratio "$T" "$OSSL")   ($T / $OSSL)"
echo "  squizzle 200MB hashing part / sha256sum + gzip -dc|sha256sum  : $(ratio "$H" "$PIPE")   ($H / $PIPE)"
echo "  squizzle signature part (200MB difference) / sigstore-python  : $(ratio "$SIG" "$PY")   ($SIG / $PY; sigstore-python takes $(inverse "$SIG" "$PY") as long)"
echo "  squizzle signature part (tiny difference) / sigstore-python   : $(ratio "$SIGT" "$PYT")   ($SIGT / $PYT; sigstore-python takes $(inverse "$SIGT" "$PYT") as long)"
echo "  squizzle tiny signed verify, whole process / sigstore-python  : $(ratio "$TS" "$PYT")   ($TS / $PYT; both whole processes over a tiny artifact)"
echo "  sigstore-python tiny minus its import (python import only row): $(sub "$PYT" "$(med_w "python import only")") s"
echo "  squizzle 200MB peak RSS / sigstore-python peak RSS            : $(ratio "$(med_r "squizzle 200MB signed")" "$(med_r "sigstore-python 200MB")")"
echo "  squizzle 200MB peak RSS / squizzle tiny peak RSS (flat: ~1x)  : $(ratio "$(med_r "squizzle 200MB signed")" "$(med_r "squizzle tiny signed")")   ($(mib "$(med_r "squizzle 200MB signed")") / $(mib "$(med_r "squizzle tiny signed")") MiB)"
echo "  issue 16 target: squizzle 200MB total <= 1.50x the baseline    : $(awk -v a="$T" -v b="$SHA" 'BEGIN { if (a != "n/a" && b != "n/a" && b > 0) print (a / b <= 1.5 ? "met" : "not met"); else print "n/a" }')"
echo "  (a difference of two medians of a few runs is only as good as their spread: compare the per-run columns)"
[ -z "$FAILED" ] || echo "FAILED runs:$FAILED (see ${LOGS#"$ROOT"/}/)"
echo "logs: ${LOGS#"$ROOT"/}/"
