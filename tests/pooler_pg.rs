//! `squizzle apply` through a real PgBouncer (the Debian package) in front of
//! a real PostgreSQL 15, in transaction and in session pooling mode.
//!
//! Behind a transaction pooler a client's consecutive transactions may run on
//! different server connections, and a server connection serves many
//! clients. What must hold anyway: twenty concurrent applies run every
//! migration exactly once, nobody sees a prepared-statement collision, no
//! lock is left on a pooled server connection (not even when the holder is
//! SIGKILLed), and no session setting leaks to the pool. Beside them, on a
//! direct connection, the two guards behind the lock: a run whose lock
//! connection ends stops before its next commit, and a migration another
//! applier recorded meanwhile is never recorded twice.

use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use squizzle_test_support::pg::{self, PgServer};
use squizzle_test_support::pgbouncer::{PgBouncer, PoolMode};
use squizzle_test_support::{PLAIN_CONFIG, World, squizzle_bin};

const APPLIERS: usize = 20;

/// A release of four migrations in three transaction segments: two ordinary
/// files (one slow), a no-transaction index build with an insert, and a last
/// ordinary file. Each migration inserts its id into `runs` once per run.
fn release() -> World {
    let w = World::new();
    w.config(PLAIN_CONFIG);
    w.write(
        "migrations/0001_runs.sql",
        "CREATE TABLE runs (migration text NOT NULL, backend integer NOT NULL);\n\
         INSERT INTO runs VALUES ('0001', pg_backend_pid());\n",
    );
    w.write(
        "migrations/0002_slow.sql",
        "INSERT INTO runs VALUES ('0002', pg_backend_pid());\nSELECT pg_sleep(1.5);\n",
    );
    w.write(
        "migrations/0003_index.sql",
        "-- squizzle:no-transaction\n\
         CREATE INDEX CONCURRENTLY runs_migration ON runs (migration);\n\
         INSERT INTO runs VALUES ('0003', pg_backend_pid());\n",
    );
    w.write(
        "migrations/0004_last.sql",
        "INSERT INTO runs VALUES ('0004', pg_backend_pid());\n",
    );
    w.build_ok("1.0.0");
    w
}

fn squizzle(world: &World, url: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(squizzle_bin());
    cmd.current_dir(world.root())
        .env_clear()
        .env("HOME", world.home())
        .env("DATABASE_URL", url)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd
}

fn describe(out: &Output) -> String {
    format!(
        "--- status: {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn int(server: &PgServer, db: &str, sql: &str) -> i64 {
    server.query(db, sql)[0][0]
        .as_deref()
        .unwrap_or("0")
        .parse()
        .unwrap()
}

/// Advisory locks granted in `db`, seen on the server itself.
fn advisory_locks(server: &PgServer, db: &str) -> i64 {
    int(
        server,
        db,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
}

/// Every migration ran exactly once and the history agrees.
fn assert_ran_once(server: &PgServer, db: &str) {
    let runs = server.query(
        db,
        "SELECT migration, count(*) FROM runs GROUP BY migration ORDER BY migration",
    );
    let runs: Vec<(String, String)> = runs
        .into_iter()
        .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap()))
        .collect();
    let once = |m: &str| (m.to_owned(), "1".to_owned());
    assert_eq!(
        runs,
        [once("0001"), once("0002"), once("0003"), once("0004")],
        "each migration must run exactly once"
    );
    assert_eq!(
        int(
            server,
            db,
            "SELECT count(*) FROM squizzle.migrations WHERE complete"
        ),
        4
    );
    assert_eq!(
        server.query(
            db,
            "SELECT success::text, migrations_run::text FROM squizzle.releases ORDER BY id"
        ),
        [[Some("true".to_owned()), Some("4".to_owned())]],
        "one success row, written by the one apply that ran the release"
    );
    assert_eq!(
        int(
            server,
            db,
            "SELECT count(*) FROM pg_index WHERE NOT indisvalid"
        ),
        0
    );
}

