//! Smoke tests for the PostgreSQL test harness in `squizzle_test_support::pg`.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::{Duration, Instant};

use squizzle_test_support::pg::{self, PgOptions, PgServer, block_on};
use squizzle_test_support::tls::{MakeRustlsConnect, TestCa};
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Config, NoTls, Socket};

/// Connects with `config` and `tls`, runs `sql`, returns the first column of
/// every row.
fn connect_and_query<T>(
    config: &Config,
    tls: T,
    sql: &str,
) -> Result<Vec<String>, tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket> + 'static,
    T::Stream: Send + 'static,
{
    block_on(async {
        let (client, conn) = config.connect(tls).await?;
        tokio::spawn(conn);
        let rows = client.simple_query(sql).await?;
        Ok(rows
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                _ => None,
            })
            .collect())
    })
}

fn url_config(url: &str) -> Config {
    let mut config: Config = url.parse().expect("harness URL parses");
    config.connect_timeout(Duration::from_secs(5));
    config
}

/// TCP config for host name `localhost` pinned to 127.0.0.1 (the server
/// listens on IPv4 only), so TLS checks the certificate against `localhost`.
fn localhost_config(server: &PgServer, user: &str, ssl_mode: SslMode) -> Config {
    let mut config = Config::new();
    config
        .host("localhost")
        .hostaddr(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .port(server.port())
        .user(user)
        .dbname("postgres")
        .ssl_mode(ssl_mode)
        .connect_timeout(Duration::from_secs(5));
    config
}

fn code(err: &tokio_postgres::Error) -> Option<&SqlState> {
    err.code()
}

fn rows(values: &[&str]) -> Vec<Vec<Option<String>>> {
    values.iter().map(|v| vec![Some(v.to_string())]).collect()
}

#[test]
fn shared_server_databases_are_isolated() {
    let server = pg::shared();
    let started = Instant::now();
    let a = server.create_database("iso a");
    let b = server.create_database("iso b");
    eprintln!("two databases created in {:.2?}", started.elapsed());
    assert_ne!(a, b);
    assert!(
        std::ptr::eq(server, pg::shared()),
        "one shared server per process"
    );

    server.query(
        &a,
        "CREATE TABLE only_in_a (id int); INSERT INTO only_in_a VALUES (7)",
    );
    assert_eq!(server.query(&a, "SELECT id FROM only_in_a"), rows(&["7"]));
    assert_eq!(
        server.query(&b, "SELECT to_regclass('only_in_a') IS NULL"),
        rows(&["t"])
    );

    // The returned URL works over TCP too, and names the right database.
    let over_tcp = connect_and_query(&url_config(&a), NoTls, "SELECT current_database()")
        .expect("connect to the shared server over TCP");
    assert_eq!(over_tcp, vec![pg::db_name(&a).to_string()]);

    // psql helper.
    let out = server.psql(
        &b,
        "CREATE TABLE t (x int);\nINSERT INTO t VALUES (1), (2);\nSELECT sum(x) FROM t;\n",
    );
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3");
    let bad = server.psql(&b, "SELECT * FROM no_such_table;");
    assert!(!bad.status.success());
}

#[test]
fn pg_dump_schema_shows_created_table() {
    let server = pg::shared();
    let db = server.create_database("dump");
    server.query(
        &db,
        "CREATE TABLE widgets (id bigint PRIMARY KEY, name text NOT NULL); \
         CREATE INDEX widgets_name ON widgets (name);",
    );
    let schema = server.pg_dump_schema(&db);
    assert!(schema.contains("CREATE TABLE public.widgets ("), "{schema}");
    assert!(
        schema.contains("CREATE INDEX widgets_name ON public.widgets"),
        "{schema}"
    );
    assert!(
        !schema.contains("\\restrict") && !schema.contains("\\unrestrict"),
        "{schema}"
    );
    assert!(!schema.contains("OWNER TO"), "{schema}");
    // Stable: the same database dumps the same.
    assert_eq!(schema, server.pg_dump_schema(&db));
}

#[test]
fn password_auth_rejects_wrong_password_and_accepts_right_one() {
    let server = PgServer::start(PgOptions {
        password_auth: true,
        ..PgOptions::default()
    });
    server.create_role("alice", Some("correct horse"), false);

    let wrong = connect_and_query(
        &url_config(&server.url("postgres", "alice", Some("wrong"))),
        NoTls,
        "SELECT 1",
    )
    .expect_err("wrong password must be refused");
    assert_eq!(code(&wrong), Some(&SqlState::INVALID_PASSWORD), "{wrong:?}");

    let missing = connect_and_query(
        &url_config(&server.url("postgres", "alice", None)),
        NoTls,
        "SELECT 1",
    );
    assert!(missing.is_err(), "no password must be refused");

    let user = connect_and_query(
        &url_config(&server.url("postgres", "alice", Some("correct horse"))),
        NoTls,
        "SELECT current_user",
    )
    .expect("right password is accepted");
    assert_eq!(user, vec!["alice".to_string()]);

    let admin = connect_and_query(
        &url_config(&server.admin_url("postgres")),
        NoTls,
        "SELECT 1",
    )
    .expect("admin URL carries the admin password");
    assert_eq!(admin, vec!["1".to_string()]);

    // The harness still administers through the trusted socket.
    assert_eq!(server.query("postgres", "SELECT 2"), rows(&["2"]));
}

#[test]
fn tls_server_verifies_test_ca_and_require_ssl_refuses_plaintext() {
    let ca = TestCa::new();
    let server = PgServer::start(PgOptions {
        tls: Some(ca.server_cert(&["localhost", "127.0.0.1"])),
        require_ssl: true,
        ..PgOptions::default()
    });
    let tls = MakeRustlsConnect::new(ca.client_config(None));
    let sql = "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

    let over_tls = connect_and_query(
        &localhost_config(&server, "postgres", SslMode::Require),
        tls.clone(),
        sql,
    )
    .expect("TLS connection verified against the test CA for `localhost`");
    assert_eq!(over_tls, vec!["true".to_string()]);

    // The IP SAN is an IP address SAN: connecting by IP verifies too.
    let mut by_ip = url_config(&server.admin_url("postgres"));
    by_ip.ssl_mode(SslMode::Require);
    assert_eq!(
        connect_and_query(&by_ip, tls.clone(), sql).expect("TLS by IP address"),
        vec!["true".to_string()]
    );

    // A client trusting another CA refuses the server.
    let stranger = MakeRustlsConnect::new(TestCa::new().client_config(None));
    let err = connect_and_query(
        &localhost_config(&server, "postgres", SslMode::Require),
        stranger,
        sql,
    )
    .expect_err("a certificate from an unknown CA must be refused");
    assert!(
        format!("{err:?}").to_lowercase().contains("certificate"),
        "{err:?}"
    );

    // Plain TCP is refused by pg_hba.conf (hostssl only).
    let err = connect_and_query(
        &localhost_config(&server, "postgres", SslMode::Disable),
        NoTls,
        "SELECT 1",
    )
    .expect_err("require_ssl server must refuse a non-TLS connection");
    assert_eq!(
        code(&err),
        Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION),
        "{err:?}"
    );
    assert!(server.ca_file().is_some_and(|p| p.exists()));
}

