#!/usr/bin/env python3
"""Deterministic generator of a realistic PostgreSQL migration folder.

Writes OUT/migrations/NNNN_<verb>_<table>.sql for NNNN in 0..COUNT-1, each
roughly --avg-kb KiB (+-20 %), with CREATE TABLE, ALTER TABLE, CREATE INDEX,
COMMENT ON, an occasional UPDATE, and mostly multi-row INSERT statements whose
values (names, e-mails, words, amounts, timestamps, UUIDs, small JSON) vary, so
that gzip -6 compresses the tree about 3-6x rather than 100x.

File i depends only on (seed, i), so the first 500 files of a 2,000-file tree
are byte-identical to a 500-file tree with the same seed.

Python 3 standard library only. Writes into OUT.tmp.<pid> and renames at the
end, so an interrupted run never leaves a half tree that looks complete.
"""

import argparse
import hashlib
import os
import random
import shutil
import sys
import time

GENERATOR_VERSION = "2"

FIRST = (
    "james mary robert patricia john jennifer michael linda david elizabeth william barbara "
    "richard susan joseph jessica thomas sarah charles karen christopher lisa daniel nancy "
    "matthew betty anthony sandra mark margaret donald ashley steven kimberly paul emily "
    "andrew donna joshua michelle kenneth carol kevin amanda brian melissa george deborah "
    "timothy stephanie ronald rebecca jason sharon edward laura jeffrey cynthia ryan amy "
    "jacob kathleen gary angela nicholas dorothy eric helen jonathan anna stephen brenda "
    "larry pamela justin emma scott nicole brandon samantha benjamin katherine samuel "
    "christine gregory debra alexander rachel frank carolyn patrick janet raymond maria "
    "jack olivia dennis heather jerry catherine tyler diane aaron julie jose victoria "
    "adam joyce nathan lauren henry kelly zachary christina douglas ruth peter joan kyle "
    "virginia noah judith ethan evelyn jeremy hannah walter andrea christian megan keith "
    "cheryl roger jacqueline terry martha austin madison sean teresa gerald gloria carl "
    "sara harold janice dylan ann arthur kathryn lawrence abigail jordan sophia jesse "
    "frances bryan jean billy alice bruce judy gabriel isabella joe julia logan grace "
    "albert amber willie denise alan danielle eugene marilyn russell beverly vincent "
    "charlotte wayne natalie louis theresa bobby diana johnny brittany philip doris"
).split()

LAST = (
    "smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez "
    "lopez gonzalez wilson anderson thomas taylor moore jackson martin lee perez thompson "
    "white harris sanchez clark ramirez lewis robinson walker young allen king wright "
    "scott torres nguyen hill flores green adams nelson baker hall rivera campbell "
    "mitchell carter roberts gomez phillips evans turner diaz parker cruz edwards collins "
    "reyes stewart morris morales murphy cook rogers gutierrez ortiz morgan cooper "
    "peterson bailey reed kelly howard ramos kim cox ward richardson watson brooks chavez "
    "wood james bennett gray mendoza ruiz hughes price alvarez castillo sanders patel "
    "myers long ross foster jimenez powell jenkins perry russell sullivan bell coleman "
    "butler henderson barnes gonzales fisher vasquez simmons romero jordan patterson "
    "alexander hamilton graham reynolds griffin wallace moreno west cole hayes bryant "
    "herrera gibson ellis tran medina aguilar stevens murray ford castro marshall owens "
    "harrison fernandez mcdonald woods washington kennedy wells vargas henry chen freeman "
    "webb tucker guzman burns crawford olson simpson porter hunter gordon mendez silva "
    "shaw snyder mason dixon munoz hunt hicks holmes palmer wagner black robertson boyd"
).split()

DOMAINS = (
    "example.com example.org example.net mail.test corp.test acme.test globex.test "
    "initech.test umbrella.test hooli.test contoso.test fabrikam.test"
).split()

ENTITIES = (
    "users accounts orders order_items invoices payments products categories customers "
    "suppliers shipments warehouses inventory carts sessions audit_log events "
    "subscriptions plans coupons reviews comments posts tags media addresses regions "
    "employees departments projects tasks tickets messages notifications devices "
    "api_clients webhooks refunds ledger_entries tax_rates currencies price_lists "
    "stock_movements returns vendors contracts meters readings alerts reports"
).split()

