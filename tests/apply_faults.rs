//! `squizzle apply` under faults, against a real PostgreSQL 15: many
//! concurrent appliers, SIGKILL of squizzle at arbitrary moments (one
//! transaction, and files run outside transactions), the server crashing in
//! the middle of an apply, and a second apply told who holds the lock.
//!
//! Every run is the real binary, started with `std::process::Command` in a
//! temporary project (see `tests/common/mod.rs`), the database URL in
//! `DATABASE_URL`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use squizzle_test_support::pg::{self, PgOptions, PgServer};
use squizzle_test_support::{PLAIN_CONFIG, World};

const BIN: &str = env!("CARGO_BIN_EXE_squizzle");

// ---------------------------------------------------------------------------
// Running the binary.

/// `squizzle ARGS...` in the world's project, with the same clean environment
/// as `World::command` plus `DATABASE_URL`.
fn squizzle(world: &World, url: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(world.root())
        .env_clear()
        .env("HOME", world.home())
        .env("DATABASE_URL", url)
        .args(args)
        .stdin(Stdio::null());
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd
}

/// A running squizzle whose stdout and stderr are collected as they come, so
/// the test can see how far it got before it is killed.
struct Watched {
    child: Child,
    started: Instant,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

/// What a finished (or killed) run printed.
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Finished {
    fn code(&self) -> Option<i32> {
        self.status.code()
    }

    fn describe(&self) -> String {
        format!(
            "--- status: {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

fn collect(stream: impl Read + Send + 'static, into: Arc<Mutex<String>>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => into.lock().unwrap().push_str(&line),
            }
        }
    })
}

impl Watched {
    fn spawn(mut cmd: Command) -> Self {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd.spawn().expect("spawn squizzle");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            collect(child.stdout.take().expect("stdout"), stdout.clone()),
            collect(child.stderr.take().expect("stderr"), stderr.clone()),
        ];
        Watched {
            child,
            started,
            stdout,
            stderr,
            readers,
        }
    }

    /// Migrations reported done so far (`✓ <path> (<n> statements, <ms> ms)`).
    /// In the default mode these ran inside the still-open transaction.
    fn files_done(&self) -> usize {
        files_done(&self.stdout.lock().unwrap())
    }

    /// Waits until at least `at_least` migrations are reported done; panics
    /// (after killing the child) if the process ends or `timeout` passes first.
    fn wait_for_files(&mut self, at_least: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.files_done() < at_least {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "squizzle ended ({status}) before reporting {at_least} migrations done:\n{}",
                    self.stdout.lock().unwrap()
                );
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("squizzle did not report {at_least} migrations done within {timeout:?}");
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGKILL (`Child::kill` sends SIGKILL on Unix).
    fn kill(&mut self) {
        self.child.kill().expect("SIGKILL squizzle");
    }

    fn finish(mut self) -> Finished {
        let status = self.child.wait().expect("wait for squizzle");
        let elapsed = self.started.elapsed();
        for r in self.readers.drain(..) {
            r.join().expect("output reader");
        }
        Finished {
            status,
            stdout: self.stdout.lock().unwrap().clone(),
            stderr: self.stderr.lock().unwrap().clone(),
            elapsed,
        }
    }
}

fn files_done(stdout: &str) -> usize {
    stdout
        .lines()
        .filter(|l| l.contains(" statements") && l.trim_end().ends_with(" ms)"))
        .count()
}

// ---------------------------------------------------------------------------
// Querying the database (as the superuser, over the Unix socket).

fn scalar(server: &PgServer, db: &str, sql: &str) -> Option<String> {
    let rows = server.query(db, sql);
    assert_eq!(rows.len(), 1, "one row expected from {sql}: {rows:?}");
    rows[0][0].clone()
}

fn int(server: &PgServer, db: &str, sql: &str) -> i64 {
    scalar(server, db, sql)
        .unwrap_or_else(|| panic!("NULL from {sql}"))
        .parse()
        .unwrap_or_else(|e| panic!("not an integer from {sql}: {e}"))
}

fn table_exists(server: &PgServer, db: &str, name: &str) -> bool {
    scalar(
        server,
        db,
        &format!("SELECT to_regclass('{name}') IS NOT NULL"),
    )
    .as_deref()
        == Some("t")
}

