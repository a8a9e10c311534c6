//! Throwaway PostgreSQL servers for integration tests.
//!
//! TLS material for servers and clients is in [`crate::tls`].
//!
//! # Layout and cost
//!
//! On first use a test process creates one private root directory,
//! `squizzle-pg.<pid>.<random>` (mode 0755 so the `postgres` OS user can
//! traverse it) in `$SQUIZZLE_TEST_PG_TMPDIR`, else in `/dev/shm` if that
//! tmpfs has 2 GiB free, else in `/tmp`, and runs `initdb` once into
//! `<root>/template` (about 1-1.5 s). Every server then copies that template
//! (`cp -a`, ownership preserved; ~30 MB and ~1000 files, which is why tmpfs
//! is preferred: 0.05-0.1 s there against 0.3-1.5 s on a busy ext4) into its
//! own `<root>/srv-*/data` and is ready about 0.1 s later. Creating a
//! database on a running server takes tens of milliseconds, so the usual
//! pattern is one [`shared()`] server per test binary and one
//! [`PgServer::create_database`] per test (each database costs ~7.5 MB).
//! Tests that stop, kill or reconfigure a server start their own with
//! [`PgServer::start`].
//!
//! # Users
//!
//! `initdb` and `postgres` refuse to run as root. When the tests run as root
//! (CI containers), the data directories are chowned to the `postgres` OS user
//! (uid/gid read from `/etc/passwd` at runtime) and both programs are run as
//! that user through `setpriv --reuid --regid --clear-groups`. When the tests
//! run as an ordinary user, everything runs as that user.
//!
//! # No leftover servers
//!
//! Every `postgres` is started as
//! `setpriv ... --pdeathsig=SIGINT -- postgres ...`: the kernel sends the
//! postmaster SIGINT (PostgreSQL's "fast shutdown") as soon as the thread that
//! spawned it dies. All servers are spawned from the harness's one spawner
//! thread ([`crate::process::spawn`]), which dies exactly when the test process
//! does: on a normal exit, a panic with `panic=abort`, or SIGKILL. This matters
//! for [`shared()`], which lives in a `static` and is therefore never dropped.
//! (setpriv sets the death signal after switching user, so the credential
//! change does not clear it; checked on Debian 12's util-linux 2.38.) Per-test
//! servers are additionally stopped by `Drop` (fast shutdown, then SIGKILL
//! after a timeout), which also removes their directory. The test
//! `postgres_dies_with_the_test_process` in `tests/pg_harness.rs` checks this
//! by running the test binary as a child and watching its postmaster exit.
//! Caveat: a `Child` handle is only reaped by this process; after the test
//! process exits, the postmaster is re-parented to PID 1, and in containers
//! whose PID 1 does not reap it may linger briefly as a zombie (`<defunct>`),
//! which holds no port, memory or files.
//!
//! The shared server's directory and the template cannot be removed by a
//! destructor either. So on first use the harness also starts a small `sh`
//! "reaper" (own process group, immune to Ctrl-C) that blocks reading a pipe
//! whose only write end this process holds: when the process ends, however
//! it ends, the reaper sees EOF, waits up to 30 s for the postmasters to
//! remove their `postmaster.pid`, and deletes the root directory. As a last
//! resort each process, on first use, deletes any `squizzle-pg.<pid>.*`
//! (in the three places above) whose `<pid>` no longer exists.
//!
//! # Environment
//!
//! PostgreSQL programs are taken from `$SQUIZZLE_TEST_PG_BINDIR`, else
//! `/usr/lib/postgresql/15/bin`, else the newest `/usr/lib/postgresql/*/bin`.
//! `PG*` variables of the test environment are not passed to them.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

pub use crate::process::process_alive;
use crate::process::{self, children_of, free_port, signal, which};
use crate::tls::{self, TlsFiles};