VERBS = ("create", "seed", "backfill", "add", "alter", "import", "load", "extend")

CITIES = (
    "Berlin Paris Lisbon Madrid Rome Vienna Prague Warsaw Oslo Dublin London Leeds Lyon "
    "Porto Seville Milan Turin Munich Hamburg Zurich Geneva Brussels Antwerp Utrecht "
    "Rotterdam Amsterdam Copenhagen Stockholm Helsinki Tallinn Riga Vilnius Krakow Gdansk "
    "Budapest Bucharest Sofia Athens Istanbul Toronto Boston Denver Austin Seattle Chicago"
).split()

STATUSES = ("pending", "active", "suspended", "closed", "archived", "draft", "paid",
            "shipped", "delivered", "cancelled", "refunded", "failed")

SYLLABLES = (
    "ka ri to na me lo su pe da vi ro ne ba sa li mo te gu fa zi po ha ce du ni ra "
    "ve lu ko mi ta go be si no pa de fi ru zo ga le bo mu ti sho chi tra ple gri "
    "bra dro fle sta pro con ex in re un der ment ion ary ous ble ful ing"
).split()


def build_vocab(rng, n=1200):
    words = set()
    while len(words) < n:
        k = rng.choice((1, 2, 2, 3, 3, 3, 4))
        words.add("".join(rng.choice(SYLLABLES) for _ in range(k)))
    words = sorted(words)
    rng.shuffle(words)
    # Zipf-like weights: a few words frequent, a long tail rare.
    weights = [1.0 / (r + 1) ** 1.05 for r in range(len(words))]
    cum, acc = [], 0.0
    for w in weights:
        acc += w
        cum.append(acc)
    return words, cum


# Column kinds: (sql type, value generator key)
COLUMN_KINDS = [
    ("text NOT NULL", "name"),
    ("text", "email"),
    ("numeric(12,2) NOT NULL DEFAULT 0", "amount"),
    ("integer", "int"),
    ("bigint", "bigint"),
    ("timestamptz NOT NULL DEFAULT now()", "ts"),
    ("date", "date"),
    ("boolean NOT NULL DEFAULT false", "bool"),
    ("text", "words"),
    ("text", "sentence"),
    ("varchar(32)", "status"),
    ("text", "city"),
    ("uuid", "uuid"),
    ("jsonb", "json"),
    ("char(3)", "currency"),
]

UUID_KIND = [g for _, g in COLUMN_KINDS].index("uuid")

COLUMN_NAMES = {
    "name": ["full_name", "display_name", "contact_name", "owner_name", "label"],
    "email": ["email", "contact_email", "billing_email", "notify_email"],
    "amount": ["amount", "total", "unit_price", "balance", "discount", "tax"],
    "int": ["quantity", "position", "priority", "attempts", "score", "rank"],
    "bigint": ["external_id", "parent_id", "owner_id", "ref_id", "batch_id"],
    "ts": ["created_at", "updated_at", "processed_at", "expires_at", "seen_at"],
    "date": ["valid_from", "valid_until", "due_on", "born_on", "starts_on"],
    "bool": ["is_active", "is_verified", "archived", "deleted", "flagged"],
    "words": ["title", "subject", "summary", "headline", "slug"],
    "sentence": ["description", "notes", "body", "details", "remarks"],
    "status": ["status", "state", "phase", "stage"],
    "city": ["city", "site", "office", "location"],
    "uuid": ["public_id", "token_id", "trace_id", "correlation_id"],
    "json": ["metadata", "attributes", "settings", "payload"],
    "currency": ["currency", "currency_code"],
}

EMAIL_SUFFIX = ("",) * 6 + tuple(str(n) for n in range(1, 100))

AMOUNT_UNITS = (1, 1, 1, 5, 10, 25)
CENTS = (".00", ".00", ".50", ".99", ".95", ".49", ".25", ".75")

