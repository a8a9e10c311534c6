//! libpq `sslmode` semantics of the real `squizzle` binary against real
//! PostgreSQL 15 servers serving TLS with certificates from a throwaway CA.
//!
//! Every check runs `squizzle status` (read-only, needs no release) or
//! `squizzle apply` with the connection settings, TLS parameters included, in
//! `DATABASE_URL`. The World gives each run a private, empty HOME, so there is
//! no `~/.postgresql/root.crt` unless a test writes one.
//!
//! Exit codes (docs/exit-codes.md): 3 `connection` covers every TLS failure
//! (squizzle's `DbError::Tls` and handshake errors surface as connection
//! errors); 4 `authentication` is what PostgreSQL's refusals with SQLSTATE
//! 28000/28P01 map to, including pg_hba.conf's "no entry" (e.g. plaintext
//! against a `hostssl`-only server) and a missing or wrong client certificate.

use std::path::Path;

use squizzle_test_support::pg::{self, PgOptions, PgServer};
use squizzle_test_support::tls::{self, TestCa, write_file};
use squizzle_test_support::{PLAIN_CONFIG, Run, World};

/// Percent-encodes everything but RFC 3986 unreserved characters (for file
/// paths in URL query parameters).
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn path_param(p: &Path) -> String {
    pct(&p.display().to_string())
}

/// `postgres://USER@HOST:PORT/postgres?PARAMS`.
fn url(server: &PgServer, user: &str, host: &str, params: &[(&str, String)]) -> String {
    let mut u = format!("postgres://{user}@{host}:{}/postgres", server.port());
    for (i, (k, v)) in params.iter().enumerate() {
        u.push(if i == 0 { '?' } else { '&' });
        u.push_str(&format!("{k}={v}"));
    }
    u
}

/// A project with a config but no release: enough for `status`.
fn world() -> World {
    let w = World::new();
    w.config(PLAIN_CONFIG);
    w
}

fn status(world: &World, url: &str) -> Run {
    world.run_with_env(&["status"], &[("DATABASE_URL", url)])
}

/// TLS server with a certificate for `names`, accepting only TLS over TCP.
fn tls_server(ca: &TestCa, names: &[&str]) -> PgServer {
    PgServer::start(PgOptions {
        tls: Some(ca.server_cert(names)),
        require_ssl: true,
        ..PgOptions::default()
    })
}

/// Writes `pem` to `<world home>/<name>` and returns the path.
fn write_pem(world: &World, name: &str, pem: &str) -> std::path::PathBuf {
    let p = world.home().join(name);
    write_file(&p, pem, 0o644);
    p
}

#[test]
fn require_encrypts_without_a_ca_and_disable_is_refused_by_a_hostssl_only_server() {
    let ca = TestCa::new();
    let server = tls_server(&ca, &["localhost", "127.0.0.1"]);
    let w = world();

    // require: encrypted, certificate not checked (no CA given).
    let require = url(
        &server,
        "postgres",
        "127.0.0.1",
        &[("sslmode", "require".into())],
    );
    status(&w, &require)
        .success()
        .stdout_has(&format!("postgres@127.0.0.1:{}/postgres", server.port()));
    // prefer (the default) negotiates TLS too, so it gets in.
    status(&w, &url(&server, "postgres", "127.0.0.1", &[])).success();
    status(
        &w,
        &url(
            &server,
            "postgres",
            "127.0.0.1",
            &[("sslmode", "prefer".into())],
        ),
    )
    .success();

    // A real apply over `require` writes through the encrypted connection.
    w.write(
        "migrations/0001_over_tls.sql",
        "CREATE TABLE over_tls AS SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid();\n",
    );
    w.build_ok("1.0.0");
    w.run_with_env(&["apply", "1.0.0"], &[("DATABASE_URL", &require)])
        .success()
        .stdout_has("Applied 1.0.0 to");
    // The migration recorded its own session's pg_stat_ssl row: TLS 1.2+.
    let rows = server.query("postgres", "SELECT ssl, version FROM over_tls");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][0].as_deref(), Some("t"), "{rows:?}");
    assert!(
        matches!(rows[0][1].as_deref(), Some("TLSv1.2" | "TLSv1.3")),
        "{rows:?}"
    );

    // disable: plaintext. pg_hba.conf has only `hostssl` lines, so PostgreSQL
    // answers FATAL 28000 "no pg_hba.conf entry ... no encryption", which
    // squizzle (like every 28000) reports as an authentication refusal: exit 4.
    status(
        &w,
        &url(
            &server,
            "postgres",
            "127.0.0.1",
            &[("sslmode", "disable".into())],
        ),
    )
    .code(4)
    .stderr_has("no pg_hba.conf entry")
    .stderr_has("no encryption")
    .stderr_has("SQLSTATE 28000");
}

