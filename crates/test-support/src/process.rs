//! Child processes of the harness: the one spawner every long-running server
//! (PostgreSQL, docker-registry) is started from, and the small process
//! helpers the harnesses share.
//!
//! # Why one spawner thread
//!
//! Servers are started as `setpriv ... --pdeathsig=SIG -- program ...`: the
//! kernel sends `SIG` to the server as soon as the *thread* that spawned it
//! dies. If a test thread spawned it, the server would be signalled when that
//! test ends, even while a `static` (such as the shared PostgreSQL server)
//! still needs it. So every server is spawned from one dedicated, never-ending
//! "harness-spawner" thread, which dies exactly when the test process does: on
//! a normal exit, a panic with `panic=abort`, or SIGKILL.
//!
//! Nothing here may wait for a server to be ready or decide how it is stopped:
//! that belongs to each harness (`pg`, `registry`).

use std::fs;
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// Spawns `cmd` on the process-lifetime "harness-spawner" thread, so that a
/// `--pdeathsig` set by setpriv fires only when the whole test process ends.
pub fn spawn(cmd: Command) -> io::Result<Child> {
    type Job = (Command, mpsc::Sender<io::Result<Child>>);
    static SPAWNER: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    let tx = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("harness-spawner".into())
            .spawn(move || {
                // The sender lives in a static, so this loop never ends.
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("harness: start the spawner thread");
        tx
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    tx.send((cmd, reply_tx))
        .expect("harness-spawner thread is gone");
    reply_rx.recv().expect("harness-spawner thread is gone")
}

/// Sends `sig` (a name such as `INT`, `TERM`, `STOP`, `KILL`) to `pids`
/// with `kill(1)`, ignoring processes that are already gone.
pub fn signal(sig: &str, pids: &[u32]) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .args(pids.iter().map(u32::to_string))
        .stderr(Stdio::null())
        .status();
}

/// Sends `sig` to `child` and waits up to `timeout` for it to exit (reaping
/// it). Returns false if it is still running: the caller decides how to kill it.
pub fn stop(child: &mut Child, sig: &str, timeout: Duration) -> bool {
    if child.try_wait().ok().flatten().is_some() {
        return true;
    }
    signal(sig, &[child.id()]);
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    false
}

/// True if `pid` exists and is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Direct children of `pid` (from /proc).
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

/// `program` on `PATH`, else in `/usr/bin` or `/bin`.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/bin")])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// A TCP port on 127.0.0.1 that was free a moment ago. A server started on it
/// can still lose a race with another process; the harnesses retry on "address
/// in use".
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("harness: bind 127.0.0.1:0")
        .port()
}
