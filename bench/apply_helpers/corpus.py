#!/usr/bin/env python3
"""Corpus preparation for bench/apply.sh (Python 3 stdlib only).

  corpus.py list FIXTURE              print the migration files, one path a line, in journal order
  corpus.py concat FIXTURE OUT        write all files concatenated in journal order, "\\n;\\n" between
                                      files (168 of the 186 files lack a final newline; the lone ";"
                                      is an empty statement, so nothing is added to any statement)
  corpus.py confiture FIXTURE OUTDIR  write confiture's layout under OUTDIR (see below)

Confiture layout (fraiseql-confiture discovers `{version}_{name}.up.sql` in
db/migrations/ and requires a `{version}_{name}.down.sql` twin for each):
  OUTDIR/db/migrations/NNNN_name.up.sql    byte-for-byte copy of fixture NNNN_name.sql
  OUTDIR/db/migrations/NNNN_name.down.sql  one SQL comment line, no statement (never run by `migrate up`)
Versions are the 4-digit prefixes; the script checks they are unique and that
their sort order equals the journal order, because confiture orders by version.
"""
import json
import os
import shutil
import sys

DOWN_TEXT = "-- bench/apply.sh: no rollback (copy of a drizzle-kit migration, which has none)\n"


def journal_files(fixture):
    with open(os.path.join(fixture, "meta", "_journal.json"), encoding="utf-8") as f:
        journal = json.load(f)
    entries = sorted(journal["entries"], key=lambda e: e["idx"])
    paths = []
    for e in entries:
        p = os.path.join(fixture, e["tag"] + ".sql")
        if not os.path.isfile(p):
            sys.exit(f"error: journal entry {e['idx']} names {p}, which does not exist")
        paths.append(p)
    return paths


def cmd_list(fixture):
    for p in journal_files(fixture):
        print(p)


def cmd_concat(fixture, out):
    with open(out, "wb") as w:
        for i, p in enumerate(journal_files(fixture)):
            if i:
                w.write(b"\n;\n")
            with open(p, "rb") as r:
                w.write(r.read())
        w.write(b"\n")


def cmd_confiture(fixture, outdir):
    mig = os.path.join(outdir, "db", "migrations")
    os.makedirs(mig, exist_ok=True)
    versions = []
    for p in journal_files(fixture):
        base = os.path.basename(p)[: -len(".sql")]
        version, sep, _name = base.partition("_")
        if not sep or not version.isdigit():
            sys.exit(f"error: {base}: no NNNN_ version prefix, cannot name it for confiture")
        versions.append(version)
        shutil.copyfile(p, os.path.join(mig, base + ".up.sql"))
        with open(os.path.join(mig, base + ".down.sql"), "w", encoding="utf-8") as w:
            w.write(DOWN_TEXT)
    if len(set(versions)) != len(versions):
        sys.exit("error: duplicate version prefixes; confiture would refuse them")
    if sorted(versions) != versions:
        sys.exit("error: version order differs from journal order; confiture would run them in another order")
    print(len(versions))


def main(argv):
    if len(argv) == 3 and argv[1] == "list":
        cmd_list(argv[2])
    elif len(argv) == 4 and argv[1] == "concat":
        cmd_concat(argv[2], argv[3])
    elif len(argv) == 4 and argv[1] == "confiture":
        cmd_confiture(argv[2], argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
