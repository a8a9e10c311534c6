#!/usr/bin/env bash
# Benchmark of `squizzle apply` over a fleet (docs/fleet.md): the dokploy drizzle-kit
# history (fixtures/dokploy-drizzle, 186 files) applied to N tenant databases and to M
# tenant schemas of one database, on a private throwaway PostgreSQL 15 server, against
# one `squizzle apply` per target run sequentially and `psql -1` per target.
# Prints figures and ratios; asserts nothing. See bench/README.md.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: bash bench/fleet.sh [--dbs N] [--schemas M] [--parallel P] [--rebuild]

Database per tenant (N fresh databases) and schema per tenant (M fresh schemas
in one database), each measured three ways, every target starting empty:
  a) squizzle apply 1.0.0 --env fleet --parallel P   (one process for the whole fleet)
  b) squizzle apply 1.0.0, one process per target, one after the other
  c) psql -1 -f all.sql, one process per target, one after the other
Reports wall time, the ratio b/a and c/a, and peak RSS (for b and c: the largest
of the per-target processes). Then checks that every target got the same tables
as psql gave the first one.

For schemas, every `"public".` qualifier is removed from a copy of the corpus
(drizzle-kit writes "public"."table" in foreign keys and types, which would put
every tenant's objects in one schema); psql gets the same copy, run with
PGOPTIONS=-csearch_path=<tenant>.

Options:
  --dbs N        tenant databases (default 20)
  --schemas M    tenant schemas (default 20)
  --parallel P   squizzle --parallel (default 4)
  --rebuild      run `cargo build --release` even if target/release/squizzle exists

Environment:
  SQUIZZLE_BIN  binary to measure instead of target/release/squizzle (no cargo build)
  PG_BIN        PostgreSQL server binaries (default /usr/lib/postgresql/15/bin)

Starts its own PostgreSQL server (127.0.0.1, a free port, fsync=off) and stops it
on exit. Needs python3 and GNU time at /usr/bin/time. Work files and logs:
bench/.work/ (git-ignored). Exits 0 whatever the figures are (1 only when a tool
or the setup fails).
EOF
}

DBS=20
SCHEMAS=20
PARALLEL=4
REBUILD=0
while [ $# -gt 0 ]; do
    case "$1" in
        --dbs) DBS=${2:?--dbs needs a value}; shift 2 ;;
        --schemas) SCHEMAS=${2:?--schemas needs a value}; shift 2 ;;
        --parallel) PARALLEL=${2:?--parallel needs a value}; shift 2 ;;
        --rebuild) REBUILD=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "error: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
for v in "$DBS" "$SCHEMAS" "$PARALLEL"; do
    case "$v" in
        ''|*[!0-9]*|0) echo "error: --dbs, --schemas and --parallel take positive integers, got '$v'" >&2; exit 2 ;;
    esac
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
HELPERS=$BENCH/apply_helpers
WORK=$BENCH/.work
LOGS=$WORK/logs/fleet
BIN=${SQUIZZLE_BIN:-$ROOT/target/release/squizzle}
FIXTURE=$ROOT/fixtures/dokploy-drizzle
TIME=/usr/bin/time
VERSION=1.0.0
EPOCH=1700000000

unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGPASSWORD PGPASSFILE PGOPTIONS PGSSLMODE \
    PGSERVICE PGSERVICEFILE PGCONNECT_TIMEOUT PGAPPNAME DATABASE_URL SQUIZZLE_CONFIG \
    SQUIZZLE_ENV SQUIZZLE_PARALLEL SQUIZZLE_SHARD 2>/dev/null || true

command -v python3 >/dev/null || { echo "error: python3 not found" >&2; exit 1; }
if ! [ -x "$TIME" ] || ! "$TIME" --version 2>&1 | grep -q 'GNU'; then
    echo "error: GNU time is needed at $TIME (Debian: apt-get install time)" >&2
    exit 1
fi
[ -n "${EPOCHREALTIME:-}" ] || { echo "error: bash 5 is needed (EPOCHREALTIME)" >&2; exit 1; }

# shellcheck source=bench/apply_helpers/pg.sh
source "$HELPERS/pg.sh"
log() { echo "[bench] $*" >&2; }