#[test]
fn a_server_without_tls_serves_prefer_and_disable_but_not_require() {
    let plain = pg::shared();
    let w = world();
    let with = |mode: &str| {
        url(
            plain,
            "postgres",
            "127.0.0.1",
            &[("sslmode", mode.to_owned())],
        )
    };
    status(&w, &with("disable")).success();
    // prefer: the server answers "N" to the TLS request; plaintext it is.
    status(&w, &with("prefer")).success();
    status(&w, &with("allow")).success();
    // require and stronger: no TLS, no connection (exit 3).
    status(&w, &with("require"))
        .code(3)
        .stderr_has("server does not support TLS");
    let ca_file = write_pem(&w, "ca.crt", TestCa::new().ca_pem());
    status(
        &w,
        &url(
            plain,
            "postgres",
            "127.0.0.1",
            &[
                ("sslmode", "verify-full".into()),
                ("sslrootcert", path_param(&ca_file)),
            ],
        ),
    )
    .code(3)
    .stderr_has("server does not support TLS");
}

#[test]
fn require_with_a_root_certificate_verifies_the_chain_like_libpq() {
    let ca = TestCa::new();
    let server = tls_server(&ca, &["localhost", "127.0.0.1"]);
    let w = world();
    let other = TestCa::new();
    let other_ca = write_pem(&w, "other-ca.crt", other.ca_pem());
    let right_ca = write_pem(&w, "right-ca.crt", ca.ca_pem());

    // libpq: sslmode=require with sslrootcert given behaves like verify-ca.
    status(
        &w,
        &url(
            &server,
            "postgres",
            "127.0.0.1",
            &[
                ("sslmode", "require".into()),
                ("sslrootcert", path_param(&other_ca)),
            ],
        ),
    )
    .code(3)
    .stderr_has("certificate");
    status(
        &w,
        &url(
            &server,
            "postgres",
            "127.0.0.1",
            &[
                ("sslmode", "require".into()),
                ("sslrootcert", path_param(&right_ca)),
            ],
        ),
    )
    .success();

    // libpq also uses ~/.postgresql/root.crt when it exists: with a foreign CA
    // there, plain `require` verifies and fails ...
    std::fs::create_dir_all(w.home().join(".postgresql")).unwrap();
    write_file(
        &w.home().join(".postgresql/root.crt"),
        other.ca_pem(),
        0o644,
    );
    let require = url(
        &server,
        "postgres",
        "127.0.0.1",
        &[("sslmode", "require".into())],
    );
    status(&w, &require).code(3).stderr_has("certificate");
    // ... and with the right CA there, verify-full needs no sslrootcert.
    write_file(&w.home().join(".postgresql/root.crt"), ca.ca_pem(), 0o644);
    status(&w, &require).success();
    status(
        &w,
        &url(
            &server,
            "postgres",
            "localhost",
            &[("sslmode", "verify-full".into())],
        ),
    )
    .success();
}

