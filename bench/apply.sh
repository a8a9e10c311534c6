#!/usr/bin/env bash
# Benchmark of `squizzle apply` on a real drizzle-kit history (fixtures/dokploy-drizzle,
# 186 files) against psql and fraiseql-confiture, each on a fresh empty database of a
# private throwaway PostgreSQL 15 server. Prints figures and ratios; asserts nothing.
# See bench/README.md.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: bash bench/apply.sh [--runs N] [--rebuild]

Applies fixtures/dokploy-drizzle/ (186 drizzle-kit migrations, journal order) to a
fresh empty PostgreSQL database per run and reports the median wall time and peak
RSS of:
  a) squizzle apply 1.0.0           (release built once with `squizzle build 1.0.0`)
  b) psql -f per file               (186 invocations of psql -v ON_ERROR_STOP=1 -X -q -f FILE)
  c) psql -1 -f concatenated        (one invocation, one transaction)
  d) confiture migrate up           (PyPI fraiseql-confiture, in bench/.work/venv)
  e) squizzle apply 1.0.0 when 1.0.0 is already applied (no-op), and squizzle verify 1.0.0
and checks that every run's schema (pg_dump --schema-only) equals the psql result.

Options:
  --runs N     timed runs per tool; the median is reported (default 5)
  --rebuild    run `cargo build --release` even if target/release/squizzle exists
  -h, --help   show this text

Environment:
  SQUIZZLE_BIN  binary to measure instead of target/release/squizzle (no cargo build)
  PG_BIN        PostgreSQL server binaries (default /usr/lib/postgresql/15/bin)

Starts its own PostgreSQL server (127.0.0.1, a free port, data dir in /dev/shm when
there is room, fsync=off) and stops it on exit. As root, initdb/postgres run as the
`postgres` user via setpriv. Needs python3 (with venv, for confiture), GNU time at
/usr/bin/time. Work files and logs: bench/.work/ (git-ignored).
This is a measurement, not a test: it exits 0 whatever the figures are (1 only when
squizzle itself or the setup fails).
EOF
}

RUNS=5
REBUILD=0
while [ $# -gt 0 ]; do
    case "$1" in
        --runs)
            [ $# -ge 2 ] || { echo "error: --runs needs a value" >&2; usage >&2; exit 2; }
            RUNS=$2; shift 2 ;;
        --runs=*) RUNS=${1#--runs=}; shift ;;
        --rebuild) REBUILD=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "error: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
case "$RUNS" in
    ''|*[!0-9]*|0) echo "error: --runs must be a positive integer, got '$RUNS'" >&2; exit 2 ;;
esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
HELPERS=$BENCH/apply_helpers
WORK=$BENCH/.work
LOGS=$WORK/logs/apply
BIN=${SQUIZZLE_BIN:-$ROOT/target/release/squizzle}
FIXTURE=$ROOT/fixtures/dokploy-drizzle
EXPECTED=$ROOT/fixtures/dokploy-drizzle.expected-schema.sql
VENV=$WORK/venv
TIME=/usr/bin/time
VERSION=1.0.0
EPOCH=1700000000

# The caller's connection settings must not leak into any tool: every tool gets the URL.
unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGPASSWORD PGPASSFILE PGOPTIONS PGSSLMODE \
    PGSERVICE PGSERVICEFILE PGCONNECT_TIMEOUT PGAPPNAME DATABASE_URL CONFITURE_DATABASE_URL \
    SQUIZZLE_CONFIG SQUIZZLE_ENV 2>/dev/null || true

for tool in python3 awk sort; do
    command -v "$tool" >/dev/null || { echo "error: '$tool' not found" >&2; exit 1; }
done
if ! [ -x "$TIME" ] || ! "$TIME" --version 2>&1 | grep -q 'GNU'; then
    echo "error: GNU time is needed at $TIME (Debian: apt-get install time)" >&2
    exit 1
fi
[ -f "$FIXTURE/meta/_journal.json" ] || { echo "error: $FIXTURE/meta/_journal.json not found" >&2; exit 1; }
[ -n "${EPOCHREALTIME:-}" ] || { echo "error: bash 5 is needed (EPOCHREALTIME)" >&2; exit 1; }

# shellcheck source=bench/apply_helpers/pg.sh
source "$HELPERS/pg.sh"

log() { echo "[bench] $*" >&2; }

