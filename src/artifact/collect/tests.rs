use super::atlas::atlas_sum;
use super::*;
use crate::core::manifest::TransactionMode;

fn write(root: &Path, rel: &str, body: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

fn sources<'a>(root: &'a Path, dir: &'a str) -> Sources<'a> {
    Sources {
        root,
        migrations: dir,
        format: None,
        rollbacks: Some("db/rollback"),
        seeds: Some("db/seeds"),
    }
}

fn ids(c: &Collection, kind: FileKind) -> Vec<String> {
    c.files
        .iter()
        .filter(|f| f.kind == kind)
        .map(|f| f.id.clone())
        .collect()
}

#[test]
fn plain_folder_orders_numerically_and_pairs_rollbacks_and_seeds() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    for f in [
        "migrations/10_c.sql",
        "migrations/2_b.up.sql",
        "migrations/0001_a.sql",
        "migrations/README.md",
    ] {
        write(r, f, "SELECT 1;");
    }
    write(r, "migrations/0001_a.down.sql", "SELECT 0;");
    write(r, "db/rollback/10_c.sql", "SELECT 0;");
    write(r, "db/seeds/b.sql", "SELECT 0;");
    write(r, "db/seeds/a.sql", "SELECT 0;");
    let c = collect(&sources(r, "migrations")).unwrap();
    assert_eq!(c.format, SourceFormat::Plain);
    assert_eq!(ids(&c, FileKind::Migration), ["0001_a", "2_b", "10_c"]);
    assert_eq!(ids(&c, FileKind::Rollback), ["0001_a", "10_c"]);
    assert_eq!(ids(&c, FileKind::Seed), ["a", "b"]);
    assert_eq!(c.files[0].path, "migrations/0001_a.sql");
    let rb: Vec<_> = c
        .files
        .iter()
        .filter(|f| f.kind == FileKind::Rollback)
        .map(|f| (f.order, f.path.as_str()))
        .collect();
    assert_eq!(
        rb,
        [
            (0, "migrations/0001_a.down.sql"),
            (1, "db/rollback/10_c.sql")
        ]
    );
}

#[test]
fn plain_folder_errors() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(r, "m/0001_a.sql", "");
    write(r, "m/1_b.sql", "");
    assert!(matches!(
        collect(&sources(r, "m")),
        Err(CollectError::DuplicateNumber { .. })
    ));

    let t = tempfile::tempdir().unwrap();
    write(t.path(), "m/schema.sql", "");
    assert!(matches!(
        collect(&sources(t.path(), "m")),
        Err(CollectError::BadName { .. })
    ));

    let t = tempfile::tempdir().unwrap();
    write(t.path(), "m/0001_a.sql", "");
    write(t.path(), "m/0002_b.down.sql", "");
    assert!(matches!(
        collect(&sources(t.path(), "m")),
        Err(CollectError::OrphanRollback { .. })
    ));

    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir(t.path().join("m")).unwrap();
    assert!(matches!(
        collect(&sources(t.path(), "m")),
        Err(CollectError::Empty(_))
    ));
    assert!(matches!(
        collect(&sources(t.path(), "nope")),
        Err(CollectError::MissingFolder(_))
    ));
}

fn journal(tags: &[&str]) -> String {
    let entries: Vec<String> = tags
        .iter()
        .enumerate()
        .map(|(i, t)| {
            format!(r#"{{"idx":{i},"version":"7","when":1,"tag":"{t}","breakpoints":true}}"#)
        })
        .collect();
    format!(
        r#"{{"version":"7","dialect":"postgresql","entries":[{}]}}"#,
        entries.join(",")
    )
}

#[test]
fn drizzle_follows_the_journal_and_warns_about_orphans() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    // Journal order deliberately differs from name order.
    write(
        r,
        "drizzle/meta/_journal.json",
        &journal(&["0000_b", "0001_a"]),
    );
    write(r, "drizzle/0000_b.sql", "");
    write(r, "drizzle/0001_a.sql", "");
    write(r, "drizzle/0002_orphan.sql", "");
    let c = collect(&sources(r, "drizzle")).unwrap();
    assert_eq!(c.format, SourceFormat::Drizzle);
    assert_eq!(ids(&c, FileKind::Migration), ["0000_b", "0001_a"]);
    assert_eq!(c.warnings.len(), 1);
    assert!(
        c.warnings[0].contains("0002_orphan.sql"),
        "{:?}",
        c.warnings
    );
}

