//! Registry credentials from docker's `config.json` against a real registry
//! (CNCF distribution 2.8, `squizzle_test_support::registry`): `auths` entries,
//! `credHelpers` and `credsStore` (a real `docker-credential-*` program on
//! PATH), an `identitytoken` exchanged as an OAuth2 refresh token (against a
//! scripted token service, `squizzle_test_support::fake_registry`), a failing
//! helper (exit 4), squizzle's precedence over the docker configuration, and
//! the secret never printed, not even at trace level.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use squizzle_test_support::World;
use squizzle_test_support::fake_registry::{FakeRegistry, Release, Response};
use squizzle_test_support::registry::{self, Auth, Registry, RegistryOptions};

const REPO: &str = "acme/migrations";
const USER: &str = "squizzle-ci";
/// With a colon, which `user:password` in `auth` must survive.
const PASSWORD: &str = "docker-Config:s3cret-Value";
const HELPER: &str = "squizzletest";

fn start(auth: Auth) -> Registry {
    Registry::start(RegistryOptions { auth })
}

fn project_config(reg: &Registry) -> String {
    format!(
        "[project]\nmigrations = \"migrations\"\n\n[registry]\nurl = \"{}/{REPO}\"\n",
        reg.url()
    )
}

/// Writes `json` as `~/.docker/config.json` of the world's private HOME.
fn docker_config(w: &World, json: &serde_json::Value) {
    let dir = w.home().join(".docker");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("config.json"), json.to_string()).unwrap();
}

fn auth_entry(user: &str, password: &str) -> serde_json::Value {
    let b64 = registry::b64(format!("{user}:{password}").as_bytes(), false);
    serde_json::json!({ "auth": b64 })
}

/// Puts `docker-credential-squizzletest` in a folder prepended to the
/// world's PATH. It answers `get` for `host` with `answer` (JSON), says
/// "credentials not found" for any other host, and records what it read.
fn install_helper(w: &mut World, host: &str, script_body: &str) -> std::path::PathBuf {
    let bin = w.home().join("bin");
    fs::create_dir_all(&bin).unwrap();
    let log = w.home().join("helper.log");
    let script = format!(
        "#!/bin/sh\n\
         [ \"$1\" = get ] || {{ echo \"unexpected action $1\" >&2; exit 3; }}\n\
         host=$(cat)\n\
         printf '%s\\n' \"$host\" >> '{log}'\n\
         if [ \"$host\" != '{host}' ]; then echo 'credentials not found in native keychain'; exit 1; fi\n\
         {script_body}\n",
        log = log.display()
    );
    let path = bin.join(format!("docker-credential-{HELPER}"));
    fs::write(&path, script).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    let path_var = std::env::var("PATH").unwrap_or_default();
    w.set_env("PATH", &format!("{}:{path_var}", bin.display()));
    log
}

fn answering(user: &str, secret: &str) -> String {
    format!(
        "printf '{{\"ServerURL\":\"%s\",\"Username\":\"{user}\",\"Secret\":\"{secret}\"}}' \"$host\""
    )
}

/// Push from one world, pull into another, both configured by `setup`.
fn round_trip(reg: &Registry, setup: impl Fn(&mut World)) -> (World, World) {
    let mut a = World::plain();
    a.config(&project_config(reg));
    setup(&mut a);
    a.build_ok("1.0.0");
    let digest = a.tag_digest("1.0.0");
    let pushed = a
        .run(&["push", "1.0.0", "--output", "json"])
        .success()
        .json();
    assert_eq!(pushed["digest"], digest.as_str());
    let mut b = World::named("elsewhere");
    b.config(&project_config(reg));
    setup(&mut b);
    b.run(&["pull", "1.0.0"]).success();
    assert_eq!(b.tag_digest("1.0.0"), digest);
    b.run(&["verify", "1.0.0"]).success();
    (a, b)
}

fn assert_quiet_about(run_output: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(
            !run_output.contains(s),
            "the output shows the secret {s:?}:\n{run_output}"
        );
    }
}

/// Every form of the secret that could leak: plain, and inside basic auth.
fn secret_forms(user: &str, password: &str) -> Vec<String> {
    let basic = registry::basic_authorization(user, password);
    vec![
        password.to_owned(),
        basic.trim_start_matches("Basic ").to_owned(),
        registry::b64(password.as_bytes(), false),
    ]
}

