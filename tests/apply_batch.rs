//! A file inside a transaction goes to PostgreSQL as one message; a failure
//! still names the statement, the line and the SQLSTATE exactly as a
//! statement-by-statement run would. Errors with a position (caught while
//! PostgreSQL analyses a statement) are placed from it; errors without one
//! (raised while a statement runs) are placed by replaying the rolled-back
//! transaction statement by statement. Each case runs against a real
//! PostgreSQL 15, in a release whose first file shares the transaction.

use serde_json::Value;
use squizzle_test_support::pg;
use squizzle_test_support::{PLAIN_CONFIG, World};

/// The first file of every case: its table and row exist only in the
/// transaction, so a replay that skipped it would fail differently.
const FIRST: &str = "CREATE TABLE t (id integer PRIMARY KEY);\nINSERT INTO t VALUES (1);\n";

struct Case {
    name: &'static str,
    sql: &'static str,
    statement: u64,
    line: u64,
    sqlstate: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "first statement, error found while analysing it",
        sql: "SELECT * FROM missing_table;\nCREATE TABLE a (id integer);\nCREATE TABLE b (id integer);\n",
        statement: 1,
        line: 1,
        sqlstate: "42P01",
    },
    Case {
        name: "first statement, error raised while it runs",
        sql: "INSERT INTO t VALUES (1);\nCREATE TABLE a (id integer);\n",
        statement: 1,
        line: 1,
        sqlstate: "23505",
    },
    Case {
        name: "middle statement after comments, error raised while it runs",
        sql: "CREATE TABLE a (id integer);\n-- a line comment; with a semicolon\n/* a block\n   comment; */\nINSERT INTO t VALUES (1);\nCREATE TABLE b (id integer);\n",
        statement: 2,
        line: 5,
        sqlstate: "23505",
    },
    Case {
        name: "middle statement after comments, error found while analysing it",
        sql: "CREATE TABLE a (id integer);\n-- comment\n\n  SELECT nope\n  FROM t;\nCREATE TABLE b (id integer);\n",
        statement: 2,
        line: 4,
        sqlstate: "42703",
    },
    Case {
        name: "multi-line statement, the error points at its fourth line",
        sql: "CREATE TABLE a (id integer);\nCREATE TABLE b (\n  id integer,\n  note text,\n  x no_such_type\n);\n",
        statement: 2,
        line: 5,
        sqlstate: "42704",
    },
    Case {
        name: "last statement after a dollar-quoted body, found while analysing it",
        sql: "CREATE FUNCTION f() RETURNS integer LANGUAGE plpgsql AS $$\nBEGIN\n  -- a ; inside the body\n  RETURN 1;\nEND\n$$;\nCREATE TABLE a (id integer);\nSELECT nope FROM t;\n",
        statement: 3,
        line: 8,
        sqlstate: "42703",
    },
    Case {
        name: "last statement after a dollar-quoted body, raised while it runs",
        sql: "CREATE FUNCTION f() RETURNS integer LANGUAGE sql AS $body$ SELECT 1 $body$;\nCREATE TABLE a (id integer);\n\nSELECT 1 / (f() - 1);\n",
        statement: 3,
        line: 4,
        sqlstate: "22012",
    },
    Case {
        name: "non-ASCII text before the error moves character positions, not lines",
        sql: "COMMENT ON TABLE t IS 'Überprüfung — ✓ 日本語';\nSELECT 'ü' || nope FROM t;\n",
        statement: 2,
        line: 2,
        sqlstate: "42703",
    },
];

#[test]
fn a_failure_in_a_file_sent_as_one_message_names_statement_line_and_sqlstate() {
    for case in CASES {
        let w = World::new();
        w.config(PLAIN_CONFIG);
        w.write("migrations/0001_first.sql", FIRST);
        w.write("migrations/0002_case.sql", case.sql);
        w.build_ok("1.0.0");
        let admin = pg::shared().create_database("batch");
        let url = format!("{admin}?sslmode=disable");
        let run = w
            .run_with_env(
                &["apply", "1.0.0", "--output", "json"],
                &[("DATABASE_URL", url.as_str())],
            )
            .code(11);
        let report: Value = serde_json::from_str(run.stdout.trim())
            .unwrap_or_else(|e| panic!("{}: not JSON ({e}):\n{}", case.name, run.output()));
        let failure = &report["error"]["failure"];
        assert_eq!(
            (
                failure["path"].as_str(),
                failure["statement"].as_u64(),
                failure["line"].as_u64(),
                failure["sqlstate"].as_str()
            ),
            (
                Some("migrations/0002_case.sql"),
                Some(case.statement),
                Some(case.line),
                Some(case.sqlstate)
            ),
            "{}:\n{:?}\n{:?}",
            case.name,
            run.stdout,
            run.stderr
        );
        assert!(
            !failure["message"]
                .as_str()
                .unwrap()
                .contains("is not known"),
            "{}: {failure:#}",
            case.name
        );
        // Nothing of the transaction stays; the failure is in the history.
        let server = pg::shared();
        assert_eq!(
            server.query(&admin, "SELECT to_regclass('public.t')::text"),
            [[None]],
            "{}",
            case.name
        );
        assert_eq!(
            server.query(
                &admin,
                "SELECT failing_migration, failing_statement::text, failing_line::text, error_sqlstate \
                 FROM squizzle.releases"
            ),
            [[
                Some("0002_case".to_owned()),
                Some(case.statement.to_string()),
                Some(case.line.to_string()),
                Some(case.sqlstate.to_owned())
            ]],
            "{}",
            case.name
        );
    }
}

/// The same release without the failing statement applies, and every
/// statement of the batched files is counted.
#[test]
fn batched_files_apply_and_count_their_statements() {
    let w = World::new();
    w.config(PLAIN_CONFIG);
    w.write("migrations/0001_first.sql", FIRST);
    w.write(
        "migrations/0002_more.sql",
        "-- leading comment\nCREATE TABLE a (id integer); -- trailing comment\nCREATE FUNCTION g() RETURNS integer LANGUAGE sql AS $$ SELECT 2; $$;\nINSERT INTO a SELECT g()\n-- a comment that ends the statement's text\n;\n",
    );
    w.build_ok("1.0.0");
    let admin = pg::shared().create_database("batch ok");
    let url = format!("{admin}?sslmode=disable");
    let run = w
        .run_with_env(
            &["apply", "1.0.0", "--output", "json"],
            &[("DATABASE_URL", url.as_str())],
        )
        .success();
    let report: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(report["statementsRun"], 5, "{report:#}");
    assert_eq!(report["migrationsRun"], 2, "{report:#}");
    assert_eq!(
        pg::shared().query(&admin, "SELECT id::text FROM a"),
        [[Some("2".to_owned())]]
    );
}