#[test]
fn drizzle_journal_errors() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(
        r,
        "d/meta/_journal.json",
        &journal(&["0000_a", "0001_missing"]),
    );
    write(r, "d/0000_a.sql", "");
    let e = collect(&sources(r, "d")).unwrap_err();
    assert!(matches!(e, CollectError::JournalMissingFile { .. }), "{e}");
    assert!(e.to_string().contains("0001_missing.sql"), "{e}");

    write(
        r,
        "d/meta/_journal.json",
        &journal(&["0000_a"]).replace("postgresql", "mysql"),
    );
    let e = collect(&sources(r, "d")).unwrap_err();
    assert!(e.to_string().contains("mysql"), "{e}");

    write(r, "d/meta/_journal.json", &journal(&["0000_a", "0000_a"]));
    assert!(
        collect(&sources(r, "d"))
            .unwrap_err()
            .to_string()
            .contains("twice")
    );

    write(r, "d/meta/_journal.json", &journal(&["../../etc/passwd"]));
    assert!(
        collect(&sources(r, "d"))
            .unwrap_err()
            .to_string()
            .contains("plain file name")
    );

    write(r, "d/meta/_journal.json", "{not json");
    assert!(matches!(
        collect(&sources(r, "d")),
        Err(CollectError::Journal { .. })
    ));
}

fn with(root: &Path, dir: &'static str, format: Option<SourceFormat>) -> Collection {
    collect(&Sources {
        format,
        ..sources(root, dir)
    })
    .unwrap()
}

fn err(root: &Path, dir: &'static str, format: Option<SourceFormat>) -> CollectError {
    collect(&Sources {
        format,
        ..sources(root, dir)
    })
    .unwrap_err()
}

#[test]
fn plain_refuses_timestamps_whose_width_makes_number_and_name_order_disagree() {
    // The issue's case: a Prisma history flattened by hand, one 15-digit and
    // one 17-digit timestamp. By number the 15-digit one runs first, by name
    // the 17-digit one: no guess.
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "m/202401011200000_a.sql", "");
    write(t.path(), "m/20231231120000000_b.sql", "");
    let e = err(t.path(), "m", None);
    assert!(matches!(e, CollectError::AmbiguousOrder { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("202401011200000_a.sql") && msg.contains("20231231120000000_b.sql"),
        "{msg}"
    );
    assert!(msg.contains("15 and 17 digits"), "{msg}");

    // Same widths, or widths whose orders agree, are fine.
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "m/0001_a.sql", "");
    write(t.path(), "m/20240101120000_b.sql", "");
    write(t.path(), "m/20240102120000_c.sql", "");
    assert_eq!(
        ids(&with(t.path(), "m", None), FileKind::Migration),
        ["0001_a", "20240101120000_b", "20240102120000_c"]
    );

    // sqlx compares the numbers itself: its order is the tool's, not a guess.
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "m/202401011200000_a.sql", "");
    write(t.path(), "m/20231231120000000_b.sql", "");
    let c = with(t.path(), "m", Some(SourceFormat::Sqlx));
    assert_eq!(
        ids(&c, FileKind::Migration),
        ["202401011200000_a", "20231231120000000_b"]
    );
}

