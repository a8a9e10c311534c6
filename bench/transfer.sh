#!/usr/bin/env bash
# Benchmark of `squizzle push` / `squizzle pull` against skopeo and the PyPI
# `oras` client, on a local docker-registry. Prints figures and ratios;
# asserts nothing. See bench/README.md ("transfer.sh").
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: bash bench/transfer.sh [--runs N] [--rebuild] [--no-oras]

Builds one release from ~200 MB of generated SQL (2,000 files, the same data
set as bench/build.sh), starts a private docker-registry on 127.0.0.1 and
measures wall time and peak RSS of:
    squizzle push 1.0.0                 (to an empty repository)
    squizzle push 1.0.0 again           (nothing to upload)
    squizzle pull 1.0.0                 (into an empty store)
    skopeo copy oci:<layout>:1.0.0 docker://127.0.0.1:PORT/<repo>:1.0.0
    skopeo copy docker://127.0.0.1:PORT/<repo>:1.0.0 oci:<empty dir>:1.0.0
    oras (PyPI) OrasClient(hostname=..., insecure=True).pull(...)   (if it installs)

Options:
  --runs N     timed runs per tool (fresh repository each run); median reported (default 3)
  --rebuild    run `cargo build --release` even if target/release/squizzle exists
  --no-oras    skip the oras client (no pip install)
  -h, --help   show this text

Environment:
  SQUIZZLE_BIN  binary to measure instead of target/release/squizzle (no cargo build)

Needs python3, GNU time at /usr/bin/time, bash 5, docker-registry, skopeo.
The registry is started by this script and killed (by PID) when it exits.
Generated data is cached under bench/.work/ (git-ignored).
This is a measurement, not a test: it exits 0 whatever the figures are.
EOF
}

RUNS=3
REBUILD=0
ORAS=1
while [ $# -gt 0 ]; do
    case "$1" in
        --runs)
            [ $# -ge 2 ] || { echo "error: --runs needs a value" >&2; usage >&2; exit 2; }
            RUNS=$2; shift 2 ;;
        --runs=*) RUNS=${1#--runs=}; shift ;;
        --rebuild) REBUILD=1; shift ;;
        --no-oras) ORAS=0; shift ;;
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
BIN_SRC=${SQUIZZLE_BIN:-$ROOT/target/release/squizzle}
TIME=/usr/bin/time
REGISTRY_BIN=/usr/bin/docker-registry
SEED=20241122
COUNT=2000
EPOCH=1700000000
VERSION=1.0.0

[ -n "${EPOCHREALTIME:-}" ] || { echo "error: bash 5 is needed (EPOCHREALTIME)" >&2; exit 1; }
for tool in python3 skopeo sha256sum; do
    command -v "$tool" >/dev/null || { echo "error: '$tool' not found (Debian: apt-get install $tool)" >&2; exit 1; }
done
[ -x "$REGISTRY_BIN" ] || { echo "error: $REGISTRY_BIN not found (Debian: apt-get install docker-registry)" >&2; exit 1; }
if ! [ -x "$TIME" ] || ! "$TIME" --version 2>&1 | grep -q 'GNU'; then
    echo "error: GNU time is needed at $TIME (Debian: apt-get install time)" >&2
    exit 1
fi

log() { echo "[bench] $*" >&2; }

mkdir -p "$WORK/data" "$WORK/tmp" "$WORK/logs/transfer"
RUN_DIR=$(mktemp -d "$WORK/tmp/transfer.XXXXXX")
REG_PID=""
cleanup() {
    if [ -n "$REG_PID" ]; then
        kill "$REG_PID" 2>/dev/null || true
        wait "$REG_PID" 2>/dev/null || true
    fi
    rm -rf "$RUN_DIR"
}
trap cleanup EXIT

# ---------------------------------------------------------------- data and binary
DATA=$WORK/data/m$COUNT
# shellcheck source=bench/generated_data.sh
source "$BENCH/generated_data.sh"
ensure_generated_data "$DATA" "$COUNT" "$SEED"

