# shellcheck shell=bash
# The generated migration tree shared by bench/verify.sh, bench/transfer.sh and
# bench/apply_large.sh. Sourced, not run; the caller defines log().
#
#   ensure_generated_data DIR COUNT SEED
#       DIR/migrations holds COUNT files from bench/gen_migrations.py with SEED:
#       reused when DIR/STAMP matches this generator and these arguments, else
#       generated anew (the generator writes to a temporary folder and renames).

ensure_generated_data() {
    local dir=$1 count=$2 seed=$3 here stamp
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    stamp=$(python3 "$here/gen_migrations.py" --stamp --out "$dir" --count "$count" --seed "$seed")
    if [ -f "$dir/STAMP" ] && [ "$(cat "$dir/STAMP")" = "$stamp" ] &&
        [ "$(find "$dir/migrations" -maxdepth 1 -name '*.sql' | wc -l)" -eq "$count" ]; then
        log "using cached data set $dir ($count files)"
    else
        log "generating $count migration files into $dir (seed $seed) ..."
        python3 "$here/gen_migrations.py" --out "$dir" --count "$count" --seed "$seed" >&2
    fi
}