#[test]
fn prisma_runs_folders_in_text_order_with_down_scripts_as_rollbacks() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(r, "p/migration_lock.toml", "provider = \"postgresql\"\n");
    write(r, "p/20240201080000_b/migration.sql", "");
    write(r, "p/20240201080000_b/down.sql", "");
    write(r, "p/20240105093000_a/migration.sql", "");
    // Hand-named, shorter: as a number it is the smallest, as text (Prisma's
    // order) it comes after 20240201080000_b ('0' < '_').
    write(r, "p/2024020108_hotfix/migration.sql", "");
    write(r, "p/stray.sql", "");
    assert_eq!(detect(&r.join("p")), SourceFormat::Prisma);
    let c = with(r, "p", None);
    assert_eq!(c.format, SourceFormat::Prisma);
    assert_eq!(
        ids(&c, FileKind::Migration),
        ["20240105093000_a", "20240201080000_b", "2024020108_hotfix"]
    );
    assert_eq!(c.files[1].path, "p/20240201080000_b/migration.sql");
    assert_eq!(ids(&c, FileKind::Rollback), ["20240201080000_b"]);
    assert!(
        c.warnings.iter().any(|w| w.contains("p/stray.sql")),
        "{:?}",
        c.warnings
    );

    // Without the lock file, migration folders alone are recognised.
    std::fs::remove_file(r.join("p/migration_lock.toml")).unwrap();
    std::fs::remove_file(r.join("p/stray.sql")).unwrap();
    assert_eq!(detect(&r.join("p")), SourceFormat::Prisma);
}

#[test]
fn prisma_refusals() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(r, "p/migration_lock.toml", "provider = \"mysql\"\n");
    write(r, "p/20240105093000_a/migration.sql", "");
    assert!(err(r, "p", None).to_string().contains("\"mysql\""));

    write(r, "p/migration_lock.toml", "provider = \"postgresql\"\n");
    std::fs::create_dir_all(r.join("p/20240106093000_empty")).unwrap();
    let e = err(r, "p", None);
    assert!(e.to_string().contains("without migration.sql"), "{e}");

    let t = tempfile::tempdir().unwrap();
    write(
        t.path(),
        "p/migration_lock.toml",
        "provider = \"postgresql\"\n",
    );
    assert!(matches!(err(t.path(), "p", None), CollectError::Empty(_)));
}

#[test]
fn flyway_orders_versions_as_flyway_does() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    for f in [
        "V10__d.sql",
        "V2__c.sql",
        "V1_1__b.sql",
        "V1__a.sql",
        "V1.9__a2.sql",
        "U2__c.sql",
    ] {
        write(r, &format!("f/{f}"), "SELECT 1;");
    }
    write(
        r,
        "f/V10__d.sql.conf",
        "# comment\nexecuteInTransaction=false\n",
    );
    write(r, "f/notes.sql", "");
    assert_eq!(detect(&r.join("f")), SourceFormat::Flyway);
    let c = with(r, "f", None);
    assert_eq!(c.format, SourceFormat::Flyway);
    assert_eq!(
        ids(&c, FileKind::Migration),
        ["V1__a", "V1_1__b", "V1.9__a2", "V2__c", "V10__d"]
    );
    assert_eq!(ids(&c, FileKind::Rollback), ["V2__c"]);
    assert_eq!(c.files[4].transaction, TxRule::Fixed(TransactionMode::None));
    assert_eq!(c.files[0].transaction, TxRule::Directives);
    assert!(
        c.warnings.iter().any(|w| w.contains("notes.sql")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn flyway_refusals() {
    let case = |files: &[(&str, &str)], needle: &str| {
        let t = tempfile::tempdir().unwrap();
        for (f, body) in files {
            write(t.path(), &format!("f/{f}"), body);
        }
        let e = err(t.path(), "f", Some(SourceFormat::Flyway));
        assert!(e.to_string().contains(needle), "{needle:?} not in: {e}");
    };
    // 1 and 1.0 are one version to Flyway.
    case(
        &[("V1__a.sql", ""), ("V1.0__b.sql", "")],
        "both have number",
    );
    case(&[("V1__a.sql", ""), ("R__view.sql", "")], "repeatable");
    case(&[("V1__a.sql", ""), ("B2__base.sql", "")], "baseline");
    case(
        &[("V1__a.sql", ""), ("U3__x.sql", "")],
        "no migration has that id",
    );
    case(&[("V1__a.sql", "SELECT '${schema}';")], "placeholder");
    case(
        &[("V1__a.sql", ""), ("V1__a.sql.conf", "mixed=true")],
        "\"mixed\"",
    );
    case(
        &[("V1__a.sql", ""), ("V1.x__b.sql", "")],
        "numbers separated",
    );
    case(&[("V1__a.sql", ""), ("more/V2__b.sql", "")], "sub-folders");
}

#[test]
fn sqlx_and_golang_migrate_read_their_own_names() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(r, "s/20240101120000_a.sql", "CREATE TABLE a ();");
    write(
        r,
        "s/20240102120000_b.sql",
        "-- no-transaction\nCREATE INDEX CONCURRENTLY i ON a ();",
    );
    write(r, "s/20240103120000_c.up.sql", "");
    write(r, "s/20240103120000_c.down.sql", "");
    assert_eq!(detect(&r.join("s")), SourceFormat::Sqlx);
    let c = with(r, "s", None);
    assert_eq!(c.format, SourceFormat::Sqlx);
    assert_eq!(
        ids(&c, FileKind::Migration),
        ["20240101120000_a", "20240102120000_b", "20240103120000_c"]
    );
    assert_eq!(ids(&c, FileKind::Rollback), ["20240103120000_c"]);
    assert!(
        c.files
            .iter()
            .filter(|f| f.kind == FileKind::Migration)
            .all(|f| f.transaction == TxRule::SqlxFirstLine)
    );

    write(r, "s/20240101120000_dup.sql", "");
    assert!(matches!(
        err(r, "s", None),
        CollectError::DuplicateNumber { .. }
    ));
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "s/99999999999999999999_big.sql", "");
    assert!(
        err(t.path(), "s", Some(SourceFormat::Sqlx))
            .to_string()
            .contains("64-bit")
    );

    // golang-migrate: .up/.down only, numeric order, .down as rollbacks.
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(r, "g/10_c.up.sql", "");
    write(r, "g/2_b.up.sql", "");
    write(r, "g/2_b.down.sql", "");
    let c = with(r, "g", Some(SourceFormat::GolangMigrate));
    assert_eq!(ids(&c, FileKind::Migration), ["2_b", "10_c"]);
    assert_eq!(ids(&c, FileKind::Rollback), ["2_b"]);
    assert!(c.files.iter().all(|f| f.transaction == TxRule::Directives));
    write(r, "g/11_d.sql", "");
    assert!(
        err(r, "g", Some(SourceFormat::GolangMigrate))
            .to_string()
            .contains(".up.sql")
    );
}

