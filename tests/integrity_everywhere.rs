//! One integrity rule for every command (issue 11 §2): a release whose
//! content `apply` would refuse is refused the same way (exit 6) by
//! `verify`, `sign`, `audit`, `pull`, `apply`, `rollback` and `baseline`,
//! before any database is touched, and `pull` leaves the local store as it
//! was.
//!
//! Each hostile release is forged from a real build: its tarball is rebuilt
//! with one defect and every digest (layer, squizzle manifest, OCI manifest,
//! tag) is made to agree with it, as a hostile publisher would, so only the
//! content is wrong. It is put into a local store (for verify, sign, audit
//! and apply) and pushed to a real registry (for pull, and for apply and
//! audit on a machine that does not have it yet).

use std::collections::BTreeMap;
use std::io::Read;

use serde_json::Value;
use squizzle_test_support::fake_registry::sha256_digest;
use squizzle_test_support::registry::{Registry, RegistryOptions};
use squizzle_test_support::{Run, World, pg};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const PASS: &str = "integrity-key-passphrase";

/// One tar member of a forged tarball.
#[derive(Clone)]
enum Member {
    File(String, Vec<u8>),
    Symlink(String),
    Hardlink(String),
    Fifo(String),
}

/// A defect, as a change to the release's members and to its file list.
struct Hostile {
    name: &'static str,
    /// What every refusal names.
    says: &'static str,
    forge: fn(&mut Vec<Member>, &mut Vec<Value>),
}

/// The squizzle manifest lists this file's new hash and size.
fn relist(files: &mut [Value], path: &str, bytes: &[u8]) {
    for f in files.iter_mut() {
        if f["path"] == path {
            f["sha256"] = sha256_digest(bytes).into();
            f["size"] = bytes.len().into();
        }
    }
}

/// Edits the first file's bytes and lists its new hash.
fn edit_first(members: &mut [Member], files: &mut [Value], edit: impl Fn(&mut Vec<u8>)) {
    let Member::File(path, bytes) = &mut members[0] else {
        unreachable!()
    };
    edit(bytes);
    relist(files, path, bytes);
}

fn first_path(members: &[Member]) -> String {
    match &members[0] {
        Member::File(p, _) => p.clone(),
        _ => unreachable!(),
    }
}

fn hostile_kinds() -> Vec<Hostile> {
    vec![
        Hostile {
            name: "invalid UTF-8",
            says: "is not valid UTF-8",
            forge: |m, f| edit_first(m, f, |b| b.extend_from_slice(b"-- \xff\xfe\n")),
        },
        Hostile {
            name: "NUL byte",
            says: "contains a NUL byte",
            forge: |m, f| edit_first(m, f, |b| b.extend_from_slice(b"SELECT 1;\0\n")),
        },
        Hostile {
            name: "unknown directive",
            says: "unknown directive",
            forge: |m, f| {
                edit_first(m, f, |b| {
                    b.splice(0..0, b"-- squizzle:no-transactions\n".iter().copied());
                })
            },
        },
        Hostile {
            name: "directive after SQL",
            says: "comes after SQL",
            forge: |m, f| {
                edit_first(m, f, |b| {
                    b.extend_from_slice(b"-- squizzle:no-transaction\n")
                })
            },
        },
        Hostile {
            name: "no-transaction file listed as transactional",
            says: "-- squizzle:no-transaction",
            forge: |m, f| {
                edit_first(m, f, |b| {
                    b.splice(0..0, b"-- squizzle:no-transaction\n".iter().copied());
                })
            },
        },
        Hostile {
            name: "symlink",
            says: "contain only regular files",
            forge: |m, _| m[0] = Member::Symlink(first_path(m)),
        },
        Hostile {
            name: "hardlink",
            says: "contain only regular files",
            forge: |m, _| m[0] = Member::Hardlink(first_path(m)),
        },
        Hostile {
            name: "FIFO",
            says: "contain only regular files",
            forge: |m, _| m[0] = Member::Fifo(first_path(m)),
        },
        Hostile {
            name: "duplicate entry",
            says: "appears twice",
            forge: |m, _| m.push(m[0].clone()),
        },
        Hostile {
            name: "unlisted entry",
            says: "not in the manifest",
            forge: |m, _| {
                m.push(Member::File(
                    "migrations/0009_extra.sql".into(),
                    b"DROP TABLE users;\n".to_vec(),
                ))
            },
        },
        Hostile {
            name: "missing entry",
            says: "missing from the tarball",
            forge: |m, _| {
                m.pop();
            },
        },
        Hostile {
            name: "file differs from its manifest hash",
            says: "migrations/0001_create_users.sql",
            forge: |m, _| {
                let Member::File(_, b) = &mut m[0] else {
                    unreachable!()
                };
                b.extend_from_slice(b"DROP TABLE orders;\n");
            },
        },
        Hostile {
            name: "decompression bomb",
            says: "decompression bomb",
            // 40 MiB of spaces, listed with their real hash: only the
            // compression ratio is wrong.
            forge: |m, f| {
                edit_first(m, f, |b| {
                    b.clear();
                    b.resize(40 << 20, b' ');
                })
            },
        },
    ]
}

