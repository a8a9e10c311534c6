//! Build facts for `squizzle version`: the commit, its date (not the time of
//! the build, so the same source gives the same binary), the target and the
//! compiler. Each can be given by the packager instead
//! (`SQUIZZLE_BUILD_COMMIT`, `SQUIZZLE_BUILD_DATE`, e.g. from a release
//! workflow); from a packaged crate without git they read "unknown".

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SQUIZZLE_BUILD_COMMIT");
    println!("cargo:rerun-if-env-changed=SQUIZZLE_BUILD_DATE");
    // Rebuilt when HEAD moves: the files git keeps it in.
    for path in [
        git(&["rev-parse", "--git-path", "HEAD"]),
        git(&["symbolic-ref", "-q", "HEAD"])
            .and_then(|r| git(&["rev-parse", "--git-path", r.as_str()])),
        git(&["rev-parse", "--git-path", "packed-refs"]),
    ]
    .into_iter()
    .flatten()
    {
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let commit = std::env::var("SQUIZZLE_BUILD_COMMIT")
        .ok()
        .or_else(|| git(&["rev-parse", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    let date = std::env::var("SQUIZZLE_BUILD_DATE")
        .ok()
        .or_else(|| git(&["log", "-1", "--format=%cs"]))
        .unwrap_or_else(|| "unknown".into());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=SQUIZZLE_BUILD_COMMIT={commit}");
    println!("cargo:rustc-env=SQUIZZLE_BUILD_DATE={date}");
    println!("cargo:rustc-env=SQUIZZLE_BUILD_RUSTC={rustc}");
    println!("cargo:rustc-env=SQUIZZLE_BUILD_TARGET={target}");
}
