#!/usr/bin/env bash
# Benchmark of `squizzle apply` on a large generated release (2,000 files, ~200 MB of SQL,
# bench/gen_migrations.py, the data set of bench/verify.sh and bench/transfer.sh) against
# `psql -1` of the same files concatenated, each on a fresh empty database of a private
# throwaway PostgreSQL 15. Prints figures and ratios; asserts nothing. See bench/README.md.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: bash bench/apply_large.sh [--runs N]

  --runs N   timed runs per tool, interleaved (squizzle run k, then psql run k); default 3
Environment: SQUIZZLE_BIN (default target/release/squizzle), PG_BIN (default
/usr/lib/postgresql/15/bin). Needs python3, GNU time at /usr/bin/time, bash 5.
Reports per tool the median wall time and peak RSS, the median of the per-run ratios
squizzle / psql -1, and whether both databases end with the same schema and row counts.
USAGE
}

RUNS=3
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) [ $# -ge 2 ] || { usage >&2; exit 2; }; RUNS=$2; shift 2 ;;
        --runs=*) RUNS=${1#--runs=}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "error: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
case "$RUNS" in ''|*[!0-9]*|0) echo "error: --runs must be a positive integer, got '$RUNS'" >&2; exit 2 ;; esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
WORK=$BENCH/.work
TIME=/usr/bin/time
SEED=20241122
COUNT=2000
unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGPASSWORD PGPASSFILE PGOPTIONS PGSSLMODE \
    PGSERVICE PGSERVICEFILE DATABASE_URL SQUIZZLE_CONFIG SQUIZZLE_ENV 2>/dev/null || true
"$TIME" --version 2>&1 | grep -q GNU || { echo "error: GNU time is needed at $TIME" >&2; exit 1; }
[ -n "${EPOCHREALTIME:-}" ] || { echo "error: bash 5 is needed (EPOCHREALTIME)" >&2; exit 1; }

# shellcheck source=bench/apply_helpers/pg.sh
source "$BENCH/apply_helpers/pg.sh"
log() { echo "[bench] $*" >&2; }