/// The release's members as built, in tarball order.
fn members_of(layer: &[u8]) -> Vec<Member> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer));
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            Member::File(path, bytes)
        })
        .collect()
}

fn tarball(members: &[Member]) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    for m in members {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_mtime(0);
        match m {
            Member::File(p, bytes) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(bytes.len() as u64);
                h.set_cksum();
                b.append_data(&mut h, p, &bytes[..]).unwrap();
            }
            Member::Symlink(p) | Member::Hardlink(p) | Member::Fifo(p) => {
                h.set_entry_type(match m {
                    Member::Symlink(_) => tar::EntryType::Symlink,
                    Member::Hardlink(_) => tar::EntryType::Link,
                    _ => tar::EntryType::Fifo,
                });
                if !matches!(m, Member::Fifo(_)) {
                    h.set_link_name("/etc/passwd").unwrap();
                }
                h.set_size(0);
                h.set_cksum();
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap().finish().unwrap()
}

/// The forged release's blobs: (OCI manifest, squizzle manifest, layer).
struct Forged {
    manifest: Vec<u8>,
    config: Vec<u8>,
    layer: Vec<u8>,
}

/// Forges `kind` from release 1.0.0 of `w` (left as it is).
fn forge(w: &World, kind: &Hostile) -> Forged {
    let mut config = w.squizzle_manifest("1.0.0");
    let mut files: Vec<Value> = config["files"].as_array().unwrap().clone();
    let mut members = members_of(&w.blob(&w.layer_digest("1.0.0")));
    (kind.forge)(&mut members, &mut files);
    let layer = tarball(&members);
    config["files"] = files.into();
    config["tarball"]["sha256"] = sha256_digest(&layer).into();
    config["tarball"]["size"] = layer.len().into();
    let config = serde_json::to_vec(&config).unwrap();
    let mut manifest = w.oci_manifest("1.0.0");
    manifest["config"]["digest"] = sha256_digest(&config).into();
    manifest["config"]["size"] = config.len().into();
    manifest["layers"][0]["digest"] = sha256_digest(&layer).into();
    manifest["layers"][0]["size"] = layer.len().into();
    Forged {
        manifest: serde_json::to_vec(&manifest).unwrap(),
        config,
        layer,
    }
}

/// Puts the forged release into `w`'s store under tag 1.0.0.
fn install(w: &World, f: &Forged) {
    for blob in [&f.manifest, &f.config, &f.layer] {
        let path = w.blob_path(&sha256_digest(blob));
        std::fs::write(path, blob).unwrap();
    }
    let mut index = w.index();
    for m in index["manifests"].as_array_mut().unwrap() {
        if m["annotations"]["org.opencontainers.image.ref.name"] == "1.0.0" {
            m["digest"] = sha256_digest(&f.manifest).into();
            m["size"] = f.manifest.len().into();
        }
    }
    w.write_index(&index);
}

/// Every file of the local store with its content.
fn snapshot(w: &World) -> BTreeMap<String, Vec<u8>> {
    w.files_under("db/oci")
        .into_iter()
        .map(|f| {
            let bytes = w.read(&format!("db/oci/{f}"));
            (f, bytes)
        })
        .collect()
}

fn closed_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("postgres://postgres@127.0.0.1:{port}/x?sslmode=disable")
}

