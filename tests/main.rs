//! squizzle's integration tests: one test binary whose modules are the other
//! files of `tests/`, sharing the harness in `crates/test-support`
//! (`squizzle_test_support`), which is compiled and linked once.
//!
//! Run one module with `cargo test --test main -- apply_pg::`.
//! `autotests = false` in `Cargo.toml` keeps cargo from building each file as a
//! binary of its own, so a file not declared here would never run:
//! `every_test_file_is_a_module` refuses that.

mod apply_batch;
mod apply_faults;
mod apply_from_registry;
mod apply_pg;
mod apply_tls;
mod audit_pg;
mod build_history;
mod cli_build;
mod cli_conventions;
mod cli_init;
mod cli_list;
mod cli_meta;
mod cli_verify;
mod deny_policy;
mod deploy_no_checkout;
mod doc_examples;
mod drift_pg;
mod evidence_cosign;
mod evidence_layouts;
mod exit_codes;
mod fleet_pg;
mod formats;
mod incident_drill;
mod install;
mod integrity_everywhere;
mod lint;
mod logging;
mod output_schemas;
mod pg_harness;
mod pooler_pg;
mod registry_auth;
mod registry_faults;
mod registry_harness;
mod registry_hostile;
mod registry_oras;
mod registry_push_pull;
mod registry_referrers;
mod registry_referrers_faults;
mod release_image;
mod reproducible;
mod rollback_pg;
mod schemas;
mod secrets;
mod sign_key;
mod sign_keyless;
mod signing_keys;
mod sigstore_public_good;
mod sigstore_services;
mod split_corpus;
mod supply_chain;
mod unpack_hostile;
mod workflows_lint;

#[test]
fn every_test_file_is_a_module() {
    let tests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let declared: Vec<&str> = include_str!("main.rs")
        .lines()
        .filter_map(|l| l.strip_prefix("mod ")?.strip_suffix(';'))
        .collect();
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&tests).expect("read tests/") {
        let path = entry.expect("entry of tests/").path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if path.extension().is_some_and(|e| e == "rs")
            && stem != "main"
            && !declared.contains(&stem)
        {
            missing.push(stem.to_owned());
        }
    }
    assert!(
        missing.is_empty(),
        "tests/{{{}}}.rs: not declared in tests/main.rs, so never compiled or run",
        missing.join(",")
    );
}