#[test]
fn tls_optional_server_accepts_plaintext_and_client_certs() {
    let ca = TestCa::new();
    let server = PgServer::start(PgOptions {
        tls: Some(ca.server_cert(&["localhost", "127.0.0.1"])),
        require_ssl: false,
        client_cert_auth: true,
        ..PgOptions::default()
    });
    server.create_role("carol", None, false);
    let sql =
        "SELECT current_user || ' ' || ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

    // sslmode=disable still works (hostnossl, trust).
    let plain = connect_and_query(
        &localhost_config(&server, "carol", SslMode::Disable),
        NoTls,
        sql,
    )
    .expect("plaintext accepted when require_ssl is off");
    assert_eq!(plain, vec!["carol false".to_string()]);

    // Over TLS the client certificate's CN must match the role.
    let good = MakeRustlsConnect::new(ca.client_config(Some(&ca.client_cert("carol"))));
    let tls = connect_and_query(
        &localhost_config(&server, "carol", SslMode::Require),
        good,
        sql,
    )
    .expect("client certificate for carol");
    assert_eq!(tls, vec!["carol true".to_string()]);

    let other = MakeRustlsConnect::new(ca.client_config(Some(&ca.client_cert("mallory"))));
    let err = connect_and_query(
        &localhost_config(&server, "carol", SslMode::Require),
        other,
        sql,
    )
    .expect_err("a certificate for another user must be refused");
    assert_eq!(
        code(&err),
        Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION),
        "{err:?}"
    );
}

