#!/usr/bin/env bash
# Benchmark of `squizzle build` against a hand-made release (tar -czf + sha256sum).
# Prints figures and ratios; asserts nothing. See bench/README.md.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: bash bench/build.sh [--runs N] [--rebuild] [--baseline-only]

Times `squizzle build 1.0.0` on two generated migration trees (2,000 files /
~200 MB and 500 files / ~50 MB) and compares wall time and peak RSS with the
baseline a hand-made release would do:
    tar -czf out.tar.gz migrations && sha256sum migrations/*.sql out.tar.gz

Options:
  --runs N         timed runs per (size, tool); the median is reported (default 3)
  --rebuild        run `cargo build --release` even if target/release/squizzle exists
  --baseline-only  measure only the baseline (no squizzle binary needed)
  -h, --help       show this text

Environment:
  SQUIZZLE_BIN     binary to measure instead of target/release/squizzle (no cargo build)

Generated data is cached under bench/.work/ (git-ignored); delete that folder to
regenerate. Needs python3, GNU time at /usr/bin/time, tar, gzip, sha256sum.
This is a measurement, not a test: it exits 0 whatever the figures are.
EOF
}

RUNS=3
REBUILD=0
BASELINE_ONLY=0
while [ $# -gt 0 ]; do
    case "$1" in
        --runs)
            [ $# -ge 2 ] || { echo "error: --runs needs a value" >&2; usage >&2; exit 2; }
            RUNS=$2; shift 2 ;;
        --runs=*) RUNS=${1#--runs=}; shift ;;
        --rebuild) REBUILD=1; shift ;;
        --baseline-only) BASELINE_ONLY=1; shift ;;
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
BIN=${SQUIZZLE_BIN:-$ROOT/target/release/squizzle}
TIME=/usr/bin/time
SEED=20241122
EPOCH=1700000000
VERSION=1.0.0

for tool in python3 tar gzip sha256sum; do
    command -v "$tool" >/dev/null || { echo "error: '$tool' not found" >&2; exit 1; }
done
if ! [ -x "$TIME" ] || ! "$TIME" --version 2>&1 | grep -q 'GNU'; then
    echo "error: GNU time is needed at $TIME (Debian: apt-get install time)" >&2
    exit 1
fi

mkdir -p "$WORK/data" "$WORK/tmp" "$WORK/logs"
cleanup() { rm -rf "$WORK"/tmp/run.* 2>/dev/null || true; }
trap cleanup EXIT

log() { echo "[bench] $*" >&2; }

# ---------------------------------------------------------------- data sets
# label:file count. Each file is ~100 KB (+-20 %); file i is the same in both.
SIZES=("200MB:2000" "50MB:500")

ensure_data() { # count -> prints data dir
    local count=$1 dir stamp
    dir=$WORK/data/m$count
    stamp=$(python3 "$BENCH/gen_migrations.py" --stamp --out "$dir" --count "$count" --seed "$SEED")
    if [ -f "$dir/STAMP" ] && [ "$(cat "$dir/STAMP")" = "$stamp" ] &&
        [ "$(find "$dir/migrations" -maxdepth 1 -name '*.sql' | wc -l)" -eq "$count" ]; then
        log "using cached data set $dir ($count files)"
    else
        log "generating $count migration files into $dir (seed $SEED) ..."
        python3 "$BENCH/gen_migrations.py" --out "$dir" --count "$count" --seed "$SEED" >&2
    fi
    echo "$dir"
}

# ---------------------------------------------------------------- squizzle binary
build_squizzle() {
    if [ -n "${SQUIZZLE_BIN:-}" ]; then
        [ -x "$BIN" ] || { echo "error: SQUIZZLE_BIN=$BIN is not executable" >&2; exit 1; }
        return
    fi
    if [ "$REBUILD" = 1 ] || ! [ -x "$BIN" ]; then
        log "cargo build --release ..."
        if ! (cd "$ROOT" && cargo build --release) >"$WORK/logs/cargo-build.log" 2>&1; then
            echo "error: cargo build --release failed; last lines of $WORK/logs/cargo-build.log:" >&2
            tail -n 25 "$WORK/logs/cargo-build.log" >&2
            echo "(rerun with --baseline-only to measure just the baseline)" >&2
            exit 1
        fi
        tail -n 1 "$WORK/logs/cargo-build.log" >&2
    fi
}

squizzle_ident() {
    local v commit dirty=""
    v=$("$BIN" --version 2>/dev/null | head -n 1) || v="(--version failed)"
    [ -n "$v" ] || v="(--version printed nothing)"
    if commit=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null); then
        if [ -n "$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]; then
            dirty=" + uncommitted changes in src/Cargo.*"
        fi
    else
        commit="no commit yet"
    fi
    echo "$v (git $commit$dirty; binary built $(date -u -r "$BIN" '+%Y-%m-%d %H:%M:%SZ'))"
}

# ---------------------------------------------------------------- one timed run
# new_project DATA_DIR -> prints a fresh project dir holding migrations/ and squizzle.toml.
new_project() {
    local data=$1 proj
    proj=$(mktemp -d "$WORK/tmp/run.XXXXXX")
    # Hard links: real files inside the project dir, no 200 MB copy per run.
    cp -al "$data/migrations" "$proj/migrations" 2>/dev/null || cp -a "$data/migrations" "$proj/migrations"
    printf '[project]\nmigrations = "migrations"\n' >"$proj/squizzle.toml"
    echo "$proj"
}

# run_one TOOL DATA_DIR LOG -> prints "wall_s maxrss_kib cpu_s output_bytes output_sha256"
run_one() {
    local tool=$1 data=$2 logf=$3 proj tf rc=0 out
    proj=$(new_project "$data")
    tf=$proj/.time
    sync # flush the previous run's writes outside the timed region
    case "$tool" in
        squizzle)
            rm -rf "$proj/db"
            # GIT_CEILING_DIRECTORIES: the project dir lies inside this repo's work tree;
            # without it squizzle would record this repo's HEAD as the artifact's source.
            (cd "$proj" && GIT_CEILING_DIRECTORIES=$WORK/tmp SOURCE_DATE_EPOCH=$EPOCH \
                "$TIME" -o "$tf" -f '%e %M %U %S' \
                env -u SQUIZZLE_CONFIG -u SQUIZZLE_ENV "$BIN" build "$VERSION") >"$logf" 2>&1 || rc=$?
            out=$proj/db/tarballs/squizzle-$VERSION.tar.gz
            if [ "$rc" -eq 0 ]; then
                for f in "$out" "$proj/db/tarballs/squizzle-$VERSION.manifest.json"; do
                    [ -s "$f" ] || { echo "error: squizzle build exited 0 but did not write $f" >&2; rc=1; }
                done
                [ -d "$proj/db/oci" ] || { echo "error: squizzle build exited 0 but $proj/db/oci is missing" >&2; rc=1; }
            fi
            ;;
        baseline)
            (cd "$proj" && "$TIME" -o "$tf" -f '%e %M %U %S' \
                bash -c 'tar -czf out.tar.gz migrations && sha256sum migrations/*.sql out.tar.gz >SHA256SUMS') \
                >"$logf" 2>&1 || rc=$?
            out=$proj/out.tar.gz
            ;;
    esac
    if [ "$rc" -ne 0 ]; then
        echo "error: $tool run failed (exit $rc) in $proj; its output ($logf):" >&2
        sed 's/^/    | /' "$logf" | tail -n 40 >&2
        [ -f "$tf" ] && sed 's/^/    time: /' "$tf" >&2
        rm -rf "$WORK/failed-$tool"
        mv "$proj" "$WORK/failed-$tool"
        echo "(project dir kept for inspection: $WORK/failed-$tool)" >&2
        exit 1
    fi
    # GNU time writes "Command exited with non-zero status" lines before the figures; take the last.
    echo "$(tail -n 1 "$tf" | awk '{ printf "%s %s %.2f", $1, $2, $3 + $4 }') $(stat -c %s "$out") $(sha256sum "$out" | cut -c1-64)"
    rm -rf "$proj"
}

median() { # numbers... -> median (mean of the two middle ones for an even count)
    printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {
        if (NR % 2) printf "%s", a[(NR+1)/2]; else printf "%.2f", (a[NR/2]+a[NR/2+1])/2 }'
}

# ---------------------------------------------------------------- main
TOOLS=(baseline squizzle)
[ "$BASELINE_ONLY" = 1 ] && TOOLS=(baseline)
[ "$BASELINE_ONLY" = 1 ] || build_squizzle

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A DATA WALL RSS CPU OUTB SHAS RAW_WALL RAW_RSS
for spec in "${SIZES[@]}"; do
    label=${spec%%:*}; count=${spec#*:}
    DATA[$label]=$(ensure_data "$count")
done

for spec in "${SIZES[@]}"; do
    label=${spec%%:*}
    data=${DATA[$label]}
    log "$label: warming the page cache"
    cat "$data"/migrations/*.sql >/dev/null
    declare -A walls=() rsss=() cpus=() shas=()
    for ((i = 1; i <= RUNS; i++)); do
        for tool in "${TOOLS[@]}"; do # interleaved, so drift hits both tools alike
            res=$(run_one "$tool" "$data" "$WORK/logs/$tool-$label-run$i.log")
            read -r w m c b s <<<"$res"
            log "$label $tool run $i/$RUNS: ${w}s wall, ${c}s CPU, $((m / 1024)) MiB peak RSS, output $b bytes"
            walls[$tool]+="$w "; rsss[$tool]+="$m "; cpus[$tool]+="$c "; shas[$tool]+="$s "
            OUTB[$label,$tool]=$b
        done
    done
    for tool in "${TOOLS[@]}"; do
        # shellcheck disable=SC2086
        WALL[$label,$tool]=$(median ${walls[$tool]})
        # shellcheck disable=SC2086
        RSS[$label,$tool]=$(median ${rsss[$tool]})
        # shellcheck disable=SC2086
        CPU[$label,$tool]=$(median ${cpus[$tool]})
        RAW_WALL[$label,$tool]=${walls[$tool]% }
        RAW_RSS[$label,$tool]=$(for k in ${rsss[$tool]}; do printf '%.1f ' "$(awk -v k="$k" 'BEGIN{print k/1024}')"; done)
        SHAS[$label,$tool]=$(printf '%s\n' ${shas[$tool]} | sort -u | wc -l)
    done
    unset walls rsss cpus shas
done

# ---------------------------------------------------------------- report
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else printf "n/a" }'; }
data_bytes() { du -sb --apparent-size "$1/migrations" | cut -f1; }

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
os=$( . /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-?}" ) || os="?"
[ -f /etc/debian_version ] && os="$os ($(cat /etc/debian_version))"

echo
echo "=== squizzle build benchmark ==="
echo "machine : nproc=$(nproc), CPU: ${cpu:-unknown}, RAM $(awk '/MemTotal/ { printf "%.1f GiB", $2/1048576 }' /proc/meminfo)"
echo "os      : $os, kernel $(uname -r)"
echo "load avg: $LOAD_START before, $(cut -d' ' -f1-3 /proc/loadavg) after (1/5/15 min; well above 0 before = other work competed for the $(nproc) cores)"
if [ "$BASELINE_ONLY" = 1 ]; then
    echo "squizzle: not measured (--baseline-only)"
else
    echo "squizzle: $(squizzle_ident)"
    echo "command : cd <project> && SOURCE_DATE_EPOCH=$EPOCH $BIN build $VERSION"
fi
echo "baseline: tar -czf out.tar.gz migrations && sha256sum migrations/*.sql out.tar.gz  (gzip -6, $(tar --version | head -n 1), $(gzip --version | head -n 1))"
echo "runs    : $RUNS per size and tool, interleaved, page cache warm; median reported"
for spec in "${SIZES[@]}"; do
    label=${spec%%:*}; count=${spec#*:}
    echo "data    : $label = $count files, $(mb "$(data_bytes "${DATA[$label]}")") MB (seed $SEED, ${DATA[$label]#"$ROOT"/})"
done
echo
printf '%-6s  %-9s  %13s  %13s  %12s  %9s  %5s  %s\n' size tool "median wall s" "peak RSS MiB" "CPU s (u+s)" "output MB" "ratio" "per run: wall s / RSS MiB"
for spec in "${SIZES[@]}"; do
    label=${spec%%:*}
    in=$(data_bytes "${DATA[$label]}")
    for tool in "${TOOLS[@]}"; do
        printf '%-6s  %-9s  %13s  %13s  %12s  %9s  %5s  %s / %s\n' "$label" "$tool" "${WALL[$label,$tool]}" \
            "$(mib "${RSS[$label,$tool]}")" "${CPU[$label,$tool]}" "$(mb "${OUTB[$label,$tool]}")" \
            "$(ratio "$in" "${OUTB[$label,$tool]}" | tr -d x)" "${RAW_WALL[$label,$tool]}" "${RAW_RSS[$label,$tool]% }"
    done
done
echo "(ratio = input bytes / compressed output bytes; CPU s = user + system time of all processes, median)"

if [ "$BASELINE_ONLY" = 0 ]; then
    echo
    echo "squizzle / baseline (below 1.00x: squizzle is faster / smaller):"
    printf '%-6s  %8s  %8s  %8s  %s\n' size "wall" "CPU" memory "squizzle tarball identical across runs"
    for spec in "${SIZES[@]}"; do
        label=${spec%%:*}
        same=yes; [ "${SHAS[$label,squizzle]}" = 1 ] || same="NO (${SHAS[$label,squizzle]} distinct digests)"
        printf '%-6s  %8s  %8s  %8s  %s\n' "$label" \
            "$(ratio "${WALL[$label,squizzle]}" "${WALL[$label,baseline]}")" \
            "$(ratio "${CPU[$label,squizzle]}" "${CPU[$label,baseline]}")" \
            "$(ratio "${RSS[$label,squizzle]}" "${RSS[$label,baseline]}")" "$same"
    done
    echo
    big=${SIZES[0]%%:*}; small=${SIZES[1]%%:*}
    echo "memory vs artifact size: squizzle peak RSS $big / $small =" \
        "$(mib "${RSS[$big,squizzle]}") / $(mib "${RSS[$small,squizzle]}") MiB =" \
        "$(ratio "${RSS[$big,squizzle]}" "${RSS[$small,squizzle]}")" \
        "(input is $(ratio "$(data_bytes "${DATA[$big]}")" "$(data_bytes "${DATA[$small]}")") larger;" \
        "~1.00x means memory does not grow with the artifact)"
    echo "time vs artifact size  : squizzle wall $big / $small = $(ratio "${WALL[$big,squizzle]}" "${WALL[$small,squizzle]}")," \
        "baseline $(ratio "${WALL[$big,baseline]}" "${WALL[$small,baseline]}")"
fi
echo
echo "logs of every run: ${WORK#"$ROOT"/}/logs/"