/// The superuser every server is initialised with.
pub const ADMIN_USER: &str = "postgres";
/// Its password on servers started with `password_auth`.
pub const ADMIN_PASSWORD: &str = "squizzle-admin-pw";

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
const ROOT_PREFIX: &str = "squizzle-pg.";

/// How to configure a server. `PgOptions::default()` is a plain server with
/// `trust` authentication and no TLS.
#[derive(Clone, Debug, Default)]
pub struct PgOptions {
    /// Serve TLS with this certificate and key. `ca_pem` becomes
    /// `ssl_ca_file`, used to verify client certificates.
    pub tls: Option<TlsFiles>,
    /// With `tls`: accept only TLS connections over TCP (`hostssl` lines in
    /// pg_hba.conf and no `host` line). Without it, both are accepted.
    pub require_ssl: bool,
    /// With `tls`: authenticate TLS connections by client certificate
    /// (`cert` method: the certificate's CN must equal the role name).
    pub client_cert_auth: bool,
    /// Require `scram-sha-256` passwords for TCP connections; the superuser
    /// `postgres` gets [`ADMIN_PASSWORD`]. The Unix socket stays `trust` so
    /// the harness can always administer the server.
    pub password_auth: bool,
    /// Extra `-c name=value` settings for `postgres`.
    pub settings: Vec<(String, String)>,
}

/// One running (or stopped) PostgreSQL server listening on 127.0.0.1.
pub struct PgServer {
    dir: tempfile::TempDir,
    data: PathBuf,
    sock: PathBuf,
    log: PathBuf,
    port: u16,
    opts: PgOptions,
    child: Mutex<Option<Child>>,
}

// ---------------------------------------------------------------------------
// Process-wide environment: programs, user, root directory, template.

struct PgEnv {
    /// The cleanup process (see the module docs). We hold the write end of
    /// its stdin, which is closed only by this process's death; it is never
    /// waited for.
    _reaper: Child,
    bindir: PathBuf,
    setpriv: PathBuf,
    /// uid/gid of the `postgres` OS user when running as root.
    run_as: Option<(u32, u32)>,
    root: PathBuf,
    template: PathBuf,
}

fn pg_env() -> &'static PgEnv {
    static ENV: OnceLock<PgEnv> = OnceLock::new();
    ENV.get_or_init(init_env)
}

fn init_env() -> PgEnv {
    let bindir = find_bindir();
    let setpriv = which("setpriv").unwrap_or_else(|| {
        panic!("pg harness: `setpriv` (util-linux) is required to start PostgreSQL")
    });
    let run_as = if effective_uid() == 0 {
        Some(postgres_ids().unwrap_or_else(|| {
            panic!(
                "pg harness: running as root but there is no `postgres` user in /etc/passwd; \
                 install postgresql-15 (scripts/lib/setup.sh: ensure_postgres)"
            )
        }))
    } else {
        None
    };

    let base = base_dir();
    for dir in [base.as_path(), Path::new("/dev/shm"), Path::new("/tmp")] {
        sweep_stale_roots(dir);
    }
    let root = tempfile::Builder::new()
        .prefix(&format!("{ROOT_PREFIX}{}.", std::process::id()))
        .tempdir_in(&base)
        .unwrap_or_else(|e| {
            panic!(
                "pg harness: create root directory in {}: {e}",
                base.display()
            )
        })
        .keep();
    set_mode(&root, 0o755);
    let reaper = start_reaper(&root);

    let template = root.join("template");
    fs::create_dir(&template).expect("pg harness: create template directory");
    set_mode(&template, 0o700);
    chown_to(&template, run_as);

    let started = Instant::now();
    let mut cmd = setpriv_command(&setpriv, run_as);
    cmd.args(["--pdeathsig=SIGTERM", "--"])
        .arg(bindir.join("initdb"))
        .arg("-D")
        .arg(&template)
        .args(["-U", ADMIN_USER, "-A", "trust", "-E", "UTF8", "--locale=C"])
        .args(["--no-sync", "--no-instructions", "--wal-segsize=1"])
        .current_dir(&root);
    let out = cmd.output().expect("pg harness: run initdb");
    if !out.status.success() {
        panic!(
            "pg harness: initdb failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    eprintln!(
        "pg harness: initdb template {} in {:.2?}",
        template.display(),
        started.elapsed()
    );
    PgEnv {
        _reaper: reaper,
        bindir,
        setpriv,
        run_as,
        root,
        template,
    }
}

fn find_bindir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SQUIZZLE_TEST_PG_BINDIR") {
        return PathBuf::from(dir);
    }
    let default = PathBuf::from("/usr/lib/postgresql/15/bin");
    if default.join("postgres").exists() {
        return default;
    }
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "pg harness: PostgreSQL server binaries not found (looked in \
             /usr/lib/postgresql/*/bin; set SQUIZZLE_TEST_PG_BINDIR, or install \
             postgresql-15 with scripts/lib/setup.sh: ensure_postgres)"
        ),
    }
}