mkdir -p "$WORK/tmp" "$LOGS"
rm -f "$LOGS"/*.log 2>/dev/null || true
RUN_DIR=$(mktemp -d "$WORK/tmp/fleet.XXXXXX")
cleanup() {
    pg_stop
    rm -rf "$RUN_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "${SQUIZZLE_BIN:-}" ]; then
    [ -x "$BIN" ] || { echo "error: SQUIZZLE_BIN=$BIN is not executable" >&2; exit 1; }
elif [ "$REBUILD" = 1 ] || ! [ -x "$BIN" ]; then
    log "cargo build --release ..."
    (cd "$ROOT" && cargo build --release) >"$LOGS/cargo-build.log" 2>&1 ||
        { echo "error: cargo build --release failed; see $LOGS/cargo-build.log" >&2; exit 1; }
fi
mkdir -p "$RUN_DIR/bin"
cp -p "$BIN" "$RUN_DIR/bin/squizzle"
BIN_SRC=$BIN
BIN=$RUN_DIR/bin/squizzle

# Every target holds two connections while it runs (the lock's and the migrating one).
PG_EXTRA_SETTINGS="-c max_connections=$((PARALLEL * 2 + 20))"
log "starting PostgreSQL ..."
pg_start

now() { echo "$EPOCHREALTIME"; }
elapsed() { python3 -c "print(f'{$2 - $1:.2f}')"; }

# Runs "$@" under GNU time; prints "SECONDS KIB" (wall, peak RSS). Fails when the command does.
timed() {
    local out=$1; shift
    "$TIME" -f '%e %M' -o "$out.time" "$@" >"$out.log" 2>&1 || {
        echo "error: $* failed; last lines of $out.log:" >&2
        tail -n 15 "$out.log" >&2
        return 1
    }
    cat "$out.time"
}

# ---------------------------------------------------------------- projects
mapfile -t FILES < <(python3 "$HELPERS/corpus.py" list "$FIXTURE")
ALL=$RUN_DIR/all.sql
python3 "$HELPERS/corpus.py" concat "$FIXTURE" "$ALL"
# The schema-per-tenant copy: drizzle/ with "public". removed, and its concatenation.
TENANT_FIX=$RUN_DIR/tenant-fixture
cp -a "$FIXTURE" "$TENANT_FIX"
sed -i 's/"public"\.//g' "$TENANT_FIX"/*.sql
ALL_TENANT=$RUN_DIR/all-tenant.sql
python3 "$HELPERS/corpus.py" concat "$TENANT_FIX" "$ALL_TENANT"

make_project() { # DIR FIXTURE
    mkdir -p "$1"
    cp -a "$2" "$1/drizzle"
    printf '[project]\nmigrations = "drizzle"\n' >"$1/squizzle.toml"
    (cd "$1" && GIT_CEILING_DIRECTORIES=$WORK/tmp SOURCE_DATE_EPOCH=$EPOCH "$BIN" build "$VERSION") \
        >"$LOGS/build-$(basename "$1").log" 2>&1 ||
        { echo "error: squizzle build failed; see $LOGS/build-$(basename "$1").log" >&2; exit 1; }
}
DB_PROJ=$RUN_DIR/db-project
SCHEMA_PROJ=$RUN_DIR/schema-project
log "squizzle build $VERSION (twice: the corpus, and its unqualified copy) ..."
make_project "$DB_PROJ" "$FIXTURE"
make_project "$SCHEMA_PROJ" "$TENANT_FIX"

# ---------------------------------------------------------------- helpers
fresh_dbs() { # PREFIX
    local i
    for i in $(seq 1 "$DBS"); do pg_fresh_db "$1_$i"; done
}
fresh_schemas() { # DB
    pg_fresh_db "$1"
    local i sql=""
    for i in $(seq 1 "$SCHEMAS"); do sql+="CREATE SCHEMA t$i;"; done
    pg_psql "$1" -c "$sql" >/dev/null
}
tables_in() { # DB SCHEMA
    pg_psql "$1" -At -c "SELECT count(*) FROM pg_tables WHERE schemaname = '$2'"
}
# A fleet environment over databases PREFIX_1..N (a targets file) or schemas t1..tM.
db_fleet_config() { # PREFIX
    local i
    : >"$DB_PROJ/fleet.txt"
    for i in $(seq 1 "$DBS"); do pg_url "$1_$i" >>"$DB_PROJ/fleet.txt"; done
    printf '[project]\nmigrations = "drizzle"\n[environments.fleet]\ntargets_file = "fleet.txt"\n' \
        >"$DB_PROJ/squizzle.toml"
}
schema_fleet_config() { # DB
    {
        printf '[project]\nmigrations = "drizzle"\n[environments.fleet]\ndatabase_url = "%s"\nschemas = [' "$(pg_url "$1")"
        local i
        for i in $(seq 1 "$SCHEMAS"); do printf '"t%s",' "$i"; done
        printf ']\n'
        # One single-target environment per tenant, for the sequential baseline.
        for i in $(seq 1 "$SCHEMAS"); do
            printf '[environments.t%s]\ndatabase_url = "%s"\nsearch_path = "t%s"\nhistory_schema = "squizzle_t%s"\n' \
                "$i" "$(pg_url "$1")" "$i" "$i"
        done
    } >"$SCHEMA_PROJ/squizzle.toml"
}

max_rss=0
track_rss() { [ "$1" -gt "$max_rss" ] && max_rss=$1; return 0; }

declare -A WALL RSS
measure_dbs() {
    local t r s e i
    # a) the fleet
    fresh_dbs fa
    db_fleet_config fa
    log "dbs a) squizzle fleet apply over $DBS databases ..."
    (cd "$DB_PROJ" && timed "$LOGS/dbs-a" "$BIN" apply "$VERSION" --env fleet --parallel "$PARALLEL") >/dev/null
    read -r t r <"$LOGS/dbs-a.time"
    WALL[dbs_a]=$t; RSS[dbs_a]=$r
    # b) one squizzle process per database
    fresh_dbs fb
    log "dbs b) squizzle apply per database, sequentially ..."
    printf '[project]\nmigrations = "drizzle"\n' >"$DB_PROJ/squizzle.toml"
    max_rss=0; s=$(now)
    for i in $(seq 1 "$DBS"); do
        (cd "$DB_PROJ" && DATABASE_URL=$(pg_url "fb_$i") timed "$LOGS/dbs-b" "$BIN" apply "$VERSION") >/dev/null
        read -r _ r <"$LOGS/dbs-b.time"
        track_rss "$r"
    done
    e=$(now); WALL[dbs_b]=$(elapsed "$s" "$e"); RSS[dbs_b]=$max_rss
    # c) psql -1 per database
    fresh_dbs fc
    log "dbs c) psql -1 per database, sequentially ..."
    max_rss=0; s=$(now)
    for i in $(seq 1 "$DBS"); do
        timed "$LOGS/dbs-c" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -1 -d "$(pg_url "fc_$i")" -f "$ALL" >/dev/null
        read -r _ r <"$LOGS/dbs-c.time"
        track_rss "$r"
    done
    e=$(now); WALL[dbs_c]=$(elapsed "$s" "$e"); RSS[dbs_c]=$max_rss
    local want got bad=0
    want=$(tables_in fc_1 public)
    for p in fa fb fc; do
        for i in $(seq 1 "$DBS"); do
            got=$(tables_in "${p}_$i" public)
            [ "$got" = "$want" ] || { echo "MISMATCH: ${p}_$i has $got tables, psql gave $want" >&2; bad=1; }
        done
    done
    CHECK_DBS="every database has $want tables in public"
    [ "$bad" = 0 ] || CHECK_DBS="MISMATCH (see above)"
    for p in fa fb fc; do for i in $(seq 1 "$DBS"); do pg_drop_db "${p}_$i"; done; done
}

measure_schemas() {
    local t r s e i
    fresh_schemas sa
    schema_fleet_config sa
    log "schemas a) squizzle fleet apply over $SCHEMAS schemas ..."
    (cd "$SCHEMA_PROJ" && timed "$LOGS/schemas-a" "$BIN" apply "$VERSION" --env fleet --parallel "$PARALLEL") >/dev/null
    read -r t r <"$LOGS/schemas-a.time"
    WALL[sch_a]=$t; RSS[sch_a]=$r
    fresh_schemas sb
    schema_fleet_config sb
    log "schemas b) squizzle apply per schema, sequentially ..."
    max_rss=0; s=$(now)
    for i in $(seq 1 "$SCHEMAS"); do
        (cd "$SCHEMA_PROJ" && timed "$LOGS/schemas-b" "$BIN" apply "$VERSION" --env "t$i") >/dev/null
        read -r _ r <"$LOGS/schemas-b.time"
        track_rss "$r"
    done
    e=$(now); WALL[sch_b]=$(elapsed "$s" "$e"); RSS[sch_b]=$max_rss
    fresh_schemas sc
    log "schemas c) psql -1 per schema, sequentially ..."
    max_rss=0; s=$(now)
    for i in $(seq 1 "$SCHEMAS"); do
        PGOPTIONS="-csearch_path=t$i" timed "$LOGS/schemas-c" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -1 -d "$(pg_url sc)" -f "$ALL_TENANT" >/dev/null
        read -r _ r <"$LOGS/schemas-c.time"
        track_rss "$r"
    done
    e=$(now); WALL[sch_c]=$(elapsed "$s" "$e"); RSS[sch_c]=$max_rss
    local want got bad=0
    want=$(tables_in sc t1)
    for d in sa sb sc; do
        for i in $(seq 1 "$SCHEMAS"); do
            got=$(tables_in "$d" "t$i")
            [ "$got" = "$want" ] || { echo "MISMATCH: $d.t$i has $got tables, psql gave $want" >&2; bad=1; }
        done
        [ "$(tables_in "$d" public)" = 0 ] || { echo "MISMATCH: $d.public is not empty" >&2; bad=1; }
    done
    CHECK_SCHEMAS="every schema has $want tables, public stays empty"
    [ "$bad" = 0 ] || CHECK_SCHEMAS="MISMATCH (see above)"
    for d in sa sb sc; do pg_drop_db "$d"; done
}

measure_dbs
measure_schemas

ratio() { python3 -c "print(f'{$1 / $2:.2f}x')" 2>/dev/null || echo "n/a"; }
mib() { python3 -c "print(f'{$1 / 1024:.1f} MiB')"; }
echo
echo "squizzle: $("$BIN" --version 2>/dev/null | head -n 1) (${BIN_SRC#"$ROOT"/})"
echo "corpus: ${#FILES[@]} files of fixtures/dokploy-drizzle; PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'), fsync=off; $(nproc) cores"
echo
printf '%-44s %10s %10s %14s\n' "database per tenant ($DBS databases)" "wall" "vs a)" "peak RSS"
printf '%-44s %9ss %10s %14s\n' "a) squizzle apply --env fleet --parallel $PARALLEL" "${WALL[dbs_a]}" "1.00x" "$(mib "${RSS[dbs_a]}")"
printf '%-44s %9ss %10s %14s\n' "b) squizzle apply per database (sequential)" "${WALL[dbs_b]}" "$(ratio "${WALL[dbs_b]}" "${WALL[dbs_a]}")" "$(mib "${RSS[dbs_b]}") each"
printf '%-44s %9ss %10s %14s\n' "c) psql -1 per database (sequential)" "${WALL[dbs_c]}" "$(ratio "${WALL[dbs_c]}" "${WALL[dbs_a]}")" "$(mib "${RSS[dbs_c]}") each"
echo "   check: $CHECK_DBS"
echo
printf '%-44s %10s %10s %14s\n' "schema per tenant ($SCHEMAS schemas, one database)" "wall" "vs a)" "peak RSS"
printf '%-44s %9ss %10s %14s\n' "a) squizzle apply --env fleet --parallel $PARALLEL" "${WALL[sch_a]}" "1.00x" "$(mib "${RSS[sch_a]}")"
printf '%-44s %9ss %10s %14s\n' "b) squizzle apply per schema (sequential)" "${WALL[sch_b]}" "$(ratio "${WALL[sch_b]}" "${WALL[sch_a]}")" "$(mib "${RSS[sch_b]}") each"
printf '%-44s %9ss %10s %14s\n' "c) psql -1 per schema (sequential)" "${WALL[sch_c]}" "$(ratio "${WALL[sch_c]}" "${WALL[sch_a]}")" "$(mib "${RSS[sch_c]}") each"
echo "   check: $CHECK_SCHEMAS"