#[test]
fn sqlx_marker_must_be_the_very_first_bytes() {
    use TransactionMode::{Default as Tx, None as NoTx};
    assert_eq!(
        TxRule::SqlxFirstLine.apply("-- no-transaction\nCREATE INDEX", Tx),
        NoTx
    );
    // sqlx tests `starts_with`: anything before the marker cancels it.
    assert_eq!(TxRule::SqlxFirstLine.apply("\n-- no-transaction\n", Tx), Tx);
    assert_eq!(
        TxRule::SqlxFirstLine.apply("-- add index\n-- no-transaction\n", Tx),
        Tx
    );
    // squizzle's own directive still counts everywhere.
    assert_eq!(TxRule::SqlxFirstLine.apply("SELECT 1;", NoTx), NoTx);
    assert_eq!(TxRule::Directives.apply("-- no-transaction\n", Tx), Tx);
    assert_eq!(TxRule::Fixed(NoTx).apply("", Tx), NoTx);
    assert_eq!(TxRule::Fixed(Tx).apply("", NoTx), NoTx);
}

#[test]
fn dbmate_files_are_cut_into_up_and_down_sections_in_name_order() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    let a = "-- a comment\n-- migrate:up\nCREATE TABLE a ();\n-- migrate:down\nDROP TABLE a;\n";
    write(r, "d/20240101_a.sql", a);
    write(
        r,
        "d/2024010101_b.sql",
        "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON a ();\n--migrate:down\n",
    );
    write(r, "d/notes.sql", "");
    assert_eq!(detect(&r.join("d")), SourceFormat::Dbmate);
    let c = with(r, "d", None);
    assert_eq!(c.format, SourceFormat::Dbmate);
    // Name order, as dbmate sorts: "2024010101_b" < "20240101_a" ('0' < '_').
    assert_eq!(ids(&c, FileKind::Migration), ["2024010101_b", "20240101_a"]);
    assert_eq!(ids(&c, FileKind::Rollback), ["2024010101_b", "20240101_a"]);
    let up_a = c
        .files
        .iter()
        .find(|f| f.id == "20240101_a" && f.kind == FileKind::Migration)
        .unwrap();
    assert_eq!(up_a.path, "d/20240101_a.up.sql");
    assert_eq!(
        up_a.read_text().unwrap(),
        "-- migrate:up\nCREATE TABLE a ();\n"
    );
    let down_a = c
        .files
        .iter()
        .find(|f| f.id == "20240101_a" && f.kind == FileKind::Rollback)
        .unwrap();
    assert_eq!(down_a.path, "d/20240101_a.down.sql");
    assert_eq!(
        down_a.read_text().unwrap(),
        "-- migrate:down\nDROP TABLE a;\n"
    );
    assert_eq!(c.files[0].transaction, TxRule::Fixed(TransactionMode::None));
    assert!(
        c.warnings.iter().any(|w| w.contains("notes.sql")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn dbmate_refusals() {
    let case = |body: &str, needle: &str| {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "d/1_a.sql", body);
        let e = err(t.path(), "d", Some(SourceFormat::Dbmate));
        assert!(e.to_string().contains(needle), "{needle:?} not in: {e}");
    };
    case("CREATE TABLE a ();\n", "no `-- migrate:up`");
    case(
        "-- migrate:up\nCREATE TABLE a ();\n",
        "no `-- migrate:down`",
    );
    case(
        "-- migrate:down\n\n-- migrate:up\nSELECT 1;\n",
        "before `-- migrate:up`",
    );
    case(
        "SELECT 1;\n-- migrate:up\nSELECT 2;\n-- migrate:down\n",
        "SQL before",
    );
    case(
        "-- migrate:up\nSELECT 1;\n-- migrate:down\n-- migrate:up\nSELECT 2;\n-- migrate:down\n",
        "more than one",
    );
    case(
        "-- migrate:up nolock:true\nSELECT 1;\n-- migrate:down\n",
        "\"nolock:true\"",
    );
    // "-- migrate:upgrade" is not the directive (dbmate's pattern wants a space or the end).
    case(
        "-- migrate:upgrade\nSELECT 1;\n-- migrate:down\n",
        "no `-- migrate:up`",
    );

    let t = tempfile::tempdir().unwrap();
    write(t.path(), "d/1_a.sql", "-- migrate:up\n-- migrate:down\n");
    write(t.path(), "d/1_b.sql", "-- migrate:up\n-- migrate:down\n");
    assert!(matches!(
        err(t.path(), "d", Some(SourceFormat::Dbmate)),
        CollectError::DuplicateNumber { .. }
    ));
}

/// A copy of the Atlas fixture (its atlas.sum was written by the algorithm
/// Atlas uses, checked against a sum Atlas itself wrote) in `root/a`.
fn atlas_copy(root: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/formats/atlas/migrations");
    std::fs::create_dir_all(root.join("a")).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), root.join("a").join(e.file_name())).unwrap();
    }
}