fn effective_uid() -> u32 {
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|u| u.parse().ok())
        .expect("effective uid in /proc/self/status")
}

fn postgres_ids() -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 4 && f[0] == "postgres")
            .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

/// Where the process root goes: `$SQUIZZLE_TEST_PG_TMPDIR`, else `/dev/shm`
/// when it has at least 2 GiB free and others may traverse it, else `/tmp`.
fn base_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SQUIZZLE_TEST_PG_TMPDIR") {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    let traversable =
        fs::metadata(shm).is_ok_and(|m| m.is_dir() && m.permissions().mode() & 0o001 != 0);
    if traversable && available_bytes(shm).is_some_and(|b| b >= 2 << 30) {
        shm.to_path_buf()
    } else {
        PathBuf::from("/tmp")
    }
}

/// Free bytes on the file system holding `dir`, from `df`.
fn available_bytes(dir: &Path) -> Option<u64> {
    let out = Command::new("df")
        .args(["-P", "-B1"])
        .arg(dir)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    text.lines().nth(1)?.split_whitespace().nth(3)?.parse().ok()
}

/// Starts a `sh` that blocks reading a pipe whose only write end this process
/// holds. When this process ends, however it ends, the read sees EOF; the
/// script then waits (up to 30 s) for the postmasters, which got SIGINT from
/// their death signal, to remove their `postmaster.pid`, and deletes `root`.
/// It runs in its own process group so a Ctrl-C in the terminal does not
/// kill it.
fn start_reaper(root: &Path) -> Child {
    const SCRIPT: &str = r#"
        root=$1
        read -r _ || true
        i=0
        while [ "$i" -lt 300 ]; do
            busy=
            for f in "$root"/srv-*/data/postmaster.pid; do
                [ -f "$f" ] || continue
                pid=$(head -n 1 "$f" 2>/dev/null)
                [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && busy=1
            done
            [ -z "$busy" ] && break
            sleep 0.1
            i=$((i + 1))
        done
        # Retry: a `cp` of the template may still be running when we start.
        j=0
        while [ -e "$root" ] && [ "$j" -lt 50 ]; do
            rm -rf "$root" 2>/dev/null || sleep 0.1
            j=$((j + 1))
        done
    "#;
    Command::new("sh")
        .args(["-c", SCRIPT, "squizzle-pg-reaper"])
        .arg(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("pg harness: start the cleanup process")
}

/// Removes `<dir>/squizzle-pg.<pid>.*` directories left by test processes
/// that no longer exist and whose cleanup process did not finish.
fn sweep_stale_roots(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(ROOT_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('.').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !process_alive(pid) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

pub(crate) fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("pg harness: chmod {}: {e}", path.display()));
}

pub(crate) fn chown_to(path: &Path, run_as: Option<(u32, u32)>) {
    if let Some((uid, gid)) = run_as {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("pg harness: chown {}: {e}", path.display()));
    }
}

/// `setpriv [--reuid --regid --clear-groups]` with the `PG*` environment
/// removed; append `--pdeathsig`, `--` and the program.
pub(crate) fn setpriv_command(setpriv: &Path, run_as: Option<(u32, u32)>) -> Command {
    let mut cmd = Command::new(setpriv);
    if let Some((uid, gid)) = run_as {
        cmd.arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--clear-groups");
    }
    scrub_pg_env(&mut cmd);
    cmd
}

fn scrub_pg_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("PG")) {
            cmd.env_remove(key);
        }
    }
}

