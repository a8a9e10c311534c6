#!/usr/bin/env bash
# psql_each.sh PSQL FILE_LIST URL: one `psql -v ON_ERROR_STOP=1 -X -q -f FILE` per line of
# FILE_LIST, in order, stopping at the first failure (exit status of that psql).
# This is how fixtures/dokploy-drizzle/SOURCE.md applies the corpus; bench/apply.sh times it.
set -euo pipefail
psql=$1 list=$2 url=$3
while IFS= read -r f; do
    [ -n "$f" ] || continue
    "$psql" -v ON_ERROR_STOP=1 -X -q -f "$f" -d "$url"
done <"$list"