#[test]
fn atlas_sum_is_computed_as_atlas_does_and_the_folder_reads_in_name_order() {
    let t = tempfile::tempdir().unwrap();
    atlas_copy(t.path());
    assert_eq!(detect(&t.path().join("a")), SourceFormat::Atlas);
    let c = with(t.path(), "a", None);
    assert_eq!(
        ids(&c, FileKind::Migration),
        [
            "20240410120000_create_orders",
            "20240411090000_orders_customer_index",
            "20240412150000_add_status"
        ]
    );
    assert_eq!(c.files[1].transaction, TxRule::Fixed(TransactionMode::None));
    assert_eq!(c.files[0].transaction, TxRule::Directives);

    // The sum file's text, rebuilt from the files.
    let listing = list_sql(&t.path().join("a"), "a").unwrap();
    let contents: Vec<(String, Vec<u8>)> = listing
        .iter()
        .map(|(n, (abs, _))| (n.clone(), std::fs::read(abs).unwrap()))
        .collect();
    let (total, lines) = atlas_sum(&contents);
    let mut text = format!("h1:{total}\n");
    for (n, h) in lines {
        text.push_str(&format!("{n} h1:{h}\n"));
    }
    assert_eq!(
        text,
        std::fs::read_to_string(t.path().join("a/atlas.sum")).unwrap()
    );
}

