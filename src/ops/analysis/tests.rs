//! The table of hostile SQL: comments, dollar quoting, DO blocks, CTEs,
//! mixed case, quoted identifiers, each with the ids it must give.

use super::*;

fn ids_of(sql: &str, created: &[&str]) -> Vec<&'static str> {
    let mut set: HashSet<String> = created.iter().map(|s| (*s).to_owned()).collect();
    analyse_file(
        "m/1.sql",
        sql,
        SplitMode::Plain,
        TransactionMode::Default,
        &mut set,
    )
    .into_iter()
    .map(|f| f.id)
    .collect()
}

#[test]
fn hostile_sql_gives_exactly_the_expected_findings() {
    let table: &[(&str, &[&str])] = &[
        // Destructive, in any case and quoting.
        ("DROP TABLE users;", &["drop-table"]),
        ("drop table if exists \"Users\" cascade;", &["drop-table"]),
        ("DrOp ScHeMa app CASCADE;", &["drop-schema"]),
        ("DROP MATERIALIZED VIEW mv;", &["drop-view"]),
        ("DROP VIEW v;", &["drop-view"]),
        ("DROP TYPE mood;", &["drop-type"]),
        ("TRUNCATE audit_log;", &["truncate"]),
        (
            "ALTER TABLE \"users\" DROP COLUMN \"email\";",
            &["drop-column"],
        ),
        ("ALTER TABLE users DROP email;", &["drop-column"]),
        ("DELETE FROM sessions;", &["delete-without-where"]),
        ("UPDATE users SET name = 'x';", &["update-without-where"]),
        // Not destructive.
        ("DELETE FROM sessions WHERE expires < now();", &[]),
        ("UPDATE users SET name = 'x' WHERE id = 1;", &[]),
        ("ALTER TABLE users DROP CONSTRAINT users_email_key;", &[]),
        ("ALTER TABLE users ALTER COLUMN name DROP DEFAULT;", &[]),
        ("ALTER TABLE users ALTER COLUMN name DROP NOT NULL;", &[]),
        ("DROP INDEX users_email;", &[]),
        ("DROP FUNCTION f();", &[]),
        ("SELECT 'DROP TABLE users; DELETE FROM x';", &[]),
        ("-- DROP TABLE users;\nSELECT 1;", &[]),
        ("/* TRUNCATE t; /* nested */ */ SELECT 1;", &[]),
        ("CREATE TABLE \"drop table\" (id int);", &[]),
        (
            "ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (u) REFERENCES users (id) ON DELETE CASCADE ON UPDATE NO ACTION NOT VALID;",
            &[],
        ),
        (
            "CREATE TRIGGER t BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION f();",
            &[],
        ),
        ("GRANT SELECT, UPDATE, DELETE ON users TO app;", &[]),
        (
            "INSERT INTO t (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET id = 2;",
            &[],
        ),
        ("SELECT * FROM users FOR UPDATE;", &[]),
        (
            "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ DELETE FROM t $$;",
            &[],
        ),
        // CTEs: the inner statement counts at its own level.
        (
            "WITH gone AS (DELETE FROM sessions RETURNING id) SELECT count(*) FROM gone;",
            &["delete-without-where"],
        ),
        (
            "WITH gone AS (DELETE FROM sessions WHERE old RETURNING id) SELECT 1;",
            &[],
        ),
        (
            "WITH s AS (SELECT 1) UPDATE users SET n = 1 FROM s;",
            &["update-without-where"],
        ),
        (
            "UPDATE users SET n = (SELECT max(n) FROM t WHERE t.id = 1);",
            &["update-without-where"],
        ),
        // Blocking, on tables that existed before.
        (
            "ALTER TABLE users ALTER COLUMN id TYPE bigint;",
            &["alter-column-type"],
        ),
        (
            "ALTER TABLE users ALTER id SET DATA TYPE bigint;",
            &["alter-column-type"],
        ),
        (
            "ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();",
            &["add-column-volatile-default"],
        ),
        (
            "ALTER TABLE users ADD COLUMN at timestamptz DEFAULT now();",
            &[],
        ),
        (
            "ALTER TABLE users ADD COLUMN n int DEFAULT 0 NOT NULL;",
            &[],
        ),
        (
            "ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
            &["set-not-null"],
        ),
        (
            "CREATE INDEX users_email ON users (email);",
            &["create-index-blocking"],
        ),
        (
            "create unique index if not exists \"u\" on \"public\".\"users\" using btree (\"email\");",
            &["create-index-blocking"],
        ),
        (
            "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id);",
            &["add-constraint-validating"],
        ),
        (
            "ALTER TABLE orders ADD CHECK (total >= 0);",
            &["add-constraint-validating"],
        ),
        (
            "ALTER TABLE orders ADD CONSTRAINT c CHECK (total >= 0) NOT VALID;",
            &[],
        ),
        ("VACUUM FULL users;", &["vacuum-full"]),
        ("VACUUM (FULL, ANALYZE) users;", &["vacuum-full"]),
        ("VACUUM users;", &[]),
        ("CLUSTER users USING users_pkey;", &["cluster"]),
        (
            "LOCK TABLE users IN ACCESS EXCLUSIVE MODE;",
            &["lock-table"],
        ),
        // Several actions in one ALTER TABLE.
        (
            "ALTER TABLE users DROP COLUMN a, ALTER COLUMN b TYPE text, ADD COLUMN e int;",
            &["drop-column", "alter-column-type"],
        ),
        // Backward-incompatible.
        (
            "ALTER TABLE users RENAME COLUMN email TO mail;",
            &["rename-column"],
        ),
        ("ALTER TABLE users RENAME TO customers;", &["rename-table"]),
        ("ALTER TABLE users RENAME CONSTRAINT a TO b;", &[]),
        // Concurrency misuse in a transactional file.
        (
            "CREATE INDEX CONCURRENTLY i ON users (email);",
            &["concurrently-in-transaction"],
        ),
        ("BEGIN;", &["transaction-control"]),
        // Not analysed: never passed silently.
        (
            "DO $$ DECLARE n int; BEGIN DROP TABLE users; END $$;",
            &["not-analysed"],
        ),
        (
            "DO $$ BEGIN IF true THEN DROP TABLE users; END IF; END $$;",
            &["not-analysed"],
        ),
        (
            "do $body$ begin execute 'drop table users'; end $body$;",
            &["not-analysed"],
        ),
        ("DO $$ BEGIN PERFORM f(); END $$;", &["not-analysed"]),
        (
            "DO $$ BEGIN CREATE TYPE mood AS ENUM ('a'); EXCEPTION WHEN others THEN RAISE; END $$;",
            &["not-analysed"],
        ),
        // A DO block wrapping plain SQL is read statement by statement.
        ("DO $$ BEGIN DROP TABLE users; END $$;", &["drop-table"]),
        (
            "DO $$ BEGIN\n CREATE TYPE \"mood\" AS ENUM('a', 'b');\nEXCEPTION\n WHEN duplicate_object THEN null;\nEND $$;",
            &[],
        ),
        (
            "DO $$ BEGIN\n ALTER TABLE \"orders\" ADD CONSTRAINT \"fk\" FOREIGN KEY (\"u\") REFERENCES \"users\"(\"id\") ON DELETE cascade ON UPDATE no action;\nEXCEPTION\n WHEN duplicate_object THEN null;\nEND $$;",
            &["add-constraint-validating"],
        ),
        ("CALL cleanup();", &["not-analysed"]),
    ];
    for (sql, want) in table {
        assert_eq!(&ids_of(sql, &[]), want, "{sql}");
    }
}

