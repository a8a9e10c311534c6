//! One isolated world per test: a temporary project folder, a private HOME, and
//! the real `squizzle` binary run inside it with a clean environment, so nothing
//! from the developer's shell (DATABASE_URL, SQUIZZLE_*, SOURCE_DATE_EPOCH, CI
//! variables, ...) leaks into a test.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The real drizzle-kit corpus: 186 migrations and `meta/_journal.json`.
pub const DOKPLOY_MIGRATIONS: usize = 186;

/// The squizzle repository (the workspace root): fixtures, docs and schemas
/// are read from here.
pub fn repo_root() -> PathBuf {
    // This crate lives at `<root>/crates/test-support`.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/test-support sits two levels below the repository root")
        .to_path_buf()
}

/// Path of the checked-in dokploy fixture.
pub fn dokploy_fixture() -> PathBuf {
    repo_root().join("fixtures/dokploy-drizzle")
}

/// The `squizzle` binary under test.
///
/// Cargo builds it for the root package's integration tests and names it in
/// `CARGO_BIN_EXE_squizzle`; this crate is compiled before that binary exists,
/// so the path is looked up when the tests run (the variable, else the
/// binary beside the test executable in `target/<profile>/`), the same lookup
/// `assert_cmd` does.
pub fn squizzle_bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("squizzle")
}

/// `squizzle.toml` for a plain `migrations/` folder with the default store paths.
pub const PLAIN_CONFIG: &str = "[project]\nmigrations = \"migrations\"\n";

/// `squizzle.toml` for a drizzle-kit folder at `drizzle/`.
pub const DRIZZLE_CONFIG: &str = "[project]\nmigrations = \"drizzle\"\nformat = \"drizzle\"\n";

pub struct World {
    /// Owns the temporary folder; removed when the world is dropped.
    _tmp: tempfile::TempDir,
    project: PathBuf,
    home: PathBuf,
    env: Vec<(String, String)>,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    /// An empty project folder (no squizzle.toml yet).
    pub fn new() -> Self {
        Self::named("project")
    }