#[test]
fn atlas_refuses_a_folder_its_sum_disagrees_with_naming_the_file() {
    let case = |change: &dyn Fn(&Path), needle: &str| {
        let t = tempfile::tempdir().unwrap();
        atlas_copy(t.path());
        change(&t.path().join("a"));
        let e = err(t.path(), "a", None);
        assert!(e.to_string().contains(needle), "{needle:?} not in: {e}");
    };
    case(
        &|d| {
            write(
                d,
                "20240411090000_orders_customer_index.sql",
                "-- atlas:txmode none\nSELECT 1;\n",
            )
        },
        "20240411090000_orders_customer_index.sql has changed",
    );
    case(
        &|d| write(d, "20240413000000_new.sql", "SELECT 1;\n"),
        "20240413000000_new.sql is not listed",
    );
    case(
        &|d| std::fs::remove_file(d.join("20240412150000_add_status.sql")).unwrap(),
        "20240412150000_add_status.sql is listed but missing",
    );
    case(
        &|d| {
            let sum = std::fs::read_to_string(d.join("atlas.sum")).unwrap();
            let mut lines: Vec<&str> = sum.lines().collect();
            lines[0] = "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
            write(d, "atlas.sum", &lines.join("\n"));
        },
        "first line",
    );
    case(
        &|d| write(d, "atlas.sum", "h1:x\ngarbage\n"),
        "is not `<file> h1:<hash>`",
    );
    // With the sum rewritten to match, a directive squizzle cannot follow is refused.
    let t = tempfile::tempdir().unwrap();
    write(
        t.path(),
        "a/1_a.sql",
        "-- atlas:delimiter \\\n\nSELECT 1;\n",
    );
    let body = std::fs::read(t.path().join("a/1_a.sql")).unwrap();
    let (total, lines) = atlas_sum(&[("1_a.sql".to_owned(), body)]);
    write(
        t.path(),
        "a/atlas.sum",
        &format!("h1:{total}\n1_a.sql h1:{}\n", lines[0].1),
    );
    assert!(
        err(t.path(), "a", None)
            .to_string()
            .contains("atlas:delimiter")
    );
}

#[test]
fn repository_fixtures_are_detected_and_ordered() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/formats");
    let cases: [(&str, SourceFormat, &[&str]); 3] = [
        (
            "prisma/migrations",
            SourceFormat::Prisma,
            &[
                "20240105093000_init",
                "20240112140000_add_posts",
                "20240201080000_post_published",
            ],
        ),
        (
            "flyway/sql",
            SourceFormat::Flyway,
            &[
                "V1__create_accounts",
                "V1.1__add_email",
                "V2__create_ledger",
                "V10__ledger_account_index",
            ],
        ),
        (
            "sqlx/migrations",
            SourceFormat::Sqlx,
            &[
                "20240101120000_create_users",
                "20240102120000_users_email_index",
                "20240103120000_create_sessions",
            ],
        ),
    ];
    for (dir, format, expected) in cases {
        let src = Sources {
            root: &base,
            migrations: dir,
            format: None,
            rollbacks: None,
            seeds: None,
        };
        let c = collect(&src).unwrap();
        assert_eq!(c.format, format, "{dir}");
        assert_eq!(ids(&c, FileKind::Migration), expected, "{dir}");
    }
    assert_eq!(
        detect(&base.join("golang-migrate/migrations")),
        SourceFormat::Plain
    );
}

#[test]
fn real_dokploy_corpus_collects_in_journal_order() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dokploy-drizzle");
    let root = corpus.parent().unwrap();
    let c = collect(&sources(root, "dokploy-drizzle")).unwrap();
    assert_eq!(c.count(FileKind::Migration), 186);
    assert_eq!(c.files[0].id, "0000_reflective_puck");
    assert_eq!(c.files[130].id, "0130_perpetual_screwball");
    assert_eq!(c.files[185].id, "0185_needy_kingpin");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}