#[test]
fn tables_created_in_the_release_are_not_blocking() {
    let sql = "CREATE TABLE orders (id int, total int);\nCREATE INDEX o ON orders (total);\nALTER TABLE orders ALTER COLUMN total TYPE bigint;\nALTER TABLE orders ADD CONSTRAINT c CHECK (total > 0);\nALTER TABLE orders ALTER COLUMN total SET NOT NULL;\n";
    assert_eq!(ids_of(sql, &[]), Vec::<&str>::new());
    // Destructive findings stay, new table or not.
    assert_eq!(ids_of("DROP TABLE orders;", &["orders"]), ["drop-table"]);
    assert_eq!(
        ids_of("ALTER TABLE orders DROP COLUMN total;", &["orders"]),
        ["drop-column"]
    );
}

#[test]
fn findings_carry_the_line_an_explanation_and_the_safe_alternative() {
    let mut set = HashSet::new();
    let f = analyse_file(
        "m/0002.sql",
        "-- cleanup\n\nDELETE\n  FROM sessions;\n",
        SplitMode::Plain,
        TransactionMode::Default,
        &mut set,
    );
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].line, 3);
    assert_eq!(f[0].category, Category::Destructive);
    assert!(f[0].message.contains("every row"));
    assert!(f[0].safe.contains("WHERE"));
    let unreadable = analyse_file(
        "m/0003.sql",
        "SELECT 'never closed;\n",
        SplitMode::Plain,
        TransactionMode::Default,
        &mut set,
    );
    assert_eq!(unreadable[0].id, "not-analysed");
    // A no-transaction file may use CONCURRENTLY.
    let nt = analyse_file(
        "m/0004.sql",
        "-- squizzle:no-transaction\nCREATE INDEX CONCURRENTLY i ON users (email);\n",
        SplitMode::Plain,
        TransactionMode::None,
        &mut set,
    );
    assert!(nt.is_empty(), "{nt:?}");
    // Every id is unique.
    let all: Vec<&str> = ids().map(|(id, _)| id).collect();
    let unique: HashSet<&str> = all.iter().copied().collect();
    assert_eq!(all.len(), unique.len());
}

/// Every finding on the real dokploy drizzle-kit history, analysed in journal
/// order as one release (so indexes on tables it creates are not blocking).
fn dokploy_findings() -> Vec<Finding> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dokploy-drizzle");
    let journal: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("meta/_journal.json")).unwrap()).unwrap();
    let mut created = HashSet::new();
    let mut all = Vec::new();
    for e in journal["entries"].as_array().unwrap() {
        let tag = e["tag"].as_str().unwrap();
        let text = std::fs::read_to_string(dir.join(format!("{tag}.sql"))).unwrap();
        all.extend(analyse_file(
            &format!("{tag}.sql"),
            &text,
            SplitMode::Drizzle,
            TransactionMode::Default,
            &mut created,
        ));
    }
    all
}