CURRENCIES = ("EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "JPY")


class FileGen:
    def __init__(self, seed, index, vocab, cum):
        self.rng = random.Random(f"squizzle-bench:{seed}:{index}")
        self.index = index
        self.vocab = vocab
        self.cum = cum
        self.epoch = 1546300800 + self.rng.randint(0, 5 * 365 * 86400)  # 2019..2024
        self.step = self.rng.choice((60, 300, 900, 3600))

    def word_list(self, k):
        return self.rng.choices(self.vocab, cum_weights=self.cum, k=k)

    def sql_str(self, s):
        return "'" + s.replace("'", "''") + "'"

    def value(self, kind, row_id):
        r = self.rng
        if kind == "name":
            return self.sql_str(f"{r.choice(FIRST).title()} {r.choice(LAST).title()}")
        if kind == "email":
            if r.random() < 0.05:
                return "NULL"
            return self.sql_str(
                f"{r.choice(FIRST)}.{r.choice(LAST)}{r.choice(EMAIL_SUFFIX)}@{r.choice(DOMAINS)}")
        if kind == "amount":  # shop-like prices: 19.99, 250.00, 7.50 ...
            return f"{r.choice(AMOUNT_UNITS) * r.randint(1, 40)}{r.choice(CENTS)}"
        if kind == "int":
            return str(r.randint(0, 5000))
        if kind == "bigint":
            return str(r.randint(1, 250000))
        if kind == "ts":  # rows inserted over time: mostly increasing, some jitter
            t = self.epoch + row_id * self.step + r.randint(0, self.step)
            return time.strftime("'%Y-%m-%d %H:%M:%S+00'", time.gmtime(t))
        if kind == "date":
            return f"'20{r.randint(19, 29):02d}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}'"
        if kind == "bool":
            return "true" if r.random() < 0.5 else "false"
        if kind == "words":
            return self.sql_str(" ".join(self.word_list(r.randint(2, 6))).capitalize())
        if kind == "sentence":
            if r.random() < 0.1:
                return "NULL"
            ws = self.word_list(r.randint(4, 16))
            return self.sql_str(" ".join(ws).capitalize() + r.choice((".", ".", ".", "!", "?", "...")))
        if kind == "status":
            return self.sql_str(r.choice(STATUSES))
        if kind == "city":
            return self.sql_str(r.choice(CITIES))
        if kind == "uuid":
            h = "%032x" % r.getrandbits(128)
            return f"'{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}'"
        if kind == "json":
            return self.sql_str(
                '{"source": "%s", "rev": %d, "tags": ["%s", "%s"]}'
                % (r.choice(("web", "api", "import", "mobile", "batch")), r.randint(1, 40),
                   *self.word_list(2)))
        if kind == "currency":
            return self.sql_str(r.choice(CURRENCIES))
        raise ValueError(kind)

    def generate(self, target_bytes):
        r = self.rng
        i = self.index
        entity = ENTITIES[i % len(ENTITIES)]
        table = f"{entity}_{i:04d}"
        verb = VERBS[r.randrange(len(VERBS))]
        name = f"{i:04d}_{verb}_{entity}"

        ncols = r.randint(6, 11)
        pool = list(range(len(COLUMN_KINDS)))
        if r.random() < 0.7:  # most tables have no UUID column
            pool.remove(UUID_KIND)
        kinds = r.sample(pool, ncols)
        cols = []
        used = set()
        for k in kinds:
            sqltype, gen = COLUMN_KINDS[k]
            cname = r.choice(COLUMN_NAMES[gen])
            while cname in used:
                cname = f"{cname}_{len(used)}"
            used.add(cname)
            cols.append((cname, sqltype, gen))

        out = []
        out.append(f"-- Migration {i:04d}: {verb} {entity}\n")
        out.append(f"-- Generated for the squizzle build benchmark (seed-stable, not real data).\n\n")
        out.append("SET statement_timeout = 0;\nSET lock_timeout = '5s';\n\n")
        out.append(f"CREATE TABLE IF NOT EXISTS public.{table} (\n")
        out.append("    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,\n")
        out.append(",\n".join(f"    {c} {t}" for c, t, _ in cols))
        out.append("\n);\n\n")
        if i > 0:
            parent = f"{ENTITIES[(i - 1) % len(ENTITIES)]}_{i - 1:04d}"
            out.append(f"ALTER TABLE public.{table} ADD COLUMN IF NOT EXISTS "
                       f"{parent}_id bigint;\n")
            out.append(f"ALTER TABLE public.{table} ADD CONSTRAINT {table}_{parent}_fk "
                       f"FOREIGN KEY ({parent}_id) REFERENCES public.{parent} (id) "
                       f"ON DELETE SET NULL;\n")
        out.append(f"ALTER TABLE public.{table} ALTER COLUMN {cols[0][0]} SET STATISTICS "
                   f"{r.choice((100, 250, 500, 1000))};\n\n")
        for c, _, _ in r.sample(cols, r.randint(1, 3)):
            # Version 1 made 1 index in 5 UNIQUE, which the random values then
            # violate: the tree could not be applied. The draw stays, so the
            # rest of the tree is what version 1 generated.
            r.random()
            uniq = ""
            out.append(f"CREATE {uniq}INDEX IF NOT EXISTS {table}_{c}_idx "
                       f"ON public.{table} USING btree ({c});\n")
        out.append(f"\nCOMMENT ON TABLE public.{table} IS "
                   f"{self.sql_str(' '.join(self.word_list(8)).capitalize() + '.')};\n\n")

        size = sum(len(s) for s in out)
        col_list = ", ".join(c for c, _, _ in cols)
        row_id = 1
        rows_done, body_bytes = 0, 0
        while size < target_bytes:
            nrows = r.randint(40, 160)
            if rows_done:  # do not overshoot the target by a whole statement
                left = (target_bytes - size) * rows_done // body_bytes + 1
                nrows = max(1, min(nrows, left))
            parts = [f"INSERT INTO public.{table} (id, {col_list}) VALUES\n"]
            rows = []
            for _ in range(nrows):
                vals = ", ".join(self.value(g, row_id) for _, _, g in cols)
                rows.append(f"    ({row_id}, {vals})")
                row_id += 1
            parts.append(",\n".join(rows))
            parts.append(";\n\n")
            if r.random() < 0.08:
                c, _, g = r.choice(cols)
                parts.append(f"UPDATE public.{table} SET {c} = {self.value(g, 0)} "
                             f"WHERE id BETWEEN {r.randint(1, row_id)} AND {row_id};\n\n")
            chunk = "".join(parts)
            out.append(chunk)
            size += len(chunk)
            rows_done += nrows
            body_bytes += len(chunk)
        out.append(f"SELECT setval(pg_get_serial_sequence('public.{table}', 'id'), {row_id});\n")
        out.append(f"ANALYZE public.{table};\n")
        return name + ".sql", "".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="directory to create; migrations/ goes inside")
    ap.add_argument("--count", type=int, required=True, help="number of .sql files")
    ap.add_argument("--avg-kb", type=float, default=100.0, help="mean file size in KB (1000 B)")
    ap.add_argument("--seed", type=int, default=20241122)
    ap.add_argument("--stamp", action="store_true",
                    help="print the cache stamp for these parameters and exit")
    a = ap.parse_args()

    with open(__file__, "rb") as f:
        src_hash = hashlib.sha256(f.read()).hexdigest()[:16]
    stamp = f"gen={GENERATOR_VERSION} src={src_hash} count={a.count} avg_kb={a.avg_kb} seed={a.seed}"
    if a.stamp:
        print(stamp)
        return

    vocab, cum = build_vocab(random.Random(f"squizzle-bench-vocab:{a.seed}"))
    out = os.path.abspath(a.out)
    tmp = f"{out}.tmp.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    mig = os.path.join(tmp, "migrations")
    os.makedirs(mig)
    total = 0
    for i in range(a.count):
        g = FileGen(a.seed, i, vocab, cum)
        target = int(a.avg_kb * 1000 * g.rng.uniform(0.8, 1.2))
        fname, text = g.generate(target)
        data = text.encode("utf-8")
        with open(os.path.join(mig, fname), "wb") as f:
            f.write(data)
        total += len(data)
        if (i + 1) % 250 == 0 or i + 1 == a.count:
            print(f"  generated {i + 1}/{a.count} files, {total / 1e6:.1f} MB", file=sys.stderr)
    with open(os.path.join(tmp, "STAMP"), "w") as f:
        f.write(stamp + "\n")
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)


if __name__ == "__main__":
    main()