#[test]
fn stop_and_restart_keep_data_and_port() {
    let server = PgServer::start(PgOptions::default());
    let db = server.create_database("restart");
    server.query(
        &db,
        "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')",
    );
    let port = server.port();

    server.stop();
    assert!(!server.is_running());
    assert!(server.try_query(&db, "SELECT 1").is_err());
    assert!(connect_and_query(&url_config(&db), NoTls, "SELECT 1").is_err());
    server.stop(); // idempotent

    let started = Instant::now();
    server.restart();
    eprintln!("restart in {:.2?}", started.elapsed());
    assert!(server.is_running());
    assert_eq!(server.port(), port);
    assert_eq!(
        connect_and_query(&url_config(&db), NoTls, "SELECT v FROM kept")
            .expect("same URL after restart"),
        vec!["still here".to_string()]
    );
}

#[test]
fn kill_breaks_connections_and_restart_recovers() {
    let server = PgServer::start(PgOptions {
        settings: vec![("application_name".into(), "harness".into())],
        ..PgOptions::default()
    });
    let db = server.create_database("crash");
    server.query(
        &db,
        "CREATE TABLE committed (n int); INSERT INTO committed VALUES (42)",
    );
    let pid = server.pid().expect("running");

    let config = url_config(&db);
    block_on(async {
        let (client, conn) = config.connect(NoTls).await.expect("connect before kill");
        tokio::spawn(conn);
        client
            .simple_query("SELECT 1")
            .await
            .expect("query before kill");
        client
            .simple_query("BEGIN; INSERT INTO committed VALUES (0)")
            .await
            .expect("open transaction");

        server.kill();

        let err = client
            .simple_query("COMMIT")
            .await
            .expect_err("the open connection dies with the server");
        eprintln!("after kill: {err}");
    });
    assert!(!pg::process_alive(pid), "postmaster {pid} still alive");
    assert!(!server.is_running());
    assert!(connect_and_query(&config, NoTls, "SELECT 1").is_err());

    server.restart();
    assert_eq!(
        server.query(&db, "SELECT n FROM committed ORDER BY n"),
        rows(&["42"]),
        "committed row survives, uncommitted one does not"
    );
    assert!(
        server
            .log_tail(50)
            .contains("database system was interrupted"),
        "{}",
        server.log_tail(50)
    );
}

const CHILD_ENV: &str = "SQUIZZLE_PG_HARNESS_CHILD";

/// Helper for `postgres_dies_with_the_test_process`: does nothing unless run
/// as its child process.
#[test]
fn pdeathsig_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let server = pg::shared();
    println!("POSTMASTER_PID={}", server.pid().expect("running"));
    println!("PG_ROOT={}", pg::process_root().display());
}

#[test]
fn postgres_dies_with_the_test_process() {
    let out = Command::new(std::env::current_exe().expect("test binary path"))
        .args([
            "--exact",
            "pg_harness::pdeathsig_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .expect("run the test binary as a child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.split_once(name).map(|(_, value)| value.trim()))
            .unwrap_or_else(|| panic!("no {name} in child output:\n{stdout}"))
            .to_string()
    };
    let pid: u32 = field("POSTMASTER_PID=").parse().expect("pid");
    let root = field("PG_ROOT=");

    let deadline = Instant::now() + Duration::from_secs(15);
    while pg::process_alive(pid) {
        assert!(
            Instant::now() < deadline,
            "postmaster {pid} outlived its test process by 15 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The child's cleanup process removes its directory once the server is down.
    while std::path::Path::new(&root).exists() {
        assert!(
            Instant::now() < deadline,
            "{root} still exists 15 s after its test process ended"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