/// SIGKILLs the postmaster and all its backends at once (like a power cut)
/// and reaps the postmaster.
pub(crate) fn kill_tree(child: &mut Child) {
    let pid = child.id();
    if child.try_wait().ok().flatten().is_none() {
        // Freeze the postmaster so it cannot fork while we collect children.
        signal("STOP", &[pid]);
        let mut pids = children_of(pid);
        pids.push(pid);
        signal("KILL", &pids);
    }
    let _ = child.wait();
}

/// Fast shutdown (SIGINT), then SIGKILL if it takes longer than STOP_TIMEOUT.
fn stop_child(child: &mut Child) {
    if process::stop(child, "INT", STOP_TIMEOUT) {
        return;
    }
    eprintln!("pg harness: server did not stop within {STOP_TIMEOUT:?}; killing it");
    kill_tree(child);
}

// ---------------------------------------------------------------------------
// The shared server.

/// The server shared by all tests of this test binary, started on first use
/// with default options. Never stop, kill or restart it; create a database
/// per test with [`PgServer::create_database`] instead.
pub fn shared() -> &'static PgServer {
    static SHARED: OnceLock<PgServer> = OnceLock::new();
    SHARED.get_or_init(|| PgServer::start(PgOptions::default()))
}

/// What a helper server started beside PostgreSQL needs: `setpriv`, the
/// uid/gid to run as (the `postgres` user when running as root) and this
/// process's root directory.
pub(crate) fn run_as() -> (&'static Path, Option<(u32, u32)>, &'static Path) {
    let env = pg_env();
    (&env.setpriv, env.run_as, &env.root)
}

/// This process's root directory (template and all servers; see the module
/// docs for where it lives and how it is removed).
pub fn process_root() -> &'static Path {
    &pg_env().root
}

// ---------------------------------------------------------------------------
// Starting and stopping.

enum LaunchError {
    PortInUse,
    Failed(String),
}

impl PgServer {
    /// Starts a new server (copied from the per-process template) and waits
    /// until it accepts connections. Panics with the server log's tail if it
    /// does not come up within 30 s.
    pub fn start(opts: PgOptions) -> PgServer {
        let env = pg_env();
        let started = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("srv-")
            .tempdir_in(&env.root)
            .expect("pg harness: create server directory");
        set_mode(dir.path(), 0o755);
        let data = dir.path().join("data");
        let status = Command::new("cp")
            .arg("-a")
            .arg(&env.template)
            .arg(&data)
            .status()
            .expect("pg harness: run cp");
        assert!(status.success(), "pg harness: copying the template failed");
        let copied = started.elapsed();
        let sock = dir.path().join("sock");
        fs::create_dir(&sock).expect("pg harness: create socket directory");
        set_mode(&sock, 0o755);
        chown_to(&sock, env.run_as);
        let log = dir.path().join("server.log");

        // fs::write keeps the template file's owner (postgres).
        fs::write(data.join("pg_hba.conf"), hba_conf(&opts)).expect("write pg_hba.conf");
        if let Some(files) = &opts.tls {
            for (name, pem, mode) in [
                ("server.crt", &files.cert_pem, 0o644),
                ("server.key", &files.key_pem, 0o600),
                ("root.crt", &files.ca_pem, 0o644),
            ] {
                let path = dir.path().join(name);
                tls::write_file(&path, pem, mode);
                chown_to(&path, env.run_as);
            }
        }

        let mut server = PgServer {
            port: 0,
            dir,
            data,
            sock,
            log,
            opts,
            child: Mutex::new(None),
        };
        let mut attempts = 0;
        loop {
            attempts += 1;
            server.port = free_port();
            match server.launch() {
                Ok(child) => {
                    *server.lock_child() = Some(child);
                    break;
                }
                Err(LaunchError::PortInUse) if attempts < 5 => {
                    eprintln!("pg harness: port {} was taken; retrying", server.port);
                }
                Err(LaunchError::PortInUse) => server.fail("no free port after 5 attempts"),
                Err(LaunchError::Failed(why)) => server.fail(&why),
            }
        }
        if server.opts.password_auth {
            server.query(
                "postgres",
                &format!(
                    "ALTER ROLE {} PASSWORD {}",
                    quote_ident(ADMIN_USER),
                    quote_literal(ADMIN_PASSWORD)
                ),
            );
        }
        eprintln!(
            "pg harness: server on 127.0.0.1:{} ready in {:.2?} (template copied in {:.2?}) ({})",
            server.port,
            started.elapsed(),
            copied,
            server.dir.path().display()
        );
        server
    }