#[test]
fn verify_ca_ignores_the_host_name_and_verify_full_checks_it() {
    let ca = TestCa::new();
    // Names that do not include the host squizzle connects to.
    let elsewhere = tls_server(&ca, &["elsewhere.example"]);
    let good = tls_server(&ca, &["localhost", "127.0.0.1"]);
    let w = world();
    let ca_file = write_pem(&w, "ca.crt", ca.ca_pem());
    let with = |server: &PgServer, host: &str, mode: &str| {
        url(
            server,
            "postgres",
            host,
            &[
                ("sslmode", mode.to_owned()),
                ("sslrootcert", path_param(&ca_file)),
            ],
        )
    };

    // verify-ca: the chain is checked, the name is not.
    status(&w, &with(&good, "127.0.0.1", "verify-ca")).success();
    status(&w, &with(&elsewhere, "127.0.0.1", "verify-ca")).success();
    status(&w, &with(&elsewhere, "localhost", "verify-ca")).success();

    // verify-full: the name must match too.
    let run = status(&w, &with(&elsewhere, "127.0.0.1", "verify-full"))
        .code(3)
        .stderr_has("not valid for name");
    assert!(run.stderr.contains("127.0.0.1"), "{}", run.stderr);
    status(&w, &with(&elsewhere, "localhost", "verify-full"))
        .code(3)
        .stderr_has("not valid for name");

    // verify-full with a certificate for localhost (DNS SAN) and 127.0.0.1
    // (IP SAN) passes under either name.
    status(&w, &with(&good, "localhost", "verify-full"))
        .success()
        .stdout_has(&format!("postgres@localhost:{}/postgres", good.port()));
    status(&w, &with(&good, "127.0.0.1", "verify-full")).success();
}

#[test]
fn verify_full_refuses_a_foreign_ca_and_a_missing_root_certificate() {
    let ca = TestCa::new();
    let server = tls_server(&ca, &["localhost", "127.0.0.1"]);
    let w = world();
    let foreign = write_pem(&w, "foreign-ca.crt", TestCa::new().ca_pem());

    // A CA that did not sign the server's certificate: exit 3, about the certificate.
    for mode in ["verify-full", "verify-ca"] {
        status(
            &w,
            &url(
                &server,
                "postgres",
                "localhost",
                &[
                    ("sslmode", mode.into()),
                    ("sslrootcert", path_param(&foreign)),
                ],
            ),
        )
        .code(3)
        // Both test CAs are named "squizzle test CA", so webpki finds the
        // foreign one as the issuer and reports BadSignature (a CA with
        // another name gives UnknownIssuer): either way an invalid certificate.
        .stderr_has("invalid peer certificate");
    }

    // No sslrootcert and no ~/.postgresql/root.crt (HOME is empty): squizzle
    // refuses before connecting (DbError::Tls, exit 3) and says what to add.
    for mode in ["verify-full", "verify-ca"] {
        status(
            &w,
            &url(
                &server,
                "postgres",
                "localhost",
                &[("sslmode", mode.into())],
            ),
        )
        .code(3)
        .stderr_has(&format!("sslmode={mode} needs a root certificate"))
        .stderr_has("add sslrootcert=");
    }

    // sslrootcert=system: the operating system's roots, which do not include
    // the test CA (or, in a bare container, hold nothing at all): exit 3.
    status(
        &w,
        &url(
            &server,
            "postgres",
            "localhost",
            &[
                ("sslmode", "verify-full".into()),
                ("sslrootcert", "system".into()),
            ],
        ),
    )
    .code(3)
    .stderr_has("certificate");

    // A sslrootcert that does not exist is a TLS (connection) error naming it.
    let missing = w.home().join("no-such-ca.crt");
    status(
        &w,
        &url(
            &server,
            "postgres",
            "localhost",
            &[
                ("sslmode", "verify-full".into()),
                ("sslrootcert", path_param(&missing)),
            ],
        ),
    )
    .code(3)
    .stderr_has("cannot read sslrootcert")
    .stderr_has("no-such-ca.crt");
}