fn traced_pull_is_quiet(w: &World, user: &str, password: &str) {
    // Rebuild the same release elsewhere is not needed: a second pull of a
    // release already there still resolves it, so it authenticates.
    let run = w
        .run_with_env(&["pull", "1.0.0", "-vvv"], &[("SQUIZZLE_LOG", "trace")])
        .success();
    let out = run.output();
    assert!(
        out.lines().count() > 10,
        "trace logging should be on:\n{out}"
    );
    let forms = secret_forms(user, password);
    assert_quiet_about(&out, &forms.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn auths_entry_with_base64_credentials_pushes_and_pulls() {
    for auth in [Auth::basic(USER, PASSWORD), Auth::token(USER, PASSWORD)] {
        let reg = start(auth);
        // Keys as docker writes them: bare host:port, or a URL.
        let url_key = format!("http://{}/v2/", reg.url());
        let (_, b) = round_trip(&reg, |w| {
            docker_config(
                w,
                &serde_json::json!({ "auths": {
                    "ghcr.io": auth_entry("someone", "else"),
                    url_key.clone(): auth_entry(USER, PASSWORD),
                }}),
            )
        });
        traced_pull_is_quiet(&b, USER, PASSWORD);
    }
}

#[test]
fn docker_config_env_points_at_another_folder() {
    let reg = start(Auth::basic(USER, PASSWORD));
    round_trip(&reg, |w| {
        let dir = w.home().join("elsewhere-docker");
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("config.json"),
            serde_json::json!({ "auths": { (reg.url()): auth_entry(USER, PASSWORD) }}).to_string(),
        )
        .unwrap();
        w.set_env("DOCKER_CONFIG", &dir.display().to_string());
        // A wrong ~/.docker/config.json must be ignored.
        docker_config(
            w,
            &serde_json::json!({ "auths": { (reg.url()): auth_entry(USER, "wrong-pw") }}),
        );
    });
}

#[test]
fn cred_helpers_entry_runs_the_helper() {
    let reg = start(Auth::basic(USER, PASSWORD));
    let host = reg.url();
    let (a, b) = round_trip(&reg, |w| {
        install_helper(w, &host, &answering(USER, PASSWORD));
        docker_config(
            w,
            &serde_json::json!({
                "auths": { (host.clone()): {} },
                "credHelpers": { (host.clone()): HELPER, "ghcr.io": "absent" },
            }),
        );
    });
    let asked = fs::read_to_string(a.home().join("helper.log")).unwrap();
    assert!(asked.lines().all(|l| l == host), "{asked}");
    assert!(!asked.is_empty());
    traced_pull_is_quiet(&b, USER, PASSWORD);
}

#[test]
fn creds_store_runs_the_helper_for_every_registry() {
    for auth in [Auth::basic(USER, PASSWORD), Auth::token(USER, PASSWORD)] {
        let reg = start(auth);
        let host = reg.url();
        let (_, b) = round_trip(&reg, |w| {
            install_helper(w, &host, &answering(USER, PASSWORD));
            docker_config(
                w,
                &serde_json::json!({ "auths": { (host.clone()): {} }, "credsStore": HELPER }),
            );
        });
        traced_pull_is_quiet(&b, USER, PASSWORD);
    }
}

#[test]
fn a_helper_without_credentials_for_the_host_means_anonymous() {
    let reg = start(Auth::basic(USER, PASSWORD));
    let mut w = World::plain();
    w.config(&project_config(&reg));
    install_helper(&mut w, "some.other.host", &answering(USER, PASSWORD));
    docker_config(&w, &serde_json::json!({ "credsStore": HELPER }));
    w.build_ok("1.0.0");
    // Anonymous against a registry that wants credentials: refused (4).
    w.run(&["push", "1.0.0"]).code(4).says("refused");
}

#[test]
fn a_failing_helper_exits_4_and_names_itself() {
    let reg = start(Auth::basic(USER, PASSWORD));
    for config in [
        serde_json::json!({ "credHelpers": { (reg.url()): HELPER } }),
        serde_json::json!({ "credsStore": HELPER }),
    ] {
        let mut w = World::plain();
        w.config(&project_config(&reg));
        install_helper(&mut w, &reg.url(), "echo 'keychain is locked' >&2; exit 7");
        docker_config(&w, &config);
        w.build_ok("1.0.0");
        for args in [
            &["push", "1.0.0"][..],
            &["pull", "1.0.0", "--output", "json"],
        ] {
            w.run(args)
                .code(4)
                .says(&format!("docker-credential-{HELPER}"))
                .says("keychain is locked");
        }
    }
    // A helper that is not installed at all: 4 as well, saying so.
    let w = World::plain();
    w.config(&project_config(&reg));
    docker_config(
        &w,
        &serde_json::json!({ "credsStore": "squizzle-not-installed" }),
    );
    w.build_ok("1.0.0");
    w.run(&["push", "1.0.0"])
        .code(4)
        .says("docker-credential-squizzle-not-installed")
        .says("PATH");
    // A helper answering garbage: 4, without echoing the answer.
    let mut w = World::plain();
    w.config(&project_config(&reg));
    install_helper(&mut w, &reg.url(), "echo 'Secret: not-json-s3cr3t'");
    docker_config(&w, &serde_json::json!({ "credsStore": HELPER }));
    w.build_ok("1.0.0");
    w.run(&["push", "1.0.0"])
        .code(4)
        .says("Username")
        .does_not_say("not-json-s3cr3t");
}

#[test]
fn squizzle_configuration_wins_over_the_docker_configuration() {
    let reg = start(Auth::basic(USER, PASSWORD));
    let mut w = World::plain();
    w.config(&format!(
        "{}username = \"${{REG_USER}}\"\npassword = \"${{REG_PASSWORD}}\"\n",
        project_config(&reg)
    ));
    w.set_env("REG_USER", USER);
    w.set_env("REG_PASSWORD", "configured-but-wrong");
    docker_config(
        &w,
        &serde_json::json!({ "auths": { (reg.url()): auth_entry(USER, PASSWORD) }}),
    );
    w.build_ok("1.0.0");
    // The configured (wrong) password is used, not the docker one.
    w.run(&["push", "1.0.0"])
        .code(4)
        .does_not_say("configured-but-wrong")
        .does_not_say(PASSWORD);
    // A token also wins over the docker configuration (and is refused by a
    // basic-auth registry).
    w.config(&project_config(&reg));
    w.run_with_env(
        &["push", "1.0.0"],
        &[("SQUIZZLE_REGISTRY_TOKEN", "a-token-that-is-not-basic")],
    )
    .code(4)
    .does_not_say("a-token-that-is-not-basic");
    // Without either, the docker credentials work.
    w.run(&["push", "1.0.0"]).success();
}

#[test]
fn an_identity_token_is_exchanged_as_a_refresh_token() {
    const REFRESH: &str = "refresh-t0ken-Value-xyz";
    const ACCESS: &str = "access-t0ken-Value-abc";
    // A token service on the registry's host that only knows the refresh grant.
    let realm = FakeRegistry::start("127.0.0.1", |req| {
        let form = String::from_utf8_lossy(&req.body).into_owned();
        if req.method == "POST"
            && form.contains("grant_type=refresh_token")
            && form.contains(&format!("refresh_token={REFRESH}"))
            && form.contains("scope=repository%3Aacme%2Fmigrations%3Apull")
        {
            Response::new(200)
                .header("Content-Type", "application/json")
                .body(format!(r#"{{"access_token":"{ACCESS}","expires_in":300}}"#))
        } else {
            Response::new(401).body("{}")
        }
    });
    let realm_url = format!("http://{}/token", realm.host());
    let release = {
        let w = World::plain();
        w.build_ok("1.0.0");
        let digest = w.tag_digest("1.0.0");
        let mut r = Release {
            manifest: w.blob(&digest),
            ..Release::default()
        };
        for d in [r.config_digest(), r.layer_digest()] {
            r.blobs.insert(d.clone(), w.blob(&d));
        }
        r
    };
    let reg = FakeRegistry::start("127.0.0.1", move |req| {
        if req.header("Authorization") != Some(&format!("Bearer {ACCESS}")) {
            return Response::new(401).header(
                "WWW-Authenticate",
                &format!(r#"Bearer realm="{realm_url}",service="fake""#),
            );
        }
        release
            .answer(REPO, "1.0.0", req)
            .unwrap_or_else(|| Response::not_found("NAME_UNKNOWN"))
    });
    let w = World::named("elsewhere");
    w.config(&format!(
        "[project]\nmigrations = \"migrations\"\n\n[registry]\nurl = \"{}/{REPO}\"\n",
        reg.host()
    ));
    docker_config(
        &w,
        &serde_json::json!({ "auths": { (reg.host()): { "identitytoken": REFRESH } }}),
    );
    let run = w
        .run_with_env(&["pull", "1.0.0", "-vvv"], &[("SQUIZZLE_LOG", "trace")])
        .success();
    assert_quiet_about(&run.output(), &[REFRESH, ACCESS]);
    w.run(&["verify", "1.0.0"]).success();
    assert!(realm.requests().iter().any(|r| r.method == "POST"));
}

#[test]
fn an_identity_token_for_a_registry_without_token_service_is_refused_clearly() {
    let reg = start(Auth::basic(USER, PASSWORD));
    let w = World::plain();
    w.config(&project_config(&reg));
    docker_config(
        &w,
        &serde_json::json!({ "auths": { (reg.url()): { "identitytoken": "refresh-t0ken-value" } }}),
    );
    w.build_ok("1.0.0");
    w.run(&["push", "1.0.0"])
        .code(4)
        .says("identity token")
        .does_not_say("refresh-t0ken-value");
}

#[test]
fn a_failing_helper_never_echoes_what_it_wrote_on_stdout() {
    const CANARY: &str = "canary-helper-secret-5b1e";
    let reg = start(Auth::basic(USER, PASSWORD));
    let mut w = World::plain();
    w.config(&project_config(&reg));
    install_helper(
        &mut w,
        &reg.url(),
        &format!("echo '{{\"Secret\":\"{CANARY}\"}}'; echo 'keychain is locked' >&2; exit 7"),
    );
    docker_config(&w, &serde_json::json!({ "credsStore": HELPER }));
    w.build_ok("1.0.0");
    for args in [
        &["push", "1.0.0"][..],
        &["push", "1.0.0", "--output", "json"],
    ] {
        w.run(args)
            .code(4)
            .says("keychain is locked")
            .does_not_say(CANARY);
    }
}

/// Issue 11 §3: a helper that fails (exit 1) after writing a secret on
/// stdout (bare on its first line, where no redaction pattern can see it,
/// and in a JSON answer) AND on stderr after its first line: only the first stderr line is
/// shown, in text and JSON, on stdout and stderr alike, for push and pull.
#[test]
fn a_failing_helper_shows_only_the_first_line_of_its_stderr() {
    const ON_STDOUT: &str = "canary-on-stdout-91f3";
    const ON_STDERR: &str = "canary-stderr-line-two-4d0a";
    let reg = start(Auth::basic(USER, PASSWORD));
    let mut w = World::plain();
    w.config(&project_config(&reg));
    install_helper(
        &mut w,
        &reg.url(),
        &format!(
            "printf '{ON_STDOUT}\\n{{\"ServerURL\":\"x\",\"Username\":\"{USER}\",\"Secret\":\"{ON_STDOUT}\"}}\\n'; printf 'helper: vault sealed\\nretrying with token {ON_STDERR}\\n' >&2; exit 1"
        ),
    );
    docker_config(&w, &serde_json::json!({ "credsStore": HELPER }));
    w.build_ok("1.0.0");
    for args in [
        &["push", "1.0.0"][..],
        &["push", "1.0.0", "--output", "json"],
        &["pull", "1.0.0"],
        &["pull", "1.0.0", "--output", "json"],
    ] {
        w.run(args)
            .code(4)
            .does_not_say(ON_STDOUT)
            .does_not_say(ON_STDERR)
            .does_not_say("retrying with token")
            .says("helper: vault sealed")
            .says(HELPER);
    }
}

#[test]
fn an_invalid_registry_token_is_an_authentication_failure_on_push() {
    const BAD: &str = "invalid-registry-token-7c2d";
    // A token-service registry, and a plain htpasswd (basic) one.
    for auth in [Auth::token(USER, PASSWORD), Auth::basic(USER, PASSWORD)] {
        invalid_token_on_push(auth, BAD);
    }
}

fn invalid_token_on_push(auth: Auth, bad: &str) {
    let reg = start(auth);
    let mut w = World::plain();
    w.config(&project_config(&reg));
    // Big enough for a streamed upload, not only a one-request PUT.
    w.write("migrations/0004_big.sql", incompressible_sql());
    w.build_ok("1.0.0");
    w.set_env("SQUIZZLE_REGISTRY_TOKEN", bad);
    for args in [
        &["push", "1.0.0"][..],
        &["push", "1.0.0", "--output", "json"],
    ] {
        w.run(args)
            .code(4)
            .says("401 Unauthorized")
            .does_not_say(bad);
    }
}

/// Issue 11 §3: a repository whose name ends in a credential word
/// (`down-token`, `password-reset`) is printed as it is by push and list, in
/// text and JSON, while the password used to reach it never appears.
#[test]
fn repository_names_with_credential_words_are_not_masked() {
    const MASKED: &str = "***";
    let reg = start(Auth::basic(USER, PASSWORD));
    for repo in ["acme/down-token", "password-reset"] {
        let mut w = World::plain();
        w.config(&format!(
            "[project]\nmigrations = \"migrations\"\n\n[registry]\nurl = \"{}/{repo}\"\nusername = \"${{REG_USER}}\"\npassword = \"${{REG_PASSWORD}}\"\n",
            reg.url()
        ));
        w.set_env("REG_USER", USER);
        w.set_env("REG_PASSWORD", PASSWORD);
        w.build_ok("1.0.0");
        // push names the reference `<registry>/<repo>:<tag>`, which the
        // old rule read as a `token:` field and printed as `down-token:***`.
        w.run(&["push", "1.0.0"])
            .success()
            .says(&format!("{repo}:1.0.0"))
            .does_not_say(MASKED)
            .does_not_say(PASSWORD);
        for args in [&["list"][..], &["list", "--output", "json"]] {
            w.run(args)
                .success()
                .says(repo)
                .does_not_say(MASKED)
                .does_not_say(PASSWORD);
        }
    }
}

/// Issue 11 §3: a registry that accepts the upload session and then refuses
/// the blob's bytes with 401 (a token that is not good for pushing, or that
/// expired mid-upload) is an authentication failure (exit 4), for the
/// streamed PATCH of a large layer and the closing PUT alike. Scripted: the
/// real docker-registry refuses a bad credential at the session's POST
/// already (the test above), so it cannot show this step.
#[test]
fn a_401_on_the_blob_upload_itself_is_exit_4() {
    const BAD: &str = "upload-refused-token-3e9a";
    for refuse in ["PATCH", "PUT"] {
        let reg = FakeRegistry::start("127.0.0.1", move |req| {
            let unauthorized = || {
                Response::new(401)
                    .header("Content-Type", "application/json")
                    .header("WWW-Authenticate", "Basic realm=\"fake\"")
                    .body(r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#)
            };
            match (req.method.as_str(), req.path()) {
                ("GET", "/v2/") => Response::new(200),
                ("POST", p) if p.ends_with("/blobs/uploads/") => Response::new(202)
                    .header("Location", "/v2/acme/migrations/blobs/uploads/s1")
                    .header("Docker-Upload-UUID", "s1"),
                (m, p) if m == refuse && p.contains("/blobs/uploads/") => unauthorized(),
                ("PATCH", p) if p.contains("/blobs/uploads/") => Response::new(202)
                    .header("Location", "/v2/acme/migrations/blobs/uploads/s1")
                    .header("Range", "0-0"),
                ("PUT", p) if p.contains("/blobs/uploads/") => Response::new(201),
                ("PUT", p) if p.contains("/manifests/") => Response::new(201),
                _ => Response::not_found("BLOB_UNKNOWN"),
            }
        });
        let w = World::plain();
        w.config(&format!(
            "[project]\nmigrations = \"migrations\"\n\n[registry]\nurl = \"{}/{REPO}\"\n",
            reg.host()
        ));
        w.write("migrations/0004_big.sql", incompressible_sql());
        w.build_ok("1.0.0");
        for args in [
            &["push", "1.0.0", "--plain-http"][..],
            &["push", "1.0.0", "--plain-http", "--output", "json"],
        ] {
            w.run_with_env(args, &[("SQUIZZLE_REGISTRY_TOKEN", BAD)])
                .code(4)
                .says("401 Unauthorized")
                .does_not_say(BAD);
        }
    }
}

/// A migration of about 3 MiB of hex from a simple generator: it compresses
/// poorly, so the layer is above the one-request upload size and goes up as
/// a streamed PATCH.
fn incompressible_sql() -> String {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut sql = String::with_capacity(3 << 20);
    sql.push_str("SELECT 1;\n");
    while sql.len() < 3 << 20 {
        sql.push_str("-- ");
        for _ in 0..8 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            sql.push_str(&format!("{x:016x}"));
        }
        sql.push('\n');
    }
    sql
}