fn concurrent_applies_through(mode: PoolMode) {
    let world = release();
    let server = pg::shared();
    let db = server.create_database(&format!("pooler {mode:?}"));
    // Fewer server connections than appliers: the pooler must share them.
    let bouncer = PgBouncer::start(server, mode, 4);
    let url = bouncer.url(&db);

    let started = Instant::now();
    let children: Vec<Child> = (0..APPLIERS)
        .map(|_| {
            squizzle(&world, &url, &["apply", "1.0.0", "--lock-timeout", "2m"])
                .spawn()
                .expect("spawn squizzle")
        })
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait for squizzle"))
        .collect();
    let wall = started.elapsed();

    let mut applied = 0;
    let mut waited = 0;
    for out in &outputs {
        assert_eq!(out.status.code(), Some(0), "{}", describe(out));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !text.contains("prepared statement"),
            "a prepared statement collided:\n{}",
            describe(out)
        );
        if text.contains("Waiting for the migration lock") {
            waited += 1;
        }
        if !text.contains("nothing to do") {
            applied += 1;
        }
    }
    assert_eq!(applied, 1, "exactly one apply ran the release");
    assert_ran_once(server, &db);
    assert_eq!(advisory_locks(server, &db), 0, "a lock was left behind");
    // Every squizzle transaction has ended. The pooler closes a server
    // connection whose client left mid-transaction, and the server notices
    // that a moment later: give it a few seconds, no more.
    let open = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' \
                AND application_name LIKE 'squizzle%' AND state LIKE 'idle in transaction%'";
    let deadline = Instant::now() + Duration::from_secs(5);
    while int(server, &db, open) > 0 {
        assert!(
            Instant::now() < deadline,
            "a squizzle transaction stayed open: {:?}",
            server.query(
                &db,
                "SELECT pid::text, application_name, state, query FROM pg_stat_activity \
                 WHERE application_name LIKE 'squizzle%'"
            )
        );
        thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "pooler figures ({mode:?} pooling, pool size 4): {APPLIERS} concurrent applies in {:.2} s; \
         1 ran the release, {} said nothing to do, {waited} reported waiting for the lock",
        wall.as_secs_f64(),
        APPLIERS - 1
    );

    // A later apply through the same pool starts at once and has nothing to do.
    let again = squizzle(&world, &url, &["apply", "1.0.0", "--lock-timeout", "5s"])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", describe(&again));
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to do"));
    // The one apply that ran recorded one fingerprint, and drift reads it
    // back through the pool with unnamed statements only.
    assert_eq!(
        int(server, &db, "SELECT count(*) FROM squizzle.fingerprints"),
        1
    );
    let drift = squizzle(&world, &url, &["drift", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(drift.status.code(), Some(0), "{}", describe(&drift));
    let doc: serde_json::Value = serde_json::from_slice(&drift.stdout).unwrap();
    assert_eq!(doc["outcome"], "no_drift", "{doc:#}");
    drop(bouncer);
}

#[test]
fn twenty_concurrent_applies_through_a_transaction_pooler_run_each_migration_once() {
    concurrent_applies_through(PoolMode::Transaction);
}

#[test]
fn twenty_concurrent_applies_through_a_session_pooler_run_each_migration_once() {
    concurrent_applies_through(PoolMode::Session);
}

/// A SIGKILLed holder leaves no lock on the pooled server connection: the
/// pooler closes a server connection whose client left mid-transaction, and
/// PostgreSQL rolls that transaction back. The next apply takes the lock and
/// runs the release once, with statement timeouts that did not leak.
#[test]
fn a_killed_apply_leaves_no_lock_on_a_transaction_pooler() {
    killed_then_applied_again(
        "pooler kill at lock",
        false,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    );
}

/// Killed while its migrating connection runs a statement, on a direct
/// connection (PgBouncer cancels the statement of a client that left): the
/// statement goes on running on the server after the lock's connection is
/// gone, and the next apply waits for that earlier transaction to end (the
/// work lock) instead of running beside it.
#[test]
fn a_killed_apply_mid_statement_is_waited_for_not_run_beside() {
    killed_then_applied_again(
        "kill mid statement",
        true,
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' \
         AND query LIKE '%pg_sleep(1.5)%' AND datname = current_database() \
         AND pid <> pg_backend_pid()",
    );
}

/// Starts an apply, SIGKILLs it once `until` (a count query) is above zero,
/// then applies again. Through a transaction pooler; or, with `waits`,
/// directly, and that apply must say it waited (for the killed run's
/// statement to end).
fn killed_then_applied_again(name: &str, waits: bool, until: &str) {
    let world = release();
    let server = pg::shared();
    let db = server.create_database(name);
    let bouncer = PgBouncer::start(server, PoolMode::Transaction, 2);
    let url = if waits {
        format!("{db}?sslmode=disable")
    } else {
        bouncer.url(&db)
    };

    let mut first = squizzle(&world, &url, &["apply", "1.0.0"]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while int(server, &db, until) == 0 {
        assert!(
            Instant::now() < deadline,
            "the first apply never got there: {until}"
        );
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first apply ended before {until}"
        );
        thread::sleep(Duration::from_millis(2));
    }
    first.kill().unwrap();
    let _ = first.wait_with_output();

    let started = Instant::now();
    let second = squizzle(
        &world,
        &url,
        &[
            "apply",
            "1.0.0",
            "--lock-timeout",
            "20s",
            "--statement-timeout",
            "30s",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(second.status.code(), Some(0), "{}", describe(&second));
    if waits {
        assert!(
            String::from_utf8_lossy(&second.stderr).contains("Waiting for the migration lock"),
            "the next apply must wait for the killed run's transaction:\n{}",
            describe(&second)
        );
    }
    eprintln!(
        "pooler figures ({name}): after SIGKILL of the holder, the next apply took the lock and finished in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert_ran_once(server, &db);
    assert_eq!(advisory_locks(server, &db), 0);
    // No pooled server connection kept squizzle's statement timeout.
    if waits {
        return;
    }
    for _ in 0..4 {
        let shown = std::process::Command::new("psql")
            .args([
                "-X",
                "-At",
                "-c",
                "SHOW statement_timeout",
                &bouncer.url(&db),
            ])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&shown.stdout).trim(),
            "0",
            "squizzle's statement_timeout leaked to a pooled connection"
        );
    }
}

/// The lock's connection ends while the release runs (an administrator's
/// `pg_terminate_backend`, a pooler restart): the run stops before it
/// commits anything more, exit 3, and a re-run completes the release.
#[test]
fn losing_the_lock_connection_stops_the_run_before_it_commits() {
    let w = World::new();
    w.config(PLAIN_CONFIG);
    w.write("migrations/0001_t.sql", "CREATE TABLE t (id integer);\n");
    w.write("migrations/0002_slow.sql", "SELECT pg_sleep(1.5);\n");
    w.build_ok("1.0.0");
    let server = pg::shared();
    let db = server.create_database("lock lost");

    // The migration lock's own key: the migrating connection holds another
    // (the work lock) while its transaction runs.
    let key = squizzle::db::lock::key_for(&squizzle::core::ident::Ident::new("squizzle").unwrap());
    let first = squizzle(&w, &db, &["apply", "1.0.0"]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let holder = loop {
        let rows = server.query(
            &db,
            &format!(
                "SELECT pid::text FROM pg_locks WHERE locktype = 'advisory' AND granted \
                 AND classid::bigint = {} AND objid::bigint = {} AND objsubid = 2 \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                key.class, key.object
            ),
        );
        if let Some(r) = rows.first() {
            break r[0].clone().unwrap();
        }
        assert!(Instant::now() < deadline, "the apply never took the lock");
        thread::sleep(Duration::from_millis(5));
    };
    server.query(&db, &format!("SELECT pg_terminate_backend({holder})"));
    let out = first.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("lost the migration lock while committing"),
        "{}",
        describe(&out)
    );
    assert_eq!(
        int(
            server,
            &db,
            "SELECT count(*) FROM pg_tables WHERE tablename = 't'"
        ),
        0,
        "nothing may commit without the lock"
    );
    let again = squizzle(&w, &db, &["apply", "1.0.0"]).output().unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", describe(&again));
    assert_eq!(
        int(
            server,
            &db,
            "SELECT count(*) FROM squizzle.migrations WHERE complete"
        ),
        2
    );
}

/// The second line of defence: should another applier record a migration
/// while this one runs it (here the migration itself plays that applier),
/// the row is not overwritten, the transaction rolls back, and the exit
/// code (3) says to run apply again.
#[test]
fn a_migration_recorded_by_another_applier_meanwhile_is_not_recorded_twice() {
    let w = World::new();
    w.config(PLAIN_CONFIG);
    w.write("migrations/0001_t.sql", "CREATE TABLE t (id integer);\n");
    w.build_ok("1.0.0");
    w.write(
        "migrations/0002_race.sql",
        "INSERT INTO t VALUES (2);\n\
         INSERT INTO squizzle.migrations (migration_id, path, sha256, version, duration_ms, \
         statements_done, statements_total, complete) \
         VALUES ('0002_race', '0002_race.sql', 'elsewhere', '1.1.0', 1, 2, 2, true);\n",
    );
    w.build_ok("1.1.0");
    let server = pg::shared();
    let db = server.create_database("applied concurrently");
    let first = squizzle(&w, &db, &["apply", "1.0.0"]).output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", describe(&first));

    let out = squizzle(&w, &db, &["apply", "1.1.0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("migration 0002_race was recorded by another apply while this one ran it"),
        "{}",
        describe(&out)
    );
    // Rolled back: neither the insert nor the stand-in's row is there.
    assert_eq!(int(server, &db, "SELECT count(*) FROM t"), 0);
    assert_eq!(
        int(
            server,
            &db,
            "SELECT count(*) FROM squizzle.migrations WHERE migration_id = '0002_race'"
        ),
        0
    );
}