/// Rows of `squizzle.releases`: (success, migrations_run), oldest first; empty
/// when the history does not exist.
fn release_rows(server: &PgServer, db: &str) -> Vec<(bool, i64)> {
    if !table_exists(server, db, "squizzle.releases") {
        return Vec::new();
    }
    server
        .query(
            db,
            "SELECT success, migrations_run FROM squizzle.releases ORDER BY id",
        )
        .into_iter()
        .map(|r| {
            (
                r[0].as_deref() == Some("t"),
                r[1].as_deref().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

/// `squizzle.migrations`, keyed by the number prefix of the migration id:
/// (statements_done, statements_total, complete).
fn migration_rows(server: &PgServer, db: &str) -> BTreeMap<u32, (i64, i64, bool)> {
    if !table_exists(server, db, "squizzle.migrations") {
        return BTreeMap::new();
    }
    server
        .query(
            db,
            "SELECT migration_id, statements_done, statements_total, complete FROM squizzle.migrations",
        )
        .into_iter()
        .map(|r| {
            let id = r[0].clone().unwrap();
            let n: u32 = id
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .unwrap_or_else(|_| panic!("migration id {id:?} has no number prefix"));
            (
                n,
                (
                    r[1].as_deref().unwrap().parse().unwrap(),
                    r[2].as_deref().unwrap().parse().unwrap(),
                    r[3].as_deref() == Some("t"),
                ),
            )
        })
        .collect()
}

/// Waits until no session but ours is connected to `db`. After squizzle is
/// SIGKILLed its backend lives on until it notices the closed socket (at the
/// end of the statement it is running): only then is the outcome final (an
/// open transaction rolled back, or an in-flight autocommit statement done).
fn wait_until_disconnected(server: &PgServer, db: &str) {
    let name = pg::db_name(db);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let n = int(
            server,
            db,
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            ),
        );
        if n == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{n} session(s) still connected to {name} 15 s after squizzle died"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

fn drop_database(server: &PgServer, db: &str) {
    server.query(
        "postgres",
        &format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            pg::quote_ident(pg::db_name(db))
        ),
    );
}

/// Deterministic pseudo-random fractions in [0, `max`) from a fixed-seed LCG
/// (Knuth's MMIX constants), so every run kills at the same relative moments.
fn lcg_fractions(seed: u64, n: usize, max: f64) -> Vec<f64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 11) as f64 / (1u64 << 53) as f64 * max
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Releases.

/// A project with `files` under migrations/ and release 1.0.0 built.
fn project(files: &[(String, String)]) -> World {
    let w = World::new();
    w.config(PLAIN_CONFIG);
    for (name, sql) in files {
        w.write(&format!("migrations/{name}"), sql);
    }
    w.build_ok("1.0.0");
    w
}

const LONG: u32 = 40;

/// The "long" release: 40 migrations, each sleeping 10-30 ms, creating a
/// table `app_NN` and inserting its number into `marker` (created by the
/// first). All ordinary files: by default one transaction.
fn long_release() -> World {
    let files: Vec<(String, String)> = (1..=LONG)
        .map(|n| {
            let create_marker = if n == 1 {
                "CREATE TABLE marker (migration integer NOT NULL);\n"
            } else {
                ""
            };
            let sleep = 0.01 + f64::from((n * 7) % 3) * 0.01;
            (
                format!("{n:04}_step_{n:02}.sql"),
                format!(
                    "-- step {n}\n{create_marker}SELECT pg_sleep({sleep:.2});\n\
                     CREATE TABLE app_{n:02} (id bigint PRIMARY KEY, note text);\n\
                     INSERT INTO marker (migration) VALUES ({n});\n"
                ),
            )
        })
        .collect();
    project(&files)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxOutcome {
    Untouched,
    Complete,
}

/// The long release's effect on `db`: all of it or nothing, never part.
#[track_caller]
fn long_release_state(server: &PgServer, db: &str) -> TxOutcome {
    let app_tables = int(
        server,
        db,
        r"SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'app\_%'",
    );
    let marker = table_exists(server, db, "public.marker").then(|| {
        server
            .query(db, "SELECT migration FROM marker ORDER BY migration")
            .into_iter()
            .map(|r| r[0].as_deref().unwrap().parse::<u32>().unwrap())
            .collect::<Vec<_>>()
    });
    let releases = release_rows(server, db);
    let migrations = migration_rows(server, db);
    let state = format!(
        "app tables: {app_tables}, marker: {marker:?}, releases (success, migrations_run): {releases:?}, \
         migration rows: {}",
        migrations.len()
    );
    if app_tables == 0 && marker.is_none() && releases.is_empty() && migrations.is_empty() {
        return TxOutcome::Untouched;
    }
    let all: Vec<u32> = (1..=LONG).collect();
    // Every file has 3 statements; the first one 4 (it creates `marker`).
    let migrations_complete = migrations.keys().copied().eq(1..=LONG)
        && migrations.iter().all(|(&n, &(done, total, complete))| {
            complete && done == total && total == if n == 1 { 4 } else { 3 }
        });
    let complete = app_tables == i64::from(LONG)
        && marker.as_ref() == Some(&all)
        && releases == [(true, i64::from(LONG))]
        && migrations_complete;
    assert!(
        complete,
        "the database is neither untouched nor complete: {state}"
    );
    TxOutcome::Complete
}

// ---------------------------------------------------------------------------
// 1. Twenty appliers at once.

#[test]
fn twenty_concurrent_applies_run_each_migration_exactly_once() {
    const N: u32 = 30;
    let files: Vec<(String, String)> = (1..=N)
        .map(|n| {
            let counter = if n == 1 {
                // No unique key on purpose: a migration run twice would show
                // as a count of 2 instead of failing.
                "CREATE TABLE counter (migration integer NOT NULL);\n"
            } else {
                ""
            };
            (
                format!("{n:04}_m{n:02}.sql"),
                format!(
                    "{counter}SELECT pg_sleep(0.02);\nCREATE TABLE t_{n:02} (id integer);\n\
                     INSERT INTO counter (migration) VALUES ({n});\n"
                ),
            )
        })
        .collect();
    let world = project(&files);
    let server = pg::shared();
    let db = server.create_database("concurrent");

    let started = Instant::now();
    let runs: Vec<Watched> = (0..20)
        .map(|_| {
            Watched::spawn(squizzle(
                &world,
                &db,
                &["apply", "1.0.0", "--lock-timeout", "2m"],
            ))
        })
        .collect();
    let done: Vec<Finished> = runs.into_iter().map(Watched::finish).collect();
    eprintln!(
        "20 concurrent applies finished in {:.2?}",
        started.elapsed()
    );

    for (i, f) in done.iter().enumerate() {
        assert_eq!(f.code(), Some(0), "apply #{i} failed\n{}", f.describe());
    }
    let applied: Vec<&Finished> = done
        .iter()
        .filter(|f| f.stdout.contains("Applied 1.0.0 to"))
        .collect();
    let nothing: Vec<&Finished> = done
        .iter()
        .filter(|f| {
            f.stdout.contains("1.0.0 is already applied to") && f.stdout.contains("nothing to do")
        })
        .collect();
    assert_eq!(applied.len(), 1, "exactly one apply runs the migrations");
    assert_eq!(nothing.len(), 19, "the 19 others find nothing to do");
    assert!(
        applied[0].stdout.contains(&format!(": {N} migrations,")),
        "{}",
        applied[0].describe()
    );
    // With 20 sessions racing for the lock, most wait and say so.
    let waited = done
        .iter()
        .filter(|f| f.stderr.contains("Waiting for the migration lock"))
        .count();
    assert!(waited >= 1, "nobody waited for the lock?");

    // Each migration's effect exactly once.
    let counts = server.query(
        &db,
        "SELECT migration, count(*) FROM counter GROUP BY migration ORDER BY migration",
    );
    let expected: Vec<Vec<Option<String>>> = (1..=N)
        .map(|n| vec![Some(n.to_string()), Some("1".into())])
        .collect();
    assert_eq!(counts, expected, "(migration, times run)");
    assert_eq!(
        int(
            server,
            &db,
            r"SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 't\_%'"
        ),
        i64::from(N)
    );
    // One release row: the success of the one that ran. "Nothing to do" writes nothing.
    assert_eq!(release_rows(server, &db), [(true, i64::from(N))]);
    let migrations = migration_rows(server, &db);
    assert_eq!(migrations.len(), N as usize);
    assert!(
        migrations
            .values()
            .all(|&(done, total, c)| c && done == total)
    );
    // And nobody holds the lock any more.
    assert_eq!(
        int(
            server,
            &db,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ),
        0
    );
}

// ---------------------------------------------------------------------------
// 2. SIGKILL at random moments.

const KILLS: usize = 12;

#[test]
fn sigkill_during_a_one_transaction_apply_leaves_nothing_or_everything() {
    let world = long_release();
    let server = pg::shared();

    // Calibrate: how long one whole apply takes here (spawn to exit).
    let db = server.create_database("kill tx calibrate");
    let full = Watched::spawn(squizzle(&world, &db, &["apply", "1.0.0"])).finish();
    assert_eq!(full.code(), Some(0), "{}", full.describe());
    assert_eq!(long_release_state(server, &db), TxOutcome::Complete);
    drop_database(server, &db);
    let expected = full.elapsed;

    // Kill points spread over [0, 1.15) of the expected duration: from
    // before the connection to around the COMMIT and the exit.
    let fractions = lcg_fractions(0x5157_5a4c_0001, KILLS, 1.15);
    eprintln!(
        "full apply: {expected:.2?}; kill at fractions {:?}",
        fractions
            .iter()
            .map(|f| format!("{f:.2}"))
            .collect::<Vec<_>>()
    );
    let (mut untouched, mut complete, mut mid_run) = (0, 0, 0);
    for (i, frac) in fractions.iter().enumerate() {
        let db = server.create_database(&format!("kill tx {i}"));
        let mut run = Watched::spawn(squizzle(&world, &db, &["apply", "1.0.0"]));
        thread::sleep(expected.mul_f64(*frac));
        let ran_before_kill = run.files_done();
        run.kill();
        let killed = run.finish();
        wait_until_disconnected(server, &db);
        let outcome = long_release_state(server, &db);
        let said_applied = killed.stdout.contains("Applied 1.0.0 to");
        eprintln!(
            "kill #{i} at {:.0} ms ({ran_before_kill} migrations had run in the transaction): {outcome:?}{}",
            expected.mul_f64(*frac).as_secs_f64() * 1000.0,
            match killed.code() {
                Some(c) => format!(" (it had already exited with {c})"),
                None => String::new(),
            }
        );
        match outcome {
            TxOutcome::Untouched => {
                untouched += 1;
                assert!(!said_applied, "reported applied but nothing is there");
                if ran_before_kill > 0 {
                    // Killed with migrations run but not committed: rolled back.
                    mid_run += 1;
                }
            }
            TxOutcome::Complete => complete += 1,
        }

        // A re-run completes whatever state the kill left.
        let again = Watched::spawn(squizzle(&world, &db, &["apply", "1.0.0"])).finish();
        assert_eq!(
            again.code(),
            Some(0),
            "re-run after kill #{i}\n{}",
            again.describe()
        );
        assert_eq!(long_release_state(server, &db), TxOutcome::Complete);
        if outcome == TxOutcome::Complete {
            assert!(
                again.stdout.contains("nothing to do"),
                "{}",
                again.describe()
            );
        }
        drop_database(server, &db);
    }
    eprintln!(
        "one-transaction release: {untouched} untouched ({mid_run} of them killed mid-run), {complete} complete"
    );
    assert!(
        mid_run >= 1,
        "no kill landed while migrations were running inside the transaction"
    );
}

const NT_FILES: u32 = 10;
const NT_STATEMENTS: u32 = 5;

/// Ten no-transaction files of five statements each. Every statement is one
/// observable effect: it sleeps 10 ms and inserts its own `(file, statement)`
/// row into `progress`, so the rows present can be compared statement for
/// statement with the `statements_done` squizzle recorded.
///
/// The inserts are `ON CONFLICT ... DO UPDATE SET runs = runs + 1` rather
/// than plain inserts: outside a transaction, squizzle runs a statement and
/// *then* records its progress, so a kill between the two leaves exactly one
/// statement that ran without being recorded, and the re-run executes it
/// again (it resumes at `statements_done`). A plain insert on the unique key
/// would fail on that re-execution; this one succeeds and counts it, so the
/// test can assert that nothing but that single in-flight statement ran
/// twice (`DO NOTHING` would hide it).
fn no_transaction_release() -> World {
    let files: Vec<(String, String)> = (1..=NT_FILES)
        .map(|f| {
            let mut sql = format!("-- squizzle:no-transaction\n-- progress file {f}\n");
            for s in 1..=NT_STATEMENTS {
                sql.push_str(&format!(
                    "INSERT INTO progress (f, s) SELECT {f}, {s} FROM pg_sleep(0.01) \
                     ON CONFLICT (f, s) DO UPDATE SET runs = progress.runs + 1;\n"
                ));
            }
            (format!("{f:04}_progress_{f:02}.sql"), sql)
        })
        .collect();
    project(&files)
}

const PROGRESS_TABLE: &str = "CREATE TABLE progress (f integer, s integer, runs integer NOT NULL DEFAULT 1, PRIMARY KEY (f, s))";

/// `progress` rows: (file, statement) -> runs.
fn progress(server: &PgServer, db: &str) -> BTreeMap<(u32, u32), i64> {
    server
        .query(db, "SELECT f, s, runs FROM progress")
        .into_iter()
        .map(|r| {
            (
                (
                    r[0].as_deref().unwrap().parse().unwrap(),
                    r[1].as_deref().unwrap().parse().unwrap(),
                ),
                r[2].as_deref().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

/// Checks the state a kill left and returns (statements recorded, whether one
/// more statement ran than was recorded).
#[track_caller]
fn check_no_transaction_state(server: &PgServer, db: &str) -> (u32, bool) {
    let rows = progress(server, db);
    let recorded = migration_rows(server, db);
    let releases = release_rows(server, db);
    let state = format!("progress: {rows:?}\nmigrations: {recorded:?}\nreleases: {releases:?}");
    // Nothing ran twice: this database saw one (killed) apply.
    assert!(rows.values().all(|&r| r == 1), "{state}");
    // Files run in order, each to its end before the next starts: the
    // recorded files are 1..=k, all complete but possibly the last.
    let k = recorded.len() as u32;
    assert!(recorded.keys().copied().eq(1..=k), "{state}");
    for (&f, &(done, total, complete)) in &recorded {
        assert_eq!(total, i64::from(NT_STATEMENTS), "{state}");
        assert!(done >= 1 && done <= total, "{state}");
        assert_eq!(complete, done == total, "{state}");
        if f < k {
            assert!(
                complete,
                "file {f} is unfinished but {k} has started\n{state}"
            );
        }
    }
    // Every recorded statement's row exists ...
    let mut expected: BTreeSet<(u32, u32)> = BTreeSet::new();
    for (&f, &(done, _, _)) in &recorded {
        for s in 1..=done as u32 {
            expected.insert((f, s));
        }
    }
    let present: BTreeSet<(u32, u32)> = rows.keys().copied().collect();
    assert!(
        expected.is_subset(&present),
        "recorded but missing\n{state}"
    );
    // ... and at most ONE more: the statement right after the recorded
    // progress, which ran (autocommit) but was killed before its progress
    // row was written. That window is inherent to running outside a
    // transaction; anything beyond it would be a lost progress write.
    let extra: Vec<(u32, u32)> = present.difference(&expected).copied().collect();
    let next = match recorded.get(&k) {
        Some(&(done, total, _)) if done < total => Some((k, done as u32 + 1)),
        _ if k < NT_FILES => Some((k + 1, 1)),
        _ => None,
    };
    match extra.as_slice() {
        [] => {}
        [one] => assert_eq!(
            Some(*one),
            next,
            "the only statement allowed to have run unrecorded is the next one\n{state}"
        ),
        _ => panic!(
            "{} statements ran without their progress being recorded\n{state}",
            extra.len()
        ),
    }
    // A success row only once every file is complete.
    let all_complete = k == NT_FILES && recorded.values().all(|m| m.2);
    assert!(releases.iter().all(|r| r.0), "{state}");
    assert!(releases.len() <= 1, "{state}");
    if !releases.is_empty() {
        assert!(
            all_complete,
            "success recorded for a partial apply\n{state}"
        );
        assert_eq!(releases[0].1, i64::from(NT_FILES), "{state}");
    }
    (expected.len() as u32, !extra.is_empty())
}

#[test]
fn sigkill_during_no_transaction_files_resumes_without_rerunning_recorded_statements() {
    let world = no_transaction_release();
    let server = pg::shared();
    let total = NT_FILES * NT_STATEMENTS;

    let db = server.create_database("kill nt calibrate");
    server.query(&db, PROGRESS_TABLE);
    let full = Watched::spawn(squizzle(&world, &db, &["apply", "1.0.0"])).finish();
    assert_eq!(full.code(), Some(0), "{}", full.describe());
    assert_eq!(progress(server, &db).len(), total as usize);
    drop_database(server, &db);
    let expected = full.elapsed;

    let fractions = lcg_fractions(0x5157_5a4c_0002, KILLS, 1.15);
    eprintln!(
        "full apply: {expected:.2?}; kill at fractions {:?}",
        fractions
            .iter()
            .map(|f| format!("{f:.2}"))
            .collect::<Vec<_>>()
    );
    let (mut before_any, mut partial, mut all_ran, mut in_flight) = (0, 0, 0, 0);
    for (i, frac) in fractions.iter().enumerate() {
        let db = server.create_database(&format!("kill nt {i}"));
        server.query(&db, PROGRESS_TABLE);
        let mut run = Watched::spawn(squizzle(&world, &db, &["apply", "1.0.0"]));
        thread::sleep(expected.mul_f64(*frac));
        run.kill();
        let _ = run.finish();
        wait_until_disconnected(server, &db);
        let (recorded, extra) = check_no_transaction_state(server, &db);
        let ran = recorded + u32::from(extra);
        eprintln!(
            "kill #{i} at {:.0} ms: {recorded} statements recorded{}",
            expected.mul_f64(*frac).as_secs_f64() * 1000.0,
            if extra { " + 1 in flight" } else { "" }
        );
        match ran {
            0 => before_any += 1,
            r if r == total => all_ran += 1,
            _ => partial += 1,
        }
        in_flight += usize::from(extra);

        let again = Watched::spawn(squizzle(&world, &db, &["apply", "1.0.0"])).finish();
        assert_eq!(
            again.code(),
            Some(0),
            "re-run after kill #{i}\n{}",
            again.describe()
        );
        if recorded > 0 && recorded < total && recorded % NT_STATEMENTS != 0 {
            assert!(
                again.stdout.contains(&format!(
                    "at statement {} of {NT_STATEMENTS}",
                    recorded % NT_STATEMENTS + 1
                )),
                "the re-run should say where it resumes\n{}",
                again.describe()
            );
        }
        let rows = progress(server, &db);
        assert_eq!(
            rows.keys().copied().collect::<Vec<_>>(),
            (1..=NT_FILES)
                .flat_map(|f| (1..=NT_STATEMENTS).map(move |s| (f, s)))
                .collect::<Vec<_>>(),
            "every statement's row exactly once after the re-run"
        );
        // Only the in-flight statement (if any) was executed twice.
        let reruns: i64 = rows.values().map(|r| r - 1).sum();
        assert_eq!(
            reruns,
            i64::from(extra),
            "statements executed twice: {:?}",
            rows.iter().filter(|(_, r)| **r > 1).collect::<Vec<_>>()
        );
        let migrations = migration_rows(server, &db);
        assert_eq!(migrations.len(), NT_FILES as usize);
        assert!(
            migrations
                .values()
                .all(|&(d, t, c)| c && d == t && t == i64::from(NT_STATEMENTS))
        );
        let releases = release_rows(server, &db);
        assert_eq!(releases.len(), 1, "{releases:?}");
        assert!(releases[0].0);
        drop_database(server, &db);
    }
    eprintln!(
        "no-transaction release: {before_any} killed before any statement, {partial} part-way, \
         {all_ran} after every statement; {in_flight} with one statement in flight"
    );
    assert!(partial >= 1, "no kill landed part-way through the files");
}

// ---------------------------------------------------------------------------
// 3. The server dies mid-apply.

#[test]
fn server_killed_mid_apply_exits_3_and_a_rerun_after_restart_completes() {
    let world = long_release();
    let server = PgServer::start(PgOptions::default());
    let db = server.create_database("server crash");

    let mut run = Watched::spawn(squizzle(&world, &db, &["apply", "1.0.0"]));
    // Well inside the transaction: some migrations have run, none committed.
    run.wait_for_files(5, Duration::from_secs(30));
    server.kill();
    let crashed = run.finish();
    assert_eq!(
        crashed.code(),
        Some(3),
        "connection lost is exit 3\n{}",
        crashed.describe()
    );
    assert!(
        crashed
            .stderr
            .contains("lost the connection to the database while running migrations/"),
        "the message says the connection was lost, and where\n{}",
        crashed.describe()
    );
    assert!(!crashed.stdout.contains("Applied 1.0.0"));

    server.restart();
    assert_eq!(long_release_state(&server, &db), TxOutcome::Untouched);
    assert!(
        release_rows(&server, &db).iter().all(|r| !r.0),
        "nothing recorded as a success"
    );

    let again = Watched::spawn(squizzle(&world, &db, &["apply", "1.0.0"])).finish();
    assert_eq!(again.code(), Some(0), "{}", again.describe());
    assert!(
        again.stdout.contains("Applied 1.0.0 to"),
        "{}",
        again.describe()
    );
    assert_eq!(long_release_state(&server, &db), TxOutcome::Complete);
}

// ---------------------------------------------------------------------------
// 4. A second apply is told who holds the lock.

#[test]
fn a_waiting_apply_names_the_lock_holder() {
    let world = project(&[
        (
            "0001_table.sql".into(),
            "CREATE TABLE held (id integer);\n".into(),
        ),
        ("0002_slow.sql".into(), "SELECT pg_sleep(3);\n".into()),
    ]);
    let server = pg::shared();
    let db = server.create_database("lock holder");
    let name = pg::db_name(&db).to_owned();

    let first = Watched::spawn(squizzle(&world, &db, &["apply", "1.0.0"]));
    // Wait until it holds the migration lock (not the work lock its
    // migrating connection also takes), and learn its backend's pid.
    let key = squizzle::db::lock::key_for(&squizzle::core::ident::Ident::new("squizzle").unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    let (pid, app) = loop {
        let rows = server.query(
            &db,
            &format!(
                "SELECT a.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                 WHERE l.locktype = 'advisory' AND l.granted AND a.datname = '{name}' \
                 AND l.classid::bigint = {} AND l.objid::bigint = {} AND l.objsubid = 2",
                key.class, key.object
            ),
        );
        if let Some(r) = rows.first() {
            break (r[0].clone().unwrap(), r[1].clone().unwrap_or_default());
        }
        assert!(
            Instant::now() < deadline,
            "the first apply never took the lock"
        );
        thread::sleep(Duration::from_millis(10));
    };
    assert!(app.starts_with("squizzle apply 1.0.0 on "), "{app:?}");
    let holder = format!("pid {pid} (squizzle apply 1.0.0 on ");

    // A patient second apply waits, says for whom, then has nothing to do.
    let patient = Watched::spawn(squizzle(
        &world,
        &db,
        &["apply", "1.0.0", "--lock-timeout", "1m"],
    ));
    // An impatient third one gives up with exit 8, naming the holder too.
    let impatient = Watched::spawn(squizzle(
        &world,
        &db,
        &["apply", "1.0.0", "--lock-timeout", "300ms"],
    ))
    .finish();
    assert_eq!(impatient.code(), Some(8), "{}", impatient.describe());
    assert!(
        impatient
            .stderr
            .contains(&format!("Waiting for the migration lock, held by {holder}")),
        "{}",
        impatient.describe()
    );
    assert!(
        impatient
            .stderr
            .contains("waiting for the migration lock; it is held by ")
            && impatient.stderr.contains(&holder),
        "{}",
        impatient.describe()
    );

    let first = first.finish();
    assert_eq!(first.code(), Some(0), "{}", first.describe());
    assert!(!first.stderr.contains("Waiting for the migration lock"));
    let patient = patient.finish();
    assert_eq!(patient.code(), Some(0), "{}", patient.describe());
    assert!(
        patient
            .stderr
            .contains(&format!("Waiting for the migration lock, held by {holder}")),
        "{}",
        patient.describe()
    );
    assert!(
        patient.stdout.contains("nothing to do"),
        "{}",
        patient.describe()
    );
    // The one that timed out recorded nothing; only the first wrote a row.
    assert_eq!(release_rows(server, &db), [(true, 2)]);
}