mkdir -p "$WORK/tmp" "$LOGS"
rm -f "$LOGS"/*.log "$LOGS"/*.diff 2>/dev/null || true
RUN_DIR=$(mktemp -d "$WORK/tmp/apply.XXXXXX")
# squizzle apply reads the files it runs from the verified layer into memory and writes
# nothing to TMPDIR (it used to extract the release there); when TMPDIR is not tmpfs, the
# a') and e') rows repeat squizzle with TMPDIR on /dev/shm to show that it makes no difference.
TMPFS_TMP=""
if [ -d /dev/shm ] && [ -w /dev/shm ] && [ "$(findmnt -n -o FSTYPE --target "${TMPDIR:-/tmp}" 2>/dev/null | head -n 1)" != tmpfs ]; then
    TMPFS_TMP=$(mktemp -d /dev/shm/squizzle-bench-tmp.XXXXXX)
fi
cleanup() {
    pg_stop
    rm -rf "$RUN_DIR"
    [ -z "$TMPFS_TMP" ] || rm -rf "$TMPFS_TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- squizzle binary
if [ -n "${SQUIZZLE_BIN:-}" ]; then
    [ -x "$BIN" ] || { echo "error: SQUIZZLE_BIN=$BIN is not executable" >&2; exit 1; }
elif [ "$REBUILD" = 1 ] || ! [ -x "$BIN" ]; then
    log "cargo build --release ..."
    if ! (cd "$ROOT" && cargo build --release) >"$LOGS/cargo-build.log" 2>&1; then
        echo "error: cargo build --release failed; last lines of $LOGS/cargo-build.log:" >&2
        tail -n 25 "$LOGS/cargo-build.log" >&2
        exit 1
    fi
    tail -n 1 "$LOGS/cargo-build.log" >&2
fi

# Measure a private copy: other work in this tree may rebuild target/release/squizzle
# while the benchmark runs, and every run must use the same binary.
BIN_SRC=$BIN
mkdir -p "$RUN_DIR/bin"
cp -p "$BIN_SRC" "$RUN_DIR/bin/squizzle"
BIN=$RUN_DIR/bin/squizzle

squizzle_ident() {
    local v commit dirty=""
    v=$("$BIN" --version 2>/dev/null | head -n 1) || v="(--version failed)"
    if commit=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null); then
        if [ -n "$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]; then
            dirty=" + uncommitted changes in src/Cargo.* (the binary may include some of them)"
        fi
    else
        commit="no commit yet"
    fi
    echo "$v (git $commit$dirty; binary ${BIN_SRC#"$ROOT"/} built $(date -u -r "$BIN" '+%Y-%m-%d %H:%M:%SZ'), sha256 $(sha256sum "$BIN" | cut -c1-12))"
}

# ---------------------------------------------------------------- confiture (d)
CONFITURE=""
CONFITURE_SKIP=""
install_confiture() {
    if [ -x "$VENV/bin/confiture" ]; then
        CONFITURE=$VENV/bin/confiture
        return
    fi
    log "installing fraiseql-confiture into ${VENV#"$ROOT"/} ..."
    rm -rf "$VENV"
    if ! python3 -m venv "$VENV" >"$LOGS/confiture-install.log" 2>&1; then
        CONFITURE_SKIP="python3 -m venv failed: $(tail -n 3 "$LOGS/confiture-install.log" | tr '\n' ' ')"
        return
    fi
    if ! "$VENV/bin/pip" install --disable-pip-version-check fraiseql-confiture \
        >>"$LOGS/confiture-install.log" 2>&1; then
        CONFITURE_SKIP="pip install fraiseql-confiture failed: $(grep -E 'ERROR|error' "$LOGS/confiture-install.log" | tail -n 3 | tr '\n' ' ')"
        return
    fi
    if ! [ -x "$VENV/bin/confiture" ]; then
        CONFITURE_SKIP="pip installed fraiseql-confiture but there is no $VENV/bin/confiture"
        return
    fi
    CONFITURE=$VENV/bin/confiture
}
install_confiture
if [ -n "$CONFITURE_SKIP" ]; then
    log "skipping confiture: $CONFITURE_SKIP"
fi

# ---------------------------------------------------------------- corpus copies
CORPUS=$RUN_DIR/corpus
mkdir -p "$CORPUS"
mapfile -t FILES < <(python3 "$HELPERS/corpus.py" list "$FIXTURE")
python3 "$HELPERS/corpus.py" list "$FIXTURE" >"$CORPUS/files.txt"
python3 "$HELPERS/corpus.py" concat "$FIXTURE" "$CORPUS/all.sql"
NFILES=${#FILES[@]}
NBYTES=$(cat "${FILES[@]}" | wc -c)

# squizzle project: the fixture as drizzle/, built once.
SQZ_PROJ=$RUN_DIR/squizzle-project
mkdir -p "$SQZ_PROJ"
cp -a "$FIXTURE" "$SQZ_PROJ/drizzle"
printf '[project]\nmigrations = "drizzle"\n' >"$SQZ_PROJ/squizzle.toml"
log "squizzle build $VERSION (once, untimed) ..."
if ! (cd "$SQZ_PROJ" && GIT_CEILING_DIRECTORIES=$WORK/tmp SOURCE_DATE_EPOCH=$EPOCH \
    "$BIN" build "$VERSION") >"$LOGS/squizzle-build.log" 2>&1; then
    echo "error: squizzle build $VERSION failed; its output:" >&2
    sed 's/^/    | /' "$LOGS/squizzle-build.log" >&2
    exit 1
fi

# confiture project: db/migrations/NNNN_name.up.sql (byte-identical) + NNNN_name.down.sql.
CFT_PROJ=$RUN_DIR/confiture-project
CFT_CHANGES=""
if [ -n "$CONFITURE" ]; then
    mkdir -p "$CFT_PROJ"
    python3 "$HELPERS/corpus.py" confiture "$FIXTURE" "$CFT_PROJ" >/dev/null
    same=0
    for f in "${FILES[@]}"; do
        b=$(basename "$f" .sql)
        cmp -s "$f" "$CFT_PROJ/db/migrations/$b.up.sql" && same=$((same + 1))
    done
    CFT_CHANGES="$same/$NFILES .up.sql byte-identical to the fixture files"
fi

# ---------------------------------------------------------------- server
log "starting a private PostgreSQL server ..."
pg_start
PG_VERSION=$(pg_psql postgres -At -c 'SHOW server_version')
log "postgres $PG_VERSION on 127.0.0.1:$PG_PORT (pid $PG_PID, data dir $PG_DIR)"

# ---------------------------------------------------------------- timed commands
# tool_cmd TOOL URL -> sets CWD and CMD (array) for that tool against URL.
tool_cmd() {
    local tool=$1 url=$2
    case "$tool" in
        squizzle|squizzle-noop)
            CWD=$SQZ_PROJ; CMD=(env DATABASE_URL="$url" "$BIN" apply "$VERSION") ;;
        squizzle-tmpfs|squizzle-noop-tmpfs)
            CWD=$SQZ_PROJ; CMD=(env DATABASE_URL="$url" TMPDIR="$TMPFS_TMP" "$BIN" apply "$VERSION") ;;
        squizzle-verify)
            CWD=$SQZ_PROJ; CMD=("$BIN" verify "$VERSION") ;;
        psql-files)
            CWD=$RUN_DIR; CMD=(bash "$HELPERS/psql_each.sh" "$PG_BIN/psql" "$CORPUS/files.txt" "$url") ;;
        psql-single)
            CWD=$RUN_DIR; CMD=("$PG_BIN/psql" -v ON_ERROR_STOP=1 -X -q -1 -f "$CORPUS/all.sql" -d "$url") ;;
        confiture)
            CWD=$CFT_PROJ; CMD=("$CONFITURE" migrate up --database-url "$url") ;;
        *) echo "internal error: unknown tool $tool" >&2; exit 1 ;;
    esac
}

# run_timed LOG TOOL URL -> sets R_WALL (s), R_RSS (KiB), R_RC. Wall from bash's
# EPOCHREALTIME around GNU time (ms resolution; time's own %e has only 10 ms), peak RSS
# from GNU time's %M: the largest single process among the command and its children.
run_timed() {
    local logf=$1 tool=$2 url=$3 tf t0 t1
    tool_cmd "$tool" "$url"
    tf=$RUN_DIR/time.out
    rm -f "$tf"
    sync # flush earlier writes outside the timed region
    R_RC=0
    t0=$EPOCHREALTIME
    (cd "$CWD" && "$TIME" -o "$tf" -f '%e %M' "${CMD[@]}") >"$logf" 2>&1 || R_RC=$?
    t1=$EPOCHREALTIME
    R_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    R_RSS=$( { tail -n 1 "$tf" 2>/dev/null || echo "0 0"; } | awk '{ print $2 + 0 }')
}

# ---------------------------------------------------------------- schema check
REF_SCHEMA=$RUN_DIR/reference.sql
CFT_EXCLUDED=""
# check_schema TOOL DB RUN -> sets SCHEMA_RESULT to yes or no; a diff is kept in the logs.
check_schema() {
    local tool=$1 db=$2 run=$3 out t args=()
    out=$RUN_DIR/schema-$tool.sql
    if [ "$tool" = confiture ]; then
        # confiture's own bookkeeping: every table with "confiture" in its name
        # (1.29.0: public.tb_confiture, public.tb_confiture_steps, public.confiture_lock_holder).
        while read -r t; do
            [ -n "$t" ] || continue
            args+=("--exclude-table=$t")
            case " $CFT_EXCLUDED " in *" $t "*) ;; *) CFT_EXCLUDED+="$t " ;; esac
        done < <(pg_psql "$db" -At -c "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename)
                 FROM pg_tables WHERE tablename LIKE '%confiture%' ORDER BY 1")
        if [ -n "$(pg_psql "$db" -At -c "SELECT 1 FROM pg_namespace WHERE nspname LIKE '%confiture%'")" ]; then
            args+=("--exclude-schema=*confiture*")
            case " $CFT_EXCLUDED " in *" schema:*confiture* "*) ;; *) CFT_EXCLUDED+="schema:*confiture* " ;; esac
        fi
    fi
    pg_schema_dump "$db" "$out" "${args[@]}"
    if diff -u "$REF_SCHEMA" "$out" >"$LOGS/schema-$tool-run$run.diff"; then
        rm -f "$LOGS/schema-$tool-run$run.diff"
        SCHEMA_RESULT=yes
    else
        SCHEMA_RESULT=no
    fi
}

# Reference: psql -f per file, untimed (also warms the page cache and the server).
log "reference run (psql -f per file, untimed) ..."
pg_fresh_db bench_reference
run_timed "$LOGS/reference.log" psql-files "$(pg_url bench_reference)"
if [ "$R_RC" != 0 ]; then
    echo "error: the reference psql run failed (exit $R_RC); its output:" >&2
    tail -n 30 "$LOGS/reference.log" | sed 's/^/    | /' >&2
    exit 1
fi
pg_schema_dump bench_reference "$REF_SCHEMA"
REF_VS_FIXTURE="not checked (${EXPECTED#"$ROOT"/} missing)"
if [ -f "$EXPECTED" ]; then
    if diff -u <(grep -v -E '^\\(un)?restrict ' "$EXPECTED") "$REF_SCHEMA" >"$LOGS/reference-vs-fixture.diff"; then
        REF_VS_FIXTURE="yes"
        rm -f "$LOGS/reference-vs-fixture.diff"
    else
        REF_VS_FIXTURE="NO (see ${LOGS#"$ROOT"/}/reference-vs-fixture.diff)"
    fi
fi
pg_drop_db bench_reference

# ---------------------------------------------------------------- (a)-(d)
TOOLS=(squizzle)
if [ -n "$TMPFS_TMP" ]; then TOOLS+=(squizzle-tmpfs); fi
TOOLS+=(psql-files psql-single)
if [ -n "$CONFITURE" ]; then TOOLS+=(confiture); fi
declare -A WALLS RSSS SCHEMA_OK FAILED FAILMSG
SQUIZZLE_FAILED=0

record_failure() { # TOOL RUN RC LOG
    local tool=$1 run=$2 rc=$3 logf=$4
    FAILED[$tool]=1
    FAILMSG[$tool]="run $run exited $rc; last lines of ${logf#"$ROOT"/}:"$'\n'"$(tail -n 15 "$logf" | sed 's/^/    | /')"
    log "$tool run $run FAILED (exit $rc); see $logf"
    case "$tool" in squizzle*) SQUIZZLE_FAILED=1 ;; esac
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# One untimed warm-up run per tool (page cache, Python bytecode, first connections).
for tool in "${TOOLS[@]}"; do
    log "warm-up: $tool (untimed)"
    pg_fresh_db bench_warmup
    run_timed "$LOGS/$tool-warmup.log" "$tool" "$(pg_url bench_warmup)"
    [ "$R_RC" = 0 ] || record_failure "$tool" warm-up "$R_RC" "$LOGS/$tool-warmup.log"
    pg_drop_db bench_warmup
done

for ((i = 1; i <= RUNS; i++)); do
    for tool in "${TOOLS[@]}"; do # interleaved, so drift hits every tool alike
        [ -z "${FAILED[$tool]:-}" ] || continue
        db="bench_${tool//-/_}_$i"
        pg_fresh_db "$db"
        logf=$LOGS/$tool-run$i.log
        run_timed "$logf" "$tool" "$(pg_url "$db")"
        if [ "$R_RC" != 0 ]; then
            record_failure "$tool" "$i" "$R_RC" "$logf"
            pg_drop_db "$db"
            continue
        fi
        check_schema "$tool" "$db" "$i"
        WALLS[$tool]+="$R_WALL "; RSSS[$tool]+="$R_RSS "
        if [ "$SCHEMA_RESULT" = yes ]; then SCHEMA_OK[$tool]=$(( ${SCHEMA_OK[$tool]:-0} + 1 )); fi
        log "run $i/$RUNS $tool: ${R_WALL}s wall, $((R_RSS / 1024)) MiB peak RSS, schema identical: $SCHEMA_RESULT"
        pg_drop_db "$db"
    done
done

# ---------------------------------------------------------------- (e) nothing pending
NOOP_TOOLS=(squizzle-noop)
if [ -n "$TMPFS_TMP" ]; then NOOP_TOOLS+=(squizzle-noop-tmpfs); fi
NOOP_TOOLS+=(squizzle-verify)
NOOP_WARN=""
if [ "$SQUIZZLE_FAILED" = 0 ]; then
    pg_fresh_db bench_noop
    NOOP_URL=$(pg_url bench_noop)
    log "no-op: applying $VERSION once (untimed) to bench_noop"
    run_timed "$LOGS/squizzle-noop-setup.log" squizzle "$NOOP_URL"
    if [ "$R_RC" != 0 ]; then
        record_failure squizzle-noop setup "$R_RC" "$LOGS/squizzle-noop-setup.log"
    else
        for tool in "${NOOP_TOOLS[@]}"; do
            run_timed "$LOGS/$tool-warmup.log" "$tool" "$NOOP_URL"
            [ "$R_RC" = 0 ] || record_failure "$tool" warm-up "$R_RC" "$LOGS/$tool-warmup.log"
        done
        for ((i = 1; i <= RUNS; i++)); do
            for tool in "${NOOP_TOOLS[@]}"; do
                [ -z "${FAILED[$tool]:-}" ] || continue
                logf=$LOGS/$tool-run$i.log
                run_timed "$logf" "$tool" "$NOOP_URL"
                if [ "$R_RC" != 0 ]; then
                    record_failure "$tool" "$i" "$R_RC" "$logf"
                    continue
                fi
                WALLS[$tool]+="$R_WALL "; RSSS[$tool]+="$R_RSS "
                if [ "$tool" != squizzle-verify ] && ! grep -q 'Plan: 0 to run' "$logf"; then
                    NOOP_WARN+="$tool run $i did not print 'Plan: 0 to run' (see its log); "
                fi
                log "no-op run $i/$RUNS $tool: ${R_WALL}s wall, $((R_RSS / 1024)) MiB peak RSS"
            done
        done
        check_schema squizzle-noop bench_noop 1
        n=$(wc -w <<<"${WALLS[squizzle-noop]:-}")
        SCHEMA_OK[squizzle-noop]=$([ "$SCHEMA_RESULT" = yes ] && echo "$n" || echo 0)
        n=$(wc -w <<<"${WALLS[squizzle-noop-tmpfs]:-}")
        SCHEMA_OK[squizzle-noop-tmpfs]=$([ "$SCHEMA_RESULT" = yes ] && echo "$n" || echo 0)
    fi
    pg_drop_db bench_noop
fi
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report
median() { # numbers... -> median (mean of the two middle ones for an even count)
    printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {
        if (NR % 2) printf "%.3f", a[(NR+1)/2]; else printf "%.3f", (a[NR/2]+a[NR/2+1])/2 }'
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {
    if (b <= 0) { printf "n/a"; exit }
    r = a / b; if (r < 0.1) printf "%.3fx", r; else printf "%.2fx", r }'; }
fstype() { { findmnt -n -o FSTYPE --target "$1" 2>/dev/null || echo "?"; } | head -n 1; }

declare -A LABEL=(
    [squizzle]="a) squizzle apply $VERSION"
    [squizzle-tmpfs]="a') same, TMPDIR on tmpfs"
    [psql-files]="b) psql -f per file ($NFILES x)"
    [psql-single]="c) psql -1, concatenated"
    [confiture]="d) confiture migrate up"
    [squizzle-noop]="e) squizzle apply, no-op"
    [squizzle-noop-tmpfs]="e') same, TMPDIR on tmpfs"
    [squizzle-verify]="e) squizzle verify $VERSION"
)
declare -A MW MR
for tool in "${TOOLS[@]}" "${NOOP_TOOLS[@]}"; do
    if [ -n "${WALLS[$tool]:-}" ]; then
        # shellcheck disable=SC2086
        MW[$tool]=$(median ${WALLS[$tool]})
        # shellcheck disable=SC2086
        MR[$tool]=$(median ${RSSS[$tool]})
    fi
done

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
os=$( . /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-?}" ) || os="?"
tmp=${TMPDIR:-/tmp}

echo
echo "=== squizzle apply benchmark ==="
echo "machine  : nproc=$(nproc), CPU: ${cpu:-unknown}, RAM $(awk '/MemTotal/ { printf "%.1f GiB", $2/1048576 }' /proc/meminfo), $os, kernel $(uname -r)"
echo "load avg : $LOAD_START before, $LOAD_END after (1/5/15 min; above ~0.5 before = other work shared the $(nproc) cores, figures are noisier)"
echo "squizzle : $(squizzle_ident)"
echo "postgres : $PG_VERSION, private server on 127.0.0.1:$PG_PORT, data dir on $(fstype "$PG_DIR") ($PG_DIR), fsync=off, trust auth; every tool connects over TCP loopback"
echo "clients  : $("$PG_BIN/psql" --version)$( [ -n "$CONFITURE" ] && echo "; $("$CONFITURE" --version 2>/dev/null | head -n 1) (python $("$VENV/bin/python" -c 'import platform; print(platform.python_version())'))")"
echo "workload : ${FIXTURE#"$ROOT"/}: $NFILES files, $NBYTES bytes, journal order; a fresh empty database (CREATE DATABASE ... TEMPLATE template0) per run"
echo "runs     : $RUNS timed per tool after 1 untimed warm-up, interleaved; median reported; TMPDIR=$tmp ($(fstype "$tmp"))"
echo
printf '%-30s  %13s  %12s  %9s  %9s  %-16s  %s\n' tool "median wall s" "peak RSS MiB" "wall/sqz" "RSS/sqz" "schema identical" "per run: wall s"
for tool in "${TOOLS[@]}" "${NOOP_TOOLS[@]}"; do
    if [ -z "${MW[$tool]:-}" ]; then
        printf '%-30s  %13s  %12s  %9s  %9s  %-16s  %s\n' "${LABEL[$tool]}" failed - - - - "(see below)"
        continue
    fi
    n=$(wc -w <<<"${WALLS[$tool]}")
    case "$tool" in
        squizzle-verify) sch="n/a (no db)" ;;
        *) if [ "${SCHEMA_OK[$tool]:-0}" = "$n" ]; then sch="yes ($n/$n)"; else sch="NO (${SCHEMA_OK[$tool]:-0}/$n)"; fi ;;
    esac
    if [ -n "${MW[squizzle]:-}" ]; then
        rw=$(ratio "${MW[$tool]}" "${MW[squizzle]}"); rr=$(ratio "${MR[$tool]}" "${MR[squizzle]}")
    else
        rw=n/a; rr=n/a
    fi
    printf '%-30s  %13s  %12s  %9s  %9s  %-16s  %s\n' "${LABEL[$tool]}" "${MW[$tool]}" "$(mib "${MR[$tool]}")" \
        "$rw" "$rr" "$sch" "${WALLS[$tool]% }"
done
echo "(wall/sqz, RSS/sqz = this row's median / squizzle apply's (row a); below 1.00x = less than squizzle."
echo " peak RSS is the largest single client process; the PostgreSQL server's memory is not counted.)"
echo
echo "schema identical = pg_dump --schema-only --no-owner --exclude-schema=squizzle of each run's"
echo "database, \\restrict lines dropped, equals the psql -f per file reference (the no-op row checks"
echo "its one database after all no-op runs)."
echo "psql reference equals fixtures/dokploy-drizzle.expected-schema.sql: $REF_VS_FIXTURE"
for tool in squizzle squizzle-tmpfs confiture; do
    for ((i = 1; i <= RUNS; i++)); do
        if [ -f "$LOGS/schema-$tool-run$i.diff" ]; then
            echo "schema diff of $tool run $i: ${LOGS#"$ROOT"/}/schema-$tool-run$i.diff ($(grep -c '^[-+][^-+]' "$LOGS/schema-$tool-run$i.diff") lines differ)"
        fi
    done
done
echo
# Runs are interleaved, so run i of squizzle and of psql -1 ran next to each
# other: their ratio cancels most of the background load that moves medians.
if [ -n "${WALLS[squizzle]:-}" ] && [ -n "${WALLS[psql-single]:-}" ]; then
    read -ra SQZ_RUNS <<<"${WALLS[squizzle]}"
    read -ra PSQL_RUNS <<<"${WALLS[psql-single]}"
    if [ "${#SQZ_RUNS[@]}" = "${#PSQL_RUNS[@]}" ]; then
        PER_RUN=()
        for ((k = 0; k < ${#SQZ_RUNS[@]}; k++)); do
            PER_RUN+=("$(awk -v a="${SQZ_RUNS[k]}" -v b="${PSQL_RUNS[k]}" 'BEGIN { printf "%.3f", a / b }')")
        done
        echo "squizzle apply / psql -1 run by run: ${PER_RUN[*]}"
        echo "  median of the per-run ratios: $(median "${PER_RUN[@]}")x (below 1 = squizzle faster)"
    else
        echo "squizzle apply / psql -1 run by run: not comparable (a run of one of them failed)"
    fi
fi
if [ -n "${MW[squizzle]:-}" ] && [ -n "${MW[squizzle-noop]:-}" ]; then
    echo "squizzle fixed cost: a no-op apply (verify + connect + lock + plan) is $(ratio "${MW[squizzle-noop]}" "${MW[squizzle]}") of a full apply;"
    echo "  verify alone $(ratio "${MW[squizzle-verify]}" "${MW[squizzle]}")."
    [ -z "$NOOP_WARN" ] || echo "  WARNING: $NOOP_WARN"
fi
if [ -n "$TMPFS_TMP" ]; then
    echo "a') and e') repeat squizzle apply with TMPDIR on tmpfs. apply writes nothing to TMPDIR"
    echo "  ($(fstype "$tmp") here): any difference to a) and e) is noise."
fi
if [ -f "$LOGS/squizzle-run1.log" ]; then
    echo "squizzle's own summary (run 1): $(grep -E 'Applied [^ ]+ to' "$LOGS/squizzle-run1.log" | tail -n 1)"
fi
if [ -z "$CONFITURE" ]; then
    echo "confiture: skipped: $CONFITURE_SKIP"
else
    echo "confiture: project layout db/migrations/; each NNNN_name.sql copied as NNNN_name.up.sql ($CFT_CHANGES),"
    echo "  plus NNNN_name.down.sql = one comment line (confiture refuses an .up.sql without its .down.sql);"
    echo "  no config file: the DSN is passed with --database-url; defaults otherwise (lock, checksums)."
    echo "  Bookkeeping excluded from its schema dump: ${CFT_EXCLUDED% }"
    [ -n "$CFT_EXCLUDED" ] || echo "  (none found)"
    nt=$(grep -h -o 'Running migration [0-9]* in non-transactional mode' "$LOGS"/confiture-run1.log 2>/dev/null |
        awk '{ print $3 }' | tr '\n' ' ' | sed 's/ $//') || true
    if [ -n "$nt" ]; then
        echo "  It ran $(wc -w <<<"$nt") migrations outside a transaction (its own choice, ALTER TYPE ... ADD VALUE): $nt"
    fi
fi
for tool in "${TOOLS[@]}" squizzle-noop "${NOOP_TOOLS[@]}"; do
    if [ -n "${FAILMSG[$tool]:-}" ]; then
        echo
        echo "FAILED: ${LABEL[$tool]:-$tool}: ${FAILMSG[$tool]}"
        FAILMSG[$tool]=""
    fi
done
echo
echo "logs of every run: ${LOGS#"$ROOT"/}/"
[ "$SQUIZZLE_FAILED" = 0 ] || exit 1
exit 0