    fn fail(&self, why: &str) -> ! {
        panic!(
            "pg harness: PostgreSQL on 127.0.0.1:{} failed to start: {why}\n\
             --- last lines of {} ---\n{}",
            self.port,
            self.log.display(),
            self.log_tail(40)
        )
    }

    fn lock_child(&self) -> MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn launch(&self) -> Result<Child, LaunchError> {
        let env = pg_env();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("pg harness: open server log");
        let mut cmd = setpriv_command(&env.setpriv, env.run_as);
        cmd.arg("--pdeathsig=SIGINT")
            .arg("--")
            .arg(env.bindir.join("postgres"))
            .arg("-D")
            .arg(&self.data)
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(&self.sock);
        let mut settings: Vec<(String, String)> = vec![
            ("listen_addresses".into(), "127.0.0.1".into()),
            ("fsync".into(), "off".into()),
            ("shared_buffers".into(), "32MB".into()),
        ];
        if self.opts.tls.is_some() {
            let path = |name: &str| self.dir.path().join(name).display().to_string();
            settings.extend([
                ("ssl".into(), "on".into()),
                ("ssl_cert_file".into(), path("server.crt")),
                ("ssl_key_file".into(), path("server.key")),
                ("ssl_ca_file".into(), path("root.crt")),
            ]);
        }
        settings.extend(self.opts.settings.iter().cloned());
        for (name, value) in &settings {
            cmd.arg("-c").arg(format!("{name}={value}"));
        }
        cmd.current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("pg harness: dup log"))
            .stderr(log);
        let mut child = process::spawn(cmd)
            .map_err(|e| LaunchError::Failed(format!("could not spawn setpriv/postgres: {e}")))?;

        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let log = fs::read_to_string(&self.log).unwrap_or_default();
                return Err(
                    if log.contains("Address already in use")
                        || log.contains("could not create any TCP/IP sockets")
                    {
                        LaunchError::PortInUse
                    } else {
                        LaunchError::Failed(format!("postgres exited early ({status})"))
                    },
                );
            }
            if self.ping() {
                return Ok(child);
            }
            if Instant::now() > deadline {
                kill_tree(&mut child);
                return Err(LaunchError::Failed(format!(
                    "not accepting connections after {READY_TIMEOUT:?}"
                )));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn ping(&self) -> bool {
        // postmaster.pid's 8th line says "ready" once it accepts connections.
        let ready = fs::read_to_string(self.data.join("postmaster.pid"))
            .is_ok_and(|s| s.lines().nth(7).is_some_and(|l| l.trim() == "ready"));
        ready && self.try_query("postgres", "SELECT 1").is_ok()
    }

    /// Fast shutdown (SIGINT); waits for it, SIGKILLing after 15 s. No-op if
    /// not running.
    pub fn stop(&self) {
        if let Some(mut child) = self.lock_child().take() {
            stop_child(&mut child);
        }
    }

    /// SIGKILLs the postmaster and all its backends at once, as a crash
    /// would. [`PgServer::restart`] then runs crash recovery.
    pub fn kill(&self) {
        if let Some(mut child) = self.lock_child().take() {
            kill_tree(&mut child);
        }
    }

    /// Stops the server if it runs, then starts it again on the same port
    /// with the same data.
    pub fn restart(&self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.launch() {
                Ok(child) => {
                    *self.lock_child() = Some(child);
                    return;
                }
                Err(LaunchError::PortInUse) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(100));
                }
                Err(LaunchError::PortInUse) => self.fail("port still in use after 10 s"),
                Err(LaunchError::Failed(why)) => self.fail(&why),
            }
        }
    }

    /// True while the postmaster process runs.
    pub fn is_running(&self) -> bool {
        self.lock_child()
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// The postmaster's pid, if running.
    pub fn pid(&self) -> Option<u32> {
        self.lock_child().as_ref().map(Child::id)
    }

    // -----------------------------------------------------------------------
    // Addresses.

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Directory of the Unix socket (`host=` for libpq-style clients).
    pub fn socket_dir(&self) -> &Path {
        &self.sock
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The server's own directory (data, socket, log, TLS files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the server log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Path of the CA certificate of a TLS server (for `sslrootcert=`).
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.opts
            .tls
            .as_ref()
            .map(|_| self.dir.path().join("root.crt"))
    }

    /// `postgres://user[:password]@127.0.0.1:port/db` (user and password
    /// percent-encoded).
    pub fn url(&self, db: &str, user: &str, password: Option<&str>) -> String {
        let auth = match password {
            Some(pw) => format!("{}:{}", pct(user), pct(pw)),
            None => pct(user),
        };
        format!("postgres://{auth}@127.0.0.1:{}/{}", self.port, pct(db))
    }

    /// URL for the superuser over TCP (with its password on `password_auth`
    /// servers).
    pub fn admin_url(&self, db: &str) -> String {
        let pw = self.opts.password_auth.then_some(ADMIN_PASSWORD);
        self.url(db, ADMIN_USER, pw)
    }

    /// tokio-postgres config for the superuser over the Unix socket (works
    /// whatever pg_hba.conf says about TCP).
    pub fn admin_config(&self, db: &str) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(&self.sock)
            .port(self.port)
            .user(ADMIN_USER)
            .dbname(db_name(db))
            .connect_timeout(Duration::from_secs(5));
        config
    }

    // -----------------------------------------------------------------------
    // Administration. Every `db` argument may be a database name or a URL
    // returned by this harness.

    /// Creates a database named `<prefix>_<counter>_<pid>` and returns its
    /// [`PgServer::admin_url`].
    pub fn create_database(&self, prefix: &str) -> String {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut clean: String = prefix
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        clean.truncate(40);
        let name = format!("{clean}_{n}_{}", std::process::id());
        self.query(
            "postgres",
            &format!("CREATE DATABASE {}", quote_ident(&name)),
        );
        self.admin_url(&name)
    }

    /// Creates a login role, optionally with a password and superuser.
    pub fn create_role(&self, name: &str, password: Option<&str>, superuser: bool) {
        let mut sql = format!("CREATE ROLE {} LOGIN", quote_ident(name));
        if superuser {
            sql.push_str(" SUPERUSER");
        }
        if let Some(pw) = password {
            sql.push_str(&format!(" PASSWORD {}", quote_literal(pw)));
        }
        self.query("postgres", &sql);
    }

    /// Runs `sql` (simple query protocol, so several statements are fine)
    /// as the superuser over the Unix socket; panics on error. Returns the
    /// rows of every statement, each value as text or `None` for NULL.
    pub fn query(&self, db: &str, sql: &str) -> Vec<Vec<Option<String>>> {
        self.try_query(db, sql)
            .unwrap_or_else(|e| panic!("pg harness: query on {db} failed: {e:?}\nSQL: {sql}"))
    }

    /// [`PgServer::query`] returning the error instead of panicking.
    pub fn try_query(
        &self,
        db: &str,
        sql: &str,
    ) -> Result<Vec<Vec<Option<String>>>, tokio_postgres::Error> {
        let config = self.admin_config(db);
        block_on(async move {
            let (client, conn) = config.connect(tokio_postgres::NoTls).await?;
            let conn = tokio::spawn(conn);
            let messages = client.simple_query(sql).await;
            drop(client);
            let _ = conn.await;
            Ok(messages?
                .into_iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                        (0..row.len())
                            .map(|i| row.get(i).map(str::to_owned))
                            .collect(),
                    ),
                    _ => None,
                })
                .collect())
        })
    }

    /// Runs `psql -X -q -A -t -v ON_ERROR_STOP=1` as the superuser over the
    /// Unix socket, with `sql` on stdin.
    pub fn psql(&self, db: &str, sql: &str) -> Output {
        let mut cmd = self.client_command("psql");
        cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", "-"])
            .arg("-d")
            .arg(db_name(db))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("pg harness: run psql");
        child
            .stdin
            .take()
            .expect("psql stdin")
            .write_all(sql.as_bytes())
            .expect("pg harness: write to psql");
        child.wait_with_output().expect("pg harness: wait for psql")
    }

    /// `pg_dump --schema-only --no-owner` of `db`, without the
    /// `\restrict`/`\unrestrict` lines (so dumps are comparable). Panics if
    /// pg_dump fails.
    pub fn pg_dump_schema(&self, db: &str) -> String {
        let out = self
            .client_command("pg_dump")
            .args(["--schema-only", "--no-owner", "--restrict-key=squizzletest"])
            .arg(db_name(db))
            .output()
            .expect("pg harness: run pg_dump");
        if !out.status.success() {
            panic!(
                "pg harness: pg_dump {db} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8(out.stdout)
            .expect("pg_dump output is UTF-8")
            .lines()
            .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    fn client_command(&self, program: &str) -> Command {
        let mut cmd = Command::new(pg_env().bindir.join(program));
        scrub_pg_env(&mut cmd);
        cmd.arg("-h")
            .arg(&self.sock)
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-U")
            .arg(ADMIN_USER);
        cmd
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
        // `dir` (a TempDir) is removed after this.
    }
}

fn hba_conf(opts: &PgOptions) -> String {
    let base = if opts.password_auth {
        "scram-sha-256"
    } else {
        "trust"
    };
    let mut hba =
        String::from("# written by the squizzle test harness (pg)\nlocal all all trust\n");
    if opts.tls.is_some() && (opts.require_ssl || opts.client_cert_auth) {
        let ssl_method = if opts.client_cert_auth { "cert" } else { base };
        hba.push_str(&format!("hostssl all all 127.0.0.1/32 {ssl_method}\n"));
        if !opts.require_ssl {
            hba.push_str(&format!("hostnossl all all 127.0.0.1/32 {base}\n"));
        }
    } else {
        hba.push_str(&format!("host all all 127.0.0.1/32 {base}\n"));
    }
    hba
}

/// Runs a future on a private current-thread runtime.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("pg harness: tokio runtime")
        .block_on(future)
}

/// The database name in `db`, which is a name or a `postgres://` URL.
pub fn db_name(db: &str) -> &str {
    match db
        .strip_prefix("postgres://")
        .or_else(|| db.strip_prefix("postgresql://"))
    {
        Some(rest) => {
            let path = rest.split_once('/').map_or("", |(_, p)| p);
            path.split('?').next().unwrap_or("")
        }
        None => db,
    }
}

/// `"name"` with embedded quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'` with embedded quotes doubled.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
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