/// No history schema and none of the release's tables in `db`.
fn untouched(db: &str) -> Result<(), String> {
    let rows = pg::shared().query(
        db,
        "SELECT nspname FROM pg_namespace WHERE nspname = 'squizzle' \
         UNION ALL SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
    );
    if rows.is_empty() {
        Ok(())
    } else {
        Err(format!("{rows:?}"))
    }
}

/// Records a failure unless `run` exited 6 naming what `kind` is about.
fn check(failures: &mut Vec<String>, kind: &Hostile, what: &str, run: Run) -> Run {
    let out = run.output();
    if run.code != 6 || !out.contains(kind.says) {
        failures.push(format!(
            "{}: {what}: exit {}, expected 6 naming {:?}:\n{out}",
            kind.name, run.code, kind.says
        ));
    }
    run
}

/// A project with release 1.0.0 built, a signing key, and `[environments]`
/// pointing at `db_url` (and, with `registry`, the registry `repo`).
fn project(db_url: &str, registry: Option<(&Registry, &str)>) -> World {
    let mut w = World::plain();
    w.set_env("SQUIZZLE_KEY_PASSWORD", PASS);
    let mut cfg = "[project]\nmigrations = \"migrations\"\n".to_string();
    if let Some((reg, repo)) = registry {
        cfg.push_str(&format!("\n[registry]\nurl = \"{}/{repo}\"\n", reg.url()));
    }
    cfg.push_str(&format!(
        "\n[environments.prod]\ndatabase_url = \"{db_url}\"\n"
    ));
    w.config(&cfg);
    w
}

