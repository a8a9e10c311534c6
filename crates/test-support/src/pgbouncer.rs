//! A real PgBouncer (the Debian package) in front of a harness PostgreSQL,
//! on a free loopback port, in transaction or session pooling mode. Every
//! database of the server is reachable through it under its own name, as
//! the admin user without a password. Stopped (SIGINT, then SIGKILL) when
//! dropped, and with the test process.

use std::fs;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use crate::pg::{self, ADMIN_USER, PgServer};
use crate::process;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    Transaction,
    Session,
}

impl PoolMode {
    fn name(self) -> &'static str {
        match self {
            PoolMode::Transaction => "transaction",
            PoolMode::Session => "session",
        }
    }
}

pub struct PgBouncer {
    port: u16,
    dir: tempfile::TempDir,
    child: Mutex<Option<Child>>,
}

fn find_pgbouncer() -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"] {
        let p = PathBuf::from(dir).join("pgbouncer");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "pgbouncer harness: no `pgbouncer` program; install the Debian package (scripts/lib/setup.sh: ensure_pgbouncer)"
    )
}

impl PgBouncer {
    /// Starts PgBouncer for `server` with `pool_size` server connections per
    /// database and user, and waits until it accepts connections.
    pub fn start(server: &PgServer, mode: PoolMode, pool_size: u32) -> PgBouncer {
        let program = find_pgbouncer();
        let (setpriv, run_as, root) = pg::run_as();
        let dir = tempfile::Builder::new()
            .prefix("bouncer-")
            .tempdir_in(root)
            .expect("pgbouncer harness: create directory");
        pg::set_mode(dir.path(), 0o755);
        // PgBouncer writes its log here, as the user it runs as.
        pg::chown_to(dir.path(), run_as);
        let auth = dir.path().join("users.txt");
        fs::write(&auth, format!("\"{ADMIN_USER}\" \"\"\n")).expect("write auth file");
        pg::chown_to(&auth, run_as);
        let log = dir.path().join("pgbouncer.log");
        for attempt in 1..=5 {
            let port = process::free_port();
            let ini = dir.path().join("pgbouncer.ini");
            fs::write(
                &ini,
                format!(
                    "[databases]\n* = host=127.0.0.1 port={pg}\n\n[pgbouncer]\n\
                     listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                     auth_type = trust\nauth_file = {auth}\npool_mode = {mode}\n\
                     default_pool_size = {pool_size}\nmax_client_conn = 500\n\
                     ignore_startup_parameters = extra_float_digits,options\n\
                     logfile = {log}\n",
                    pg = server.port(),
                    auth = auth.display(),
                    mode = mode.name(),
                    log = log.display(),
                ),
            )
            .expect("write pgbouncer.ini");
            pg::chown_to(&ini, run_as);
            let mut cmd = pg::setpriv_command(setpriv, run_as);
            cmd.arg("--pdeathsig=SIGINT")
                .arg("--")
                .arg(&program)
                .arg(&ini)
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(
                    fs::File::create(dir.path().join("stderr.txt"))
                        .expect("pgbouncer harness: create stderr file"),
                );
            let mut child = process::spawn(cmd).expect("pgbouncer harness: spawn");
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    let text = fs::read_to_string(&log).unwrap_or_default()
                        + &fs::read_to_string(dir.path().join("stderr.txt")).unwrap_or_default();
                    if text.contains("Address already in use") && attempt < 5 {
                        break;
                    }
                    panic!("pgbouncer harness: pgbouncer exited ({status}):\n{text}");
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    eprintln!(
                        "pgbouncer harness: {} pooling on 127.0.0.1:{port} (pool size {pool_size}) in front of 127.0.0.1:{}",
                        mode.name(),
                        server.port()
                    );
                    return PgBouncer {
                        port,
                        dir,
                        child: Mutex::new(Some(child)),
                    };
                }
                if Instant::now() > deadline {
                    pg::kill_tree(&mut child);
                    panic!(
                        "pgbouncer harness: not listening after 15 s:\n{}",
                        fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("pgbouncer harness: no free port after 5 attempts")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://` URL of database `db` (a name, or a URL of the server
    /// whose last path segment is the name) through this pooler.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{ADMIN_USER}@127.0.0.1:{}/{}?sslmode=disable",
            self.port,
            pg::db_name(db)
        )
    }

    /// The pooler's own log.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("pgbouncer.log")).unwrap_or_default()
    }

    pub fn stop(&self) {
        let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut child) = guard.take()
            && !process::stop(&mut child, "INT", Duration::from_secs(5))
        {
            pg::kill_tree(&mut child);
        }
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        self.stop();
    }
}