mkdir -p "$WORK/tmp"
RUN_DIR=$(mktemp -d "$WORK/tmp/apply-large.XXXXXX")
cleanup() { pg_stop; rm -rf "$RUN_DIR"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

BIN_SRC=${SQUIZZLE_BIN:-$ROOT/target/release/squizzle}
if [ -z "${SQUIZZLE_BIN:-}" ] && ! [ -x "$BIN_SRC" ]; then
    log "building squizzle (cargo build --release) ..."
    (cd "$ROOT" && cargo build --release --locked) >&2
fi
mkdir -p "$RUN_DIR/bin" "$RUN_DIR/home"
cp -p "$BIN_SRC" "$RUN_DIR/bin/squizzle"
BIN=$RUN_DIR/bin/squizzle

DATA=$WORK/data/m$COUNT
# shellcheck source=bench/generated_data.sh
source "$BENCH/generated_data.sh"
ensure_generated_data "$DATA" "$COUNT" "$SEED"

PROJ=$RUN_DIR/proj
mkdir -p "$PROJ"
cp -r "$DATA/migrations" "$PROJ/migrations"
printf '[project]\nmigrations = "migrations"\n' >"$PROJ/squizzle.toml"
SQZ=(env -i "PATH=$PATH" "HOME=$RUN_DIR/home" "GIT_CEILING_DIRECTORIES=$RUN_DIR")
log "building the release (squizzle build 1.0.0) ..."
t0=$EPOCHREALTIME
(cd "$PROJ" && "${SQZ[@]}" SOURCE_DATE_EPOCH=1700000000 "$BIN" build 1.0.0 >"$RUN_DIR/build.log" 2>&1) ||
    { cat "$RUN_DIR/build.log" >&2; exit 1; }
BUILD_S=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
SQL_BYTES=$(cat "$PROJ"/migrations/*.sql | wc -c)
# psql -1 input: the files in order, each ended by a statement terminator on its own line.
ALL=$RUN_DIR/all.sql
for f in "$PROJ"/migrations/*.sql; do cat "$f"; printf '\n;\n'; done >"$ALL"

# One transaction creates 2,000 tables with their indexes and sequences: far more
# locks than the default 64 x max_connections slots hold, for psql -1 and squizzle alike.
PG_EXTRA_SETTINGS="-c max_locks_per_transaction=1024"
pg_start

# run TOOL URL -> R_WALL R_RSS (KiB) R_RC
run() {
    local tool=$1 url=$2 tf=$RUN_DIR/time.out t0
    rm -f "$tf"; sync; R_RC=0
    t0=$EPOCHREALTIME
    case "$tool" in
        squizzle) (cd "$PROJ" && "$TIME" -o "$tf" -f '%e %M' "${SQZ[@]}" DATABASE_URL="$url" "$BIN" apply 1.0.0) \
            >"$RUN_DIR/$tool.log" 2>&1 || R_RC=$? ;;
        psql) "$TIME" -o "$tf" -f '%e %M' "$PG_BIN/psql" -v ON_ERROR_STOP=1 -X -q -1 -f "$ALL" -d "$url" \
            >"$RUN_DIR/$tool.log" 2>&1 || R_RC=$? ;;
    esac
    R_WALL=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
    R_RSS=$(tail -n 1 "$tf" 2>/dev/null | awk '{ print $2 + 0 }')
}

# What the database ends with: the schema (squizzle's own excluded) and every table's row count.
state() {
    local db=$1 out=$2
    pg_schema_dump "$db" "$out.schema"
    pg_psql "$db" -At -c "SELECT string_agg(format('%s %s', t, (xpath('/row/c/text()',
        query_to_xml(format('SELECT count(*) AS c FROM %s', t), false, true, '')))[1]::text), E'\n' ORDER BY t)
        FROM (SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_tables
              WHERE schemaname NOT IN ('pg_catalog', 'information_schema', 'squizzle')) x" >"$out.rows"
}

declare -a SW SR PW PR RATIO
SAME=0
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for ((i = 1; i <= RUNS; i++)); do
    pg_fresh_db big_sqz; pg_fresh_db big_psql
    run squizzle "$(pg_url big_sqz)"
    [ "$R_RC" = 0 ] || { log "squizzle apply failed (exit $R_RC):"; tail -n 20 "$RUN_DIR/squizzle.log" >&2; exit 1; }
    SW+=("$R_WALL"); SR+=("$R_RSS")
    run psql "$(pg_url big_psql)"
    [ "$R_RC" = 0 ] || { log "psql -1 failed (exit $R_RC):"; tail -n 20 "$RUN_DIR/psql.log" >&2; exit 1; }
    PW+=("$R_WALL"); PR+=("$R_RSS")
    RATIO+=("$(awk -v a="${SW[-1]}" -v b="${PW[-1]}" 'BEGIN { printf "%.3f", a / b }')")
    state big_sqz "$RUN_DIR/sqz"; state big_psql "$RUN_DIR/psql"
    if cmp -s "$RUN_DIR/sqz.schema" "$RUN_DIR/psql.schema" && cmp -s "$RUN_DIR/sqz.rows" "$RUN_DIR/psql.rows"; then
        SAME=$((SAME + 1))
    fi
    log "run $i/$RUNS: squizzle ${SW[-1]} s ($((SR[-1] / 1024)) MiB), psql -1 ${PW[-1]} s ($((PR[-1] / 1024)) MiB)"
    pg_drop_db big_sqz; pg_drop_db big_psql
done
# Memory against the release's size: the first 500 files (~50 MB) as a release of
# their own, applied once; then the 2,000-file release applied to a database that
# already has it (nothing pending: verify, plan, no file read), the fixed part.
PROJ500=$RUN_DIR/proj500
mkdir -p "$PROJ500/migrations"
mapfile -t ALL_FILES < <(find "$PROJ/migrations" -maxdepth 1 -name '*.sql' | sort)
cp -t "$PROJ500/migrations" "${ALL_FILES[@]:0:500}"
cp "$PROJ/squizzle.toml" "$PROJ500/"
(cd "$PROJ500" && "${SQZ[@]}" SOURCE_DATE_EPOCH=1700000000 "$BIN" build 1.0.0 >"$RUN_DIR/build500.log" 2>&1) ||
    { cat "$RUN_DIR/build500.log" >&2; exit 1; }
pg_fresh_db big_500
SAVED_PROJ=$PROJ; PROJ=$PROJ500
run squizzle "$(pg_url big_500)"
PROJ=$SAVED_PROJ
[ "$R_RC" = 0 ] || { log "squizzle apply of 500 files failed (exit $R_RC):"; tail -n 20 "$RUN_DIR/squizzle.log" >&2; exit 1; }
W500=$R_WALL; R500=$R_RSS
pg_drop_db big_500
pg_fresh_db big_noop
run squizzle "$(pg_url big_noop)"
[ "$R_RC" = 0 ] || { log "squizzle apply failed (exit $R_RC)"; exit 1; }
run squizzle "$(pg_url big_noop)"
[ "$R_RC" = 0 ] || { log "squizzle apply (nothing pending) failed (exit $R_RC)"; exit 1; }
WNOOP=$R_WALL; RNOOP=$R_RSS
pg_drop_db big_noop
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END { if (NR % 2) printf "%.3f", a[(NR+1)/2]; else printf "%.3f", (a[NR/2]+a[NR/2+1])/2 }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

echo
echo "=== squizzle apply, large generated release ==="
echo "machine  : nproc=$(nproc), load avg $LOAD_START before, $LOAD_END after (1/5/15 min)"
echo "squizzle : $("$BIN" --version) ($BIN_SRC)"
echo "workload : $COUNT generated files (seed $SEED), $SQL_BYTES bytes of SQL; release built in ${BUILD_S} s"
echo "runs     : $RUNS per tool, interleaved, fresh empty database each; PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'), fsync=off"
echo
printf '%-28s %14s %14s  %s\n' tool "median wall s" "peak RSS MiB" "per run: wall s"
printf '%-28s %14s %14s  %s\n' "squizzle apply 1.0.0" "$(median "${SW[@]}")" "$(mib "$(median "${SR[@]}")")" "${SW[*]}"
printf '%-28s %14s %14s  %s\n' "psql -1, concatenated" "$(median "${PW[@]}")" "$(mib "$(median "${PR[@]}")")" "${PW[*]}"
echo
echo "squizzle apply / psql -1 run by run: ${RATIO[*]}"
echo "  median of the per-run ratios: $(median "${RATIO[@]}")x (below 1 = squizzle faster)"
echo "same schema and row counts in both databases: $SAME of $RUNS runs"
echo
echo "squizzle's memory against the release's size (one run each):"
printf '%-44s %10s %14s\n' row "wall s" "peak RSS MiB"
printf '%-44s %10s %14s\n' "apply, first 500 files (~50 MB) as a release" "$W500" "$(mib "$R500")"
printf '%-44s %10s %14s\n' "apply, 2,000 files (~200 MB), median above" "$(median "${SW[@]}")" "$(mib "$(median "${SR[@]}")")"
printf '%-44s %10s %14s\n' "apply 2,000 files again, nothing pending" "$WNOOP" "$(mib "$RNOOP")"
echo "  RSS 2,000 files / 500 files: $(awk -v a="$(median "${SR[@]}")" -v b="$R500" 'BEGIN { printf "%.2f", a / b }')x for 4x the SQL"
echo "  (flat: the pending files stream from the layer, about one at a time, and the schema"
echo "  fingerprint recorded after the run streams through its digest and is stored by the server)"