    /// An empty project folder with the given directory name, so two worlds can
    /// differ in their checkout paths.
    pub fn named(name: &str) -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("squizzle-test-")
            .tempdir()
            .expect("create temp dir");
        let project = tmp.path().join(name);
        let home = tmp.path().join("home");
        fs::create_dir_all(&project).expect("create project dir");
        fs::create_dir_all(&home).expect("create home dir");
        Self {
            _tmp: tmp,
            project,
            home,
            env: Vec::new(),
        }
    }

    /// A plain-folder project with three small migrations and a config.
    pub fn plain() -> Self {
        let w = Self::new();
        w.config(PLAIN_CONFIG);
        w.write(
            "migrations/0001_create_users.sql",
            "CREATE TABLE users (id bigint PRIMARY KEY);\n",
        );
        w.write(
            "migrations/0002_add_email.sql",
            "ALTER TABLE users ADD COLUMN email text;\n",
        );
        w.write(
            "migrations/0003_create_orders.sql",
            "CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint);\n",
        );
        w
    }

    /// A project holding the dokploy drizzle corpus at `drizzle/`, with a config.
    pub fn dokploy() -> Self {
        let w = Self::new();
        w.copy_dokploy("drizzle");
        w.config(DRIZZLE_CONFIG);
        w
    }

    /// The project folder (the command's current directory).
    pub fn root(&self) -> &Path {
        &self.project
    }

    /// The private HOME given to the binary.
    pub fn home(&self) -> &Path {
        &self.home
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.project.join(rel)
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.path(rel).exists()
    }

    /// Writes a file (creating its folders), replacing any previous content.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
        }
        fs::write(&p, contents).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        p
    }

    pub fn read(&self, rel: &str) -> Vec<u8> {
        let p = self.path(rel);
        fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    }

    pub fn read_string(&self, rel: &str) -> String {
        String::from_utf8(self.read(rel)).expect("UTF-8 file")
    }

    pub fn read_json(&self, rel: &str) -> Value {
        serde_json::from_slice(&self.read(rel)).unwrap_or_else(|e| panic!("{rel} is not JSON: {e}"))
    }

    pub fn remove(&self, rel: &str) {
        let p = self.path(rel);
        fs::remove_file(&p).unwrap_or_else(|e| panic!("remove {}: {e}", p.display()));
    }

    /// Writes `squizzle.toml` at the project root.
    pub fn config(&self, toml: &str) {
        self.write("squizzle.toml", toml);
    }

    /// Copies the dokploy drizzle fixture into the project as `rel` (e.g. `drizzle`).
    pub fn copy_dokploy(&self, rel: &str) {
        copy_dir(&dokploy_fixture(), &self.path(rel));
    }

    /// Sets an environment variable for every later run in this world.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// Removes a variable [`World::set_env`] set.
    pub fn unset_env(&mut self, key: &str) {
        self.env.retain(|(k, _)| k != key);
    }

    /// A `squizzle` command in the project folder with a clean environment:
    /// only PATH, HOME (private) and the world's own variables.
    pub fn command(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::new(squizzle_bin());
        cmd.current_dir(&self.project)
            .env_clear()
            .env("HOME", &self.home);
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `squizzle ARGS...` in the project.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_env(args, &[])
    }

    /// Runs `squizzle ARGS...` with extra environment variables for this run only.
    pub fn run_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = self.command();
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run squizzle");
        Run {
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code().unwrap_or(-1),
        }
    }

    /// Runs a shell script (`sh -c`) in the project, with the same clean
    /// environment as [`World::command`] and the binary under test first on
    /// `PATH`, so the script's `squizzle` is the one being tested. stderr is
    /// merged into stdout (`2>&1`), so [`Run::stdout`] has both streams in the
    /// order they were written.
    pub fn sh(&self, script: &str) -> Run {
        let bin = squizzle_bin();
        let bin_dir = bin.parent().expect("the binary has a folder");
        let mut path = std::ffi::OsString::from(bin_dir);
        if let Some(inherited) = std::env::var_os("PATH") {
            path.push(":");
            path.push(inherited);
        }
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c")
            .arg(format!("exec 2>&1\n{script}"))
            .current_dir(&self.project)
            .env_clear()
            .env("HOME", &self.home)
            .env("PATH", path);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run sh");
        Run {
            args: vec!["(sh)".to_owned(), script.to_owned()],
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code().unwrap_or(-1),
        }
    }

    /// `squizzle build VERSION` that must succeed; returns its JSON report.
    pub fn build_ok(&self, version: &str) -> Value {
        self.run(&["build", version, "--output", "json"])
            .success()
            .json()
    }

    // ---- The local OCI image layout (db/oci) ----

    pub fn store(&self) -> PathBuf {
        self.path("db/oci")
    }

    pub fn index(&self) -> Value {
        self.read_json("db/oci/index.json")
    }

    pub fn write_index(&self, index: &Value) {
        self.write(
            "db/oci/index.json",
            serde_json::to_vec(index).expect("serialize index"),
        );
    }

    /// The digest (`sha256:...`) the tag points at in index.json.
    pub fn tag_digest(&self, tag: &str) -> String {
        let index = self.index();
        let hits: Vec<&Value> = index["manifests"]
            .as_array()
            .expect("manifests array")
            .iter()
            .filter(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .collect();
        assert_eq!(
            hits.len(),
            1,
            "tag {tag} should appear once in index.json: {index:#}"
        );
        hits[0]["digest"]
            .as_str()
            .expect("digest string")
            .to_owned()
    }

    /// Path of a blob in the store, from a `sha256:<hex>` digest.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest
            .strip_prefix("sha256:")
            .unwrap_or_else(|| panic!("not a sha256 digest: {digest}"));
        self.store().join("blobs/sha256").join(hex)
    }

    pub fn blob(&self, digest: &str) -> Vec<u8> {
        let p = self.blob_path(digest);
        fs::read(&p).unwrap_or_else(|e| panic!("read blob {}: {e}", p.display()))
    }

    pub fn blob_json(&self, digest: &str) -> Value {
        serde_json::from_slice(&self.blob(digest))
            .unwrap_or_else(|e| panic!("blob {digest} is not JSON: {e}"))
    }

    /// The OCI image manifest a tag points at.
    pub fn oci_manifest(&self, tag: &str) -> Value {
        self.blob_json(&self.tag_digest(tag))
    }

    /// The squizzle manifest (OCI config blob) of a tag.
    pub fn squizzle_manifest(&self, tag: &str) -> Value {
        let m = self.oci_manifest(tag);
        self.blob_json(m["config"]["digest"].as_str().expect("config digest"))
    }

    /// The layer (tarball) digest of a tag.
    pub fn layer_digest(&self, tag: &str) -> String {
        self.oci_manifest(tag)["layers"][0]["digest"]
            .as_str()
            .expect("layer digest")
            .to_owned()
    }

    /// Flips the bits of one byte in the middle of a blob.
    pub fn corrupt_blob(&self, digest: &str) {
        let p = self.blob_path(digest);
        let mut bytes = fs::read(&p).expect("read blob");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        fs::write(&p, bytes).expect("write blob");
    }

    /// Every file under `rel`, relative to it, sorted (hidden files included).
    pub fn files_under(&self, rel: &str) -> Vec<String> {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
            let Ok(entries) = fs::read_dir(dir) else {
                return;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(base, &p, out);
                } else {
                    out.push(
                        p.strip_prefix(base)
                            .expect("under base")
                            .to_string_lossy()
                            .into_owned(),
                    );
                }
            }
        }
        let base = self.path(rel);
        let mut out = Vec::new();
        walk(&base, &base, &mut out);
        out.sort();
        out
    }
}