#[test]
fn client_certificates_authenticate_the_role_they_name() {
    let ca = TestCa::new();
    let server = PgServer::start(PgOptions {
        tls: Some(ca.server_cert(&["localhost", "127.0.0.1"])),
        require_ssl: true,
        client_cert_auth: true,
        ..PgOptions::default()
    });
    server.create_role("carol", None, false);
    let w = world();
    let ca_file = write_pem(&w, "ca.crt", ca.ca_pem());
    let carol = ca.client_cert("carol").write_to(w.home(), "carol");
    let mallory = ca.client_cert("mallory").write_to(w.home(), "mallory");
    let as_carol = |cert: Option<&tls::TlsPaths>| {
        let mut params = vec![
            ("sslmode", "verify-full".to_owned()),
            ("sslrootcert", path_param(&ca_file)),
        ];
        if let Some(c) = cert {
            params.push(("sslcert", path_param(&c.cert)));
            params.push(("sslkey", path_param(&c.key)));
        }
        url(&server, "carol", "localhost", &params)
    };

    // The right user's certificate: in, as carol.
    status(&w, &as_carol(Some(&carol)))
        .success()
        .stdout_has(&format!("carol@localhost:{}/postgres", server.port()));

    // No client certificate: PostgreSQL refuses with 28000, exit 4.
    status(&w, &as_carol(None))
        .code(4)
        .stderr_has("connection requires a valid client certificate");

    // Another user's certificate (valid chain, CN mallory) for role carol: 28000, exit 4.
    status(&w, &as_carol(Some(&mallory)))
        .code(4)
        .stderr_has("certificate authentication failed for user \"carol\"");

    // sslcert without sslkey is refused before connecting.
    let half = format!("{}&sslcert={}", as_carol(None), path_param(&carol.cert));
    status(&w, &half)
        .code(3)
        .stderr_has("sslcert and sslkey must be given together");
}

#[test]
fn prefer_checks_the_chain_once_a_root_certificate_is_in_the_home_folder() {
    let ca = TestCa::new();
    let server = tls_server(&ca, &["localhost", "127.0.0.1"]);
    let w = world();
    let prefer = url(&server, "postgres", "127.0.0.1", &[]);
    status(&w, &prefer).success();

    // ~/.postgresql/root.crt of another CA: libpq verifies against it even
    // under prefer, and so the server's certificate is refused.
    let other = TestCa::new();
    let root = w.home().join(".postgresql/root.crt");
    std::fs::create_dir_all(root.parent().unwrap()).unwrap();
    write_file(&root, other.ca_pem(), 0o644);
    status(&w, &prefer).code(3);
    status(
        &w,
        &url(
            &server,
            "postgres",
            "127.0.0.1",
            &[("sslmode", "prefer".into())],
        ),
    )
    .code(3);

    // The CA that signed the server: accepted.
    write_file(&root, ca.ca_pem(), 0o644);
    status(&w, &prefer).success();
}

#[test]
fn scram_channel_binding_works_over_tls_when_required() {
    let ca = TestCa::new();
    let server = PgServer::start(PgOptions {
        tls: Some(ca.server_cert(&["localhost", "127.0.0.1"])),
        require_ssl: true,
        password_auth: true,
        ..PgOptions::default()
    });
    let w = world();
    let with = |params: &[(&str, String)]| {
        let mut u = url(&server, "postgres", "127.0.0.1", params);
        u = u.replacen("postgres@", &format!("postgres:{}@", pg::ADMIN_PASSWORD), 1);
        u
    };
    // require: SCRAM-SHA-256-PLUS with tls-server-end-point, or no connection.
    status(
        &w,
        &with(&[
            ("sslmode", "require".into()),
            ("channel_binding", "require".into()),
        ]),
    )
    .success()
    .does_not_say(pg::ADMIN_PASSWORD);
    // The libpq variable means the same.
    w.run_with_env(
        &["status"],
        &[
            ("DATABASE_URL", &with(&[("sslmode", "require".into())])),
            ("PGCHANNELBINDING", "require"),
        ],
    )
    .success();
}