#[test]
fn the_dokploy_history_gives_only_true_findings() {
    let all = dokploy_findings();
    let mut counts = std::collections::BTreeMap::new();
    for f in &all {
        *counts.entry(f.id).or_insert(0) += 1;
    }
    // Reviewed by hand: every DROP COLUMN/TABLE/TYPE below is one, every
    // UPDATE is a backfill without a top-level WHERE (its WHERE, if any, is
    // inside a subquery), the renames are renames, and the one statement not
    // analysed is the procedural DO block of 0066 (IF EXISTS ... RAISE).
    let expected = [
        ("drop-column", 47),
        ("drop-table", 4),
        ("drop-type", 1),
        ("not-analysed", 1),
        ("rename-column", 11),
        ("rename-table", 2),
        ("update-without-where", 11),
    ];
    assert_eq!(counts.into_iter().collect::<Vec<_>>(), expected, "{all:#?}");
    // Cross-checked on the raw text, independently of the lexer: each
    // destructive finding's line holds the statement it names.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dokploy-drizzle");
    for f in all.iter().filter(|f| f.category == Category::Destructive) {
        let text = std::fs::read_to_string(dir.join(&f.path)).unwrap();
        let line = text.lines().nth(f.line - 1).unwrap().to_ascii_uppercase();
        let holds = match f.id {
            "drop-column" => line.contains(" DROP COLUMN "),
            "drop-table" => line.starts_with("DROP TABLE "),
            "drop-type" => line.starts_with("DROP TYPE "),
            "update-without-where" => line.starts_with("UPDATE "),
            other => panic!(
                "unexpected destructive finding {other} at {}:{}",
                f.path, f.line
            ),
        };
        assert!(holds, "{} at {}:{} is on: {line}", f.id, f.path, f.line);
    }
    let nothing_else = all
        .iter()
        .find(|f| f.id == "not-analysed")
        .map(|f| (f.path.as_str(), f.line));
    assert_eq!(nothing_else, Some(("0066_yielding_echo.sql", 579)));
}

#[test]
fn set_not_null_after_a_validated_not_null_check_on_that_column_is_not_blocking() {
    let cases: &[(&str, &[&str])] = &[
        // Added NOT VALID, validated, then SET NOT NULL: no scan under the lock.
        (
            "ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;\n\
             ALTER TABLE users VALIDATE CONSTRAINT email_nn;\n\
             ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
            &[],
        ),
        // Quoted and mixed case names fold as PostgreSQL folds them.
        (
            "alter table Users add constraint \"email_nn\" check (\"email\" is not null) not valid;\n\
             ALTER TABLE users VALIDATE CONSTRAINT email_nn;\n\
             ALTER TABLE \"users\" ALTER email SET NOT NULL;",
            &[],
        ),
        // A validating CHECK counts too (it is itself a finding).
        (
            "ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL);\n\
             ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
            &["add-constraint-validating"],
        ),
        // NOT VALID and never validated: still a scan.
        (
            "ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;\n\
             ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
            &["set-not-null"],
        ),
        // Validated, but on another column, another table, or after the SET.
        (
            "ALTER TABLE users ADD CONSTRAINT n_nn CHECK (name IS NOT NULL) NOT VALID;\n\
             ALTER TABLE users VALIDATE CONSTRAINT n_nn;\n\
             ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
            &["set-not-null"],
        ),
        (
            "ALTER TABLE orders ADD CONSTRAINT e_nn CHECK (email IS NOT NULL) NOT VALID;\n\
             ALTER TABLE orders VALIDATE CONSTRAINT e_nn;\n\
             ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
            &["set-not-null"],
        ),
        (
            "ALTER TABLE users ALTER COLUMN email SET NOT NULL;\n\
             ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;\n\
             ALTER TABLE users VALIDATE CONSTRAINT email_nn;",
            &["set-not-null"],
        ),
        // A CHECK that says something else is not one.
        (
            "ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL OR id < 0) NOT VALID;\n\
             ALTER TABLE users VALIDATE CONSTRAINT email_nn;\n\
             ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
            &["set-not-null"],
        ),
    ];
    for (sql, want) in cases {
        assert_eq!(&ids_of(sql, &[]), want, "{sql}");
    }
    // Across files of one release: the check in one, SET NOT NULL in the next.
    let mut state = HashSet::new();
    let first = analyse_file(
        "m/1.sql",
        "ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;\n\
         ALTER TABLE users VALIDATE CONSTRAINT email_nn;",
        SplitMode::Plain,
        TransactionMode::Default,
        &mut state,
    );
    assert!(first.is_empty(), "{first:?}");
    let second = analyse_file(
        "m/2.sql",
        "ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
        SplitMode::Plain,
        TransactionMode::Default,
        &mut state,
    );
    assert!(second.is_empty(), "{second:?}");
}