#[test]
fn every_command_refuses_a_hostile_release_with_exit_6() {
    let registry = Registry::start(RegistryOptions::default());
    let mut failures = Vec::new();
    for (i, kind) in hostile_kinds().iter().enumerate() {
        let name = kind.name;
        let db = pg::shared().create_database("integrity");
        let db_url = format!("{db}?sslmode=disable");
        let repo = format!("hostile/k{i}");

        // --- A store that holds the hostile release.
        let w = project(&db_url, None);
        w.run(&["keygen"]).success();
        w.build_ok("1.0.0");
        let forged = forge(&w, kind);
        install(&w, &forged);
        let v = check(&mut failures, kind, "verify", w.run(&["verify", "1.0.0"]));
        // Every digest agrees: the artifact line passes, the content fails.
        if !v.stdout.starts_with("✓ Verifying artifact checksum...\n✗ ") {
            failures.push(format!(
                "{name}: verify did not print the artifact line then a failure:\n{}",
                v.output()
            ));
        }
        let json = w.run(&["verify", "1.0.0", "--output", "json"]);
        let report: Value = serde_json::from_str(&json.stdout).unwrap_or_default();
        if json.code != 6
            || report["verified"] != false
            || report["checks"][0]["name"] != "artifact"
            || report["checks"][0]["status"] != "pass"
            || report["checks"][1]["name"] != "files"
            || report["checks"][1]["status"] != "fail"
        {
            failures.push(format!("{name}: verify --output json: {}", json.output()));
        }

        let before = w.index();
        check(
            &mut failures,
            kind,
            "sign",
            w.run(&["sign", "1.0.0", "--key", "squizzle.key"]),
        );
        if w.index() != before || w.exists("db/tarballs/squizzle-1.0.0.sigstore.json") {
            failures.push(format!("{name}: sign stored something"));
        }

        let a = check(
            &mut failures,
            kind,
            "audit",
            w.run(&["audit", "1.0.0", "--timeout", "5s"]),
        );
        if a.output().contains("NOT FOUND") || !a.stdout.contains("Integrity:   FAILED") {
            failures.push(format!("{name}: audit did not say FAILED:\n{}", a.output()));
        }

        let a = check(
            &mut failures,
            kind,
            "apply (no server)",
            w.run_with_env(&["apply", "1.0.0"], &[("DATABASE_URL", &closed_url())]),
        );
        if !a.stdout.contains("✓ Verifying artifact checksum...\n✗ ")
            || a.output().contains("connect")
        {
            failures.push(format!("{name}: apply's output:\n{}", a.output()));
        }
        for command in ["rollback", "baseline"] {
            check(
                &mut failures,
                kind,
                command,
                w.run_with_env(&[command, "1.0.0"], &[("DATABASE_URL", &closed_url())]),
            );
        }
        check(
            &mut failures,
            kind,
            "apply (real database)",
            w.run(&["apply", "1.0.0", "--env", "prod"]),
        );
        if untouched(&db).is_err() {
            failures.push(format!("{name}: apply touched the database"));
        }

        // --- The same release in a real registry, pulled by another machine.
        registry.push_blob(&repo, &forged.layer);
        registry.push_blob(&repo, &forged.config);
        registry.put_manifest(&repo, "1.0.0", OCI_MANIFEST, &forged.manifest);
        let p = project(&db_url, Some((&registry, &repo)));
        // Other content than the served release, so no blob is shared.
        p.write(
            "migrations/0005_local.sql",
            "CREATE TABLE local_only (id int);\n",
        );
        p.build_ok("0.1.0");
        let store = snapshot(&p);
        let index = p.index();
        check(&mut failures, kind, "pull", p.run(&["pull", "1.0.0"]));
        if snapshot(&p) != store || p.index() != index {
            failures.push(format!("{name}: pull changed the store"));
        }
        let a = check(
            &mut failures,
            kind,
            "audit (pulls)",
            p.run(&["audit", "1.0.0", "--timeout", "5s"]),
        );
        // The registry's copy is malformed, not missing; the database is
        // still audited.
        if a.output().contains("NOT FOUND")
            || !a.stdout.contains("Artifact:    MALFORMED")
            || !a.stdout.contains("prod")
        {
            failures.push(format!(
                "{name}: audit (pulls) did not say MALFORMED:\n{}",
                a.output()
            ));
        }
        check(
            &mut failures,
            kind,
            "apply (pulls, no server)",
            p.run_with_env(&["apply", "1.0.0"], &[("DATABASE_URL", &closed_url())]),
        );
        check(
            &mut failures,
            kind,
            "apply (pulls)",
            p.run(&["apply", "1.0.0", "--env", "prod"]),
        );
        if snapshot(&p) != store {
            failures.push(format!("{name}: apply's pull changed the store"));
        }
        if let Err(what) = untouched(&db) {
            failures.push(format!(
                "{name}: apply (pulls) touched the database: {what}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A flipped byte in the layer is reported as what it is, the artifact
/// check's failure with both digests, by every command (never as a corrupt
/// gzip stream), and apply stops there without a server.
#[test]
fn a_flipped_layer_byte_is_a_checksum_mismatch_in_every_command() {
    let mut w = World::plain();
    w.set_env("SQUIZZLE_KEY_PASSWORD", PASS);
    w.run(&["keygen"]).success();
    w.build_ok("1.0.0");
    let layer = w.layer_digest("1.0.0");
    w.corrupt_blob(&layer);
    let actual = sha256_digest(&w.blob(&layer));
    let lines = format!(
        "✗ Checksum mismatch in squizzle-1.0.0.tar.gz\n  Expected: {layer}\n  Actual:   {actual}\n"
    );
    let v = w.run(&["verify", "1.0.0"]).code(6);
    assert!(v.stdout.starts_with(&lines), "{}", v.output());
    v.does_not_say("gzip");

    let a = w
        .run_with_env(&["apply", "1.0.0"], &[("DATABASE_URL", &closed_url())])
        .code(6);
    assert!(a.stdout.starts_with(&lines), "{}", a.output());
    a.says(&format!("expected {layer}, actual {actual}"))
        .does_not_say("gzip")
        .does_not_say("connect");

    let before = w.index();
    w.run(&["sign", "1.0.0", "--key", "squizzle.key"])
        .code(6)
        .says(&format!(
            "Checksum mismatch in squizzle-1.0.0.tar.gz (expected {layer}, actual {actual})"
        ));
    assert_eq!(w.index(), before, "sign stored something");

    w.run_with_env(
        &["audit", "1.0.0", "--timeout", "5s"],
        &[("DATABASE_URL", &closed_url())],
    )
    .code(6)
    .says("Integrity:   FAILED")
    .says(&format!("expected {layer}, actual {actual}"));
}