if [ -z "${SQUIZZLE_BIN:-}" ] && { [ "$REBUILD" = 1 ] || ! [ -x "$BIN_SRC" ]; }; then
    log "cargo build --release ..."
    (cd "$ROOT" && cargo build --release) >"$WORK/logs/transfer/cargo-build.log" 2>&1 || {
        echo "error: cargo build --release failed; see $WORK/logs/transfer/cargo-build.log" >&2
        tail -n 25 "$WORK/logs/transfer/cargo-build.log" >&2
        exit 1
    }
fi
[ -x "$BIN_SRC" ] || { echo "error: $BIN_SRC is not executable" >&2; exit 1; }
# Measure a private copy: other work in this tree may rebuild target/release/squizzle.
mkdir -p "$RUN_DIR/bin"
cp -p "$BIN_SRC" "$RUN_DIR/bin/squizzle"
BIN=$RUN_DIR/bin/squizzle

# ---------------------------------------------------------------- registry
# A fresh registry (new port, empty storage) for every run: distribution keeps
# one blob store for all repositories, and skopeo remembers where it saw a
# blob (its blob-info cache) and mounts it from there instead of uploading,
# so a second push to the same registry would measure a mount, not a push.
start_registry() { # N -> sets REG (host:port) and REG_PID
    local n=$1 port dir
    if [ -n "$REG_PID" ]; then
        kill "$REG_PID" 2>/dev/null || true
        wait "$REG_PID" 2>/dev/null || true
        REG_PID=""
    fi
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
    dir=$RUN_DIR/registry-$n
    rm -rf "$RUN_DIR"/registry-*
    mkdir -p "$dir/data"
    cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/data
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: squizzle-bench-$port
EOF
    "$REGISTRY_BIN" serve "$dir/config.yml" >"$WORK/logs/transfer/registry-$n.log" 2>&1 &
    REG_PID=$!
    for _ in $(seq 1 100); do
        if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/v2/', timeout=1)" 2>/dev/null; then
            break
        fi
        kill -0 "$REG_PID" 2>/dev/null || { echo "error: docker-registry exited; see $WORK/logs/transfer/registry-$n.log" >&2; exit 1; }
        sleep 0.1
    done
    REG=127.0.0.1:$port
    log "docker-registry (pid $REG_PID) on $REG"
}
REG=127.0.0.1:1 # placeholder until the first run starts a registry