/// Recursively copies a folder of regular files.
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|e| panic!("create {}: {e}", to.display()));
    for entry in fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display())) {
        let entry = entry.expect("dir entry");
        let src = entry.path();
        let dst = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&src, &dst);
        } else {
            fs::copy(&src, &dst).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
        }
    }
}

/// What one run of the binary produced.
#[derive(Debug, Clone)]
pub struct Run {
    pub args: Vec<String>,
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

impl Run {
    fn describe(&self) -> String {
        format!(
            "squizzle {}\n--- exit code: {}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        )
    }

    /// Asserts the exit code, showing the whole run when it differs.
    #[track_caller]
    pub fn code(self, expected: i32) -> Self {
        assert_eq!(
            self.code,
            expected,
            "unexpected exit code\n{}",
            self.describe()
        );
        self
    }

    #[track_caller]
    pub fn success(self) -> Self {
        self.code(0)
    }

    /// stdout and stderr together: for "the message says ..." checks that do
    /// not care which stream carries it.
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn stdout_has(self, needle: &str) -> Self {
        assert!(
            self.stdout.contains(needle),
            "stdout should contain {needle:?}\n{}",
            self.describe()
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(self, needle: &str) -> Self {
        assert!(
            self.stderr.contains(needle),
            "stderr should contain {needle:?}\n{}",
            self.describe()
        );
        self
    }

    /// The message (either stream) contains `needle`.
    #[track_caller]
    pub fn says(self, needle: &str) -> Self {
        assert!(
            self.output().contains(needle),
            "output should contain {needle:?}\n{}",
            self.describe()
        );
        self
    }

    #[track_caller]
    pub fn does_not_say(self, needle: &str) -> Self {
        assert!(
            !self.output().contains(needle),
            "output should NOT contain {needle:?}\n{}",
            self.describe()
        );
        self
    }

    /// stdout parsed as one JSON document.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("stdout is not one JSON document ({e})\n{}", self.describe())
        })
    }
}