# ---------------------------------------------------------------- oras
ORAS_PY=""
ORAS_NOTE="not measured (--no-oras)"
if [ "$ORAS" = 1 ]; then
    VENV=$WORK/venv
    if ! [ -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV" >"$WORK/logs/transfer/venv.log" 2>&1 || true
    fi
    if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c 'import oras.client' 2>/dev/null; then
        log "pip install oras into ${VENV#"$ROOT"/} ..."
        "$VENV/bin/pip" install -q oras >"$WORK/logs/transfer/pip-oras.log" 2>&1 || true
    fi
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import oras.client' 2>/dev/null; then
        ORAS_PY=$VENV/bin/python
        ORAS_NOTE="oras $("$ORAS_PY" -m pip show oras 2>/dev/null | awk '/^Version/ { print $2 }') (PyPI), pull = manifest + every layer, no digest check"
    else
        ORAS_NOTE="not measured: pip install oras failed (see $WORK/logs/transfer/pip-oras.log)"
    fi
fi

# ---------------------------------------------------------------- the release
PROJ=$RUN_DIR/project
mkdir -p "$PROJ" "$RUN_DIR/home"
cp -al "$DATA/migrations" "$PROJ/migrations" 2>/dev/null || cp -a "$DATA/migrations" "$PROJ/migrations"
config() { # DIR REPO
    printf '[project]\nmigrations = "migrations"\n\n[registry]\nurl = "%s/%s"\n' "$REG" "$2" >"$1/squizzle.toml"
}
config "$PROJ" bench/unused
log "squizzle build $VERSION (not timed) ..."
(cd "$PROJ" && HOME=$RUN_DIR/home GIT_CEILING_DIRECTORIES=$RUN_DIR SOURCE_DATE_EPOCH=$EPOCH \
    "$BIN" build "$VERSION" >"$WORK/logs/transfer/build.log" 2>&1)
LAYOUT=$PROJ/db/oci
LAYER_BYTES=$(python3 - "$LAYOUT" "$VERSION" <<'EOF'
import json, sys, os
root, tag = sys.argv[1], sys.argv[2]
index = json.load(open(os.path.join(root, "index.json")))
m = [d for d in index["manifests"] if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag][0]
man = json.load(open(os.path.join(root, "blobs", *m["digest"].split(":"))))
print(sum(l["size"] for l in man["layers"]) + man["config"]["size"] + m["size"])
EOF
)

# ---------------------------------------------------------------- timing
# run_timed NAME RUN CWD CMD... -> appends wall (s) and peak RSS (KiB) to WALLS/RSSS[NAME].
# Wall from bash's EPOCHREALTIME around GNU time; RSS = GNU time's %M (largest process).
declare -A WALLS RSSS
run_timed() {
    local name=$1 run=$2 cwd=$3 tf logf t0 t1 rc=0 wall rss
    shift 3
    tf=$RUN_DIR/time.out
    logf=$WORK/logs/transfer/${name// /_}-run$run.log
    rm -f "$tf"
    sync
    t0=$EPOCHREALTIME
    (cd "$cwd" && "$TIME" -o "$tf" -f '%e %M' "$@") >"$logf" 2>&1 || rc=$?
    t1=$EPOCHREALTIME
    if [ "$rc" -ne 0 ]; then
        echo "error: '$name' run $run failed (exit $rc); its output ($logf):" >&2
        sed 's/^/    | /' "$logf" | tail -n 30 >&2
        return 1
    fi
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    rss=$(tail -n 1 "$tf" | awk '{ print $2 + 0 }')
    WALLS[$name]+="$wall "
    RSSS[$name]+="$rss "
    log "$name run $run/$RUNS: ${wall}s wall, $((rss / 1024)) MiB peak RSS"
}

SQZ=(env -i "PATH=$PATH" "HOME=$RUN_DIR/home" "$BIN")
ORAS_SCRIPT='
import sys, oras.client
host, target, out = sys.argv[1:4]
files = oras.client.OrasClient(hostname=host, insecure=True).pull(target=target, outdir=out)
if not files: sys.exit("oras pulled nothing")
'
FAILED=""
for ((i = 1; i <= RUNS; i++)); do
    start_registry "$i"
    repo=bench/sq-$i
    config "$PROJ" "$repo"
    run_timed "squizzle push" "$i" "$PROJ" "${SQZ[@]}" push "$VERSION" || FAILED+=" squizzle-push"
    run_timed "squizzle push again" "$i" "$PROJ" "${SQZ[@]}" push "$VERSION" || FAILED+=" squizzle-push-again"
    pulled=$RUN_DIR/pull-$i
    mkdir -p "$pulled"
    config "$pulled" "$repo"
    if run_timed "squizzle pull" "$i" "$pulled" "${SQZ[@]}" pull "$VERSION"; then
        # Same bytes as built (outside the timed region).
        [ "$(cd "$pulled/db/oci/blobs" && find . -type f | sort | xargs sha256sum | sha256sum)" = \
          "$(cd "$LAYOUT/blobs" && find . -type f | sort | xargs sha256sum | sha256sum)" ] ||
            { echo "error: squizzle pull run $i: the pulled blobs differ from the built ones" >&2; FAILED+=" squizzle-pull-content"; }
    else
        FAILED+=" squizzle-pull"
    fi
    rm -rf "$pulled"

    run_timed "skopeo push" "$i" "$RUN_DIR" skopeo copy --quiet --dest-tls-verify=false \
        "oci:$LAYOUT:$VERSION" "docker://$REG/bench/skopeo-$i:$VERSION" || FAILED+=" skopeo-push"
    run_timed "skopeo pull" "$i" "$RUN_DIR" skopeo copy --quiet --src-tls-verify=false \
        "docker://$REG/bench/skopeo-$i:$VERSION" "oci:$RUN_DIR/skopeo-pull-$i:$VERSION" || FAILED+=" skopeo-pull"
    rm -rf "$RUN_DIR/skopeo-pull-$i"

    if [ -n "$ORAS_PY" ]; then
        run_timed "oras pull" "$i" "$RUN_DIR" "$ORAS_PY" -c "$ORAS_SCRIPT" "$REG" "$REG/$repo:$VERSION" \
            "$RUN_DIR/oras-pull-$i" || FAILED+=" oras-pull"
        rm -rf "$RUN_DIR/oras-pull-$i"
    fi
done

# ---------------------------------------------------------------- report
median() {
    printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {
        if (NR == 0) printf "n/a"; else if (NR % 2) printf "%s", a[(NR+1)/2]; else printf "%.3f", (a[NR/2]+a[NR/2+1])/2 }'
}
mib() { awk -v k="$1" 'BEGIN { if (k == "n/a") print "n/a"; else printf "%.1f", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "n/a" && b != "n/a" && b > 0) printf "%.2fx", a / b; else printf "n/a" }'; }

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo
echo "=== squizzle push/pull benchmark ==="
echo "machine : nproc=$(nproc), CPU: ${cpu:-unknown}, load avg now $(cut -d' ' -f1-3 /proc/loadavg)"
echo "squizzle: $("$BIN" --version 2>/dev/null | head -n 1) (git $(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo '?')$( [ -n "$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ] && echo ' + uncommitted changes'))"
echo "registry: $("$REGISTRY_BIN" --version 2>/dev/null | head -n 1) on 127.0.0.1 (plain HTTP, filesystem storage)"
echo "skopeo  : $(skopeo --version)"
echo "oras    : $ORAS_NOTE"
echo "data    : $COUNT files, $(du -sb --apparent-size "$DATA/migrations" | awk '{ printf "%.1f MB", $1/1e6 }') of SQL; release = $(awk -v b="$LAYER_BYTES" 'BEGIN { printf "%.1f MB", b/1e6 }') (tarball layer + config + manifest)"
echo "runs    : $RUNS per tool; each run starts a fresh registry (empty storage, new port); median reported"
echo
printf '%-22s  %13s  %12s  %14s  %s\n' "operation" "median wall s" "peak RSS MiB" "vs squizzle" "per run: wall s / RSS MiB"
row() { # NAME REFERENCE
    local name=$1 ref=$2 w r rw rr
    # shellcheck disable=SC2086
    w=$(median ${WALLS[$name]:-}); r=$(median ${RSSS[$name]:-})
    # shellcheck disable=SC2086
    rw=$(median ${WALLS[$ref]:-}); rr=$(median ${RSSS[$ref]:-})
    local vs="—"
    [ "$name" = "$ref" ] || vs="$(ratio "$w" "$rw") / $(ratio "$r" "$rr")"
    printf '%-22s  %13s  %12s  %14s  %s / %s\n' "$name" "$w" "$(mib "$r")" "$vs" "${WALLS[$name]:-} " \
        "$(for k in ${RSSS[$name]:-}; do printf '%.0f ' "$(awk -v k="$k" 'BEGIN{print k/1024}')"; done)"
}
row "squizzle push" "squizzle push"
row "squizzle push again" "squizzle push"
row "squizzle pull" "squizzle pull"
row "skopeo push" "squizzle push"
row "skopeo pull" "squizzle pull"
[ -z "$ORAS_PY" ] || row "oras pull" "squizzle pull"
echo "(vs squizzle = wall ratio / RSS ratio against squizzle's push or pull; above 1.00x: slower / more memory than squizzle)"
[ -z "$FAILED" ] || echo "FAILED runs:$FAILED (see ${WORK#"$ROOT"/}/logs/transfer/)"
echo "logs: ${WORK#"$ROOT"/}/logs/transfer/"
