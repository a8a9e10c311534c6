//! A fault-injecting TCP proxy in front of a test registry.
//!
//! [`FaultProxy::start`] listens on `127.0.0.1:0` and forwards every
//! connection to an upstream (the harness registry), one thread per
//! connection (std::net). Tests arm [`Rule`]s (thread-safe, from any thread);
//! each incoming request is matched against the armed rules in order and the
//! first match with uses left decides what happens to it:
//!
//! - [`Fault::Status`]: answer a raw HTTP status (500/503/429, optionally with
//!   `Retry-After`) without contacting the upstream;
//! - [`Fault::DropAfter`]: forward the request, relay the first N bytes of the
//!   response (head included), then close both sockets: a connection cut
//!   mid-blob;
//! - [`Fault::Stall`]: wait before forwarding;
//! - no match: pass through.
//!
//! A rule applies `times` times (per request, counted across connections) or
//! forever, optionally only to requests whose method and path match.
//!
//! # Keep-alive
//!
//! HTTP clients (reqwest/hyper) reuse connections, but a proxy that only
//! copies bytes cannot tell where one request ends and the next begins
//! without parsing bodies. Instead, the proxy reads each request head, drops
//! its `Connection`/`Keep-Alive` headers and adds `Connection: close`: the
//! registry answers with `Connection: close` and closes after the response,
//! so the client opens a new connection for its next request and every
//! connection carries exactly one request. That is what makes "the next K
//! requests" countable. The cost (a TCP connect per request) is irrelevant
//! on loopback.
//!
//! Every request seen is recorded ([`FaultProxy::log`]) with what was done
//! to it, so tests can check that the faults really happened.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// What to do to a matching request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status without forwarding; `retry_after` in seconds.
    Status { code: u16, retry_after: Option<u32> },
    /// Forward, then cut both connections after this many response bytes.
    DropAfter { bytes: usize },
    /// Wait this long, then forward.
    Stall(Duration),
}

impl Fault {
    pub fn status(code: u16) -> Self {
        Fault::Status {
            code,
            retry_after: None,
        }
    }

    /// 429 Too Many Requests with `Retry-After: 1`.
    pub fn too_many_requests() -> Self {
        Fault::Status {
            code: 429,
            retry_after: Some(1),
        }
    }
}

/// A fault, how many requests it applies to, and which ones.
#[derive(Clone, Debug)]
pub struct Rule {
    pub fault: Fault,
    /// `None`: every matching request, forever.
    pub remaining: Option<usize>,
    /// Only requests with this method (e.g. `GET`).
    pub method: Option<String>,
    /// Only requests whose path contains this (e.g. `/blobs/`).
    pub path_contains: Option<String>,
}

impl Rule {
    /// `fault` for the next `times` matching requests.
    pub fn times(fault: Fault, times: usize) -> Self {
        Self {
            fault,
            remaining: Some(times),
            method: None,
            path_contains: None,
        }
    }

    /// `fault` for every matching request from now on.
    pub fn forever(fault: Fault) -> Self {
        Self {
            fault,
            remaining: None,
            method: None,
            path_contains: None,
        }
    }

    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_owned());
        self
    }

    pub fn path(mut self, contains: &str) -> Self {
        self.path_contains = Some(contains.to_owned());
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.remaining != Some(0)
            && self.method.as_deref().is_none_or(|m| m == method)
            && self
                .path_contains
                .as_deref()
                .is_none_or(|p| path.contains(p))
    }
}

/// One request the proxy saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// `None`: passed through untouched.
    pub fault: Option<Fault>,
}

#[derive(Default)]
struct Shared {
    rules: Vec<Rule>,
    log: Vec<Seen>,
}

pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts forwarding `127.0.0.1:<free port>` to `upstream`.
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("fault proxy: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fault proxy: local addr");
        let shared = Arc::new(Mutex::new(Shared::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let shared = shared.clone();
            let stop = stop.clone();
            thread::Builder::new()
                .name("fault-proxy-accept".into())
                .spawn(move || {
                    for conn in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(client) = conn else { continue };
                        let shared = shared.clone();
                        let _ = thread::Builder::new()
                            .name("fault-proxy-conn".into())
                            .spawn(move || {
                                let _ = serve(client, upstream, &shared);
                            });
                    }
                })
                .expect("fault proxy: spawn acceptor")
        };
        FaultProxy {
            addr,
            shared,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// `127.0.0.1:<port>`, to use as the registry host.
    pub fn url(&self) -> String {
        self.addr.to_string()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Arms a rule (after those already armed).
    pub fn arm(&self, rule: Rule) {
        self.lock().rules.push(rule);
    }

    /// Disarms every rule: pass everything through again.
    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// Every request seen so far, in order of arrival.
    pub fn log(&self) -> Vec<Seen> {
        self.lock().log.clone()
    }

    /// How many requests got `fault`.
    pub fn count(&self, fault: &Fault) -> usize {
        self.lock()
            .log
            .iter()
            .filter(|s| s.fault.as_ref() == Some(fault))
            .count()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

/// The request head: `(method, path, rewritten head bytes)` and whatever
/// part of the body arrived with it.
struct Head {
    method: String,
    path: String,
    content_length: Option<usize>,
    rewritten: Vec<u8>,
    extra: Vec<u8>,
}

const MAX_HEAD: usize = 64 * 1024;

fn read_head(client: &mut TcpStream) -> io::Result<Option<Head>> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::other("request head too large"));
        }
        let n = client.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let text = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut rewritten = format!("{request_line}\r\n");
    let mut content_length = None;
    for line in lines.filter(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap_or_default().trim();
        if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("keep-alive") {
            continue;
        }
        if name.eq_ignore_ascii_case("content-length") {
            content_length = line
                .split_once(':')
                .and_then(|(_, v)| v.trim().parse().ok());
        }
        rewritten.push_str(line);
        rewritten.push_str("\r\n");
    }
    rewritten.push_str("Connection: close\r\n\r\n");
    Ok(Some(Head {
        method,
        path,
        content_length,
        rewritten: rewritten.into_bytes(),
        extra: buf[end..].to_vec(),
    }))
}

fn decide(shared: &Mutex<Shared>, head: &Head) -> Option<Fault> {
    let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
    let fault = s
        .rules
        .iter_mut()
        .find(|r| r.matches(&head.method, &head.path))
        .map(|r| {
            if let Some(n) = r.remaining.as_mut() {
                *n -= 1;
            }
            r.fault.clone()
        });
    s.log.push(Seen {
        method: head.method.clone(),
        path: head.path.clone(),
        fault: fault.clone(),
    });
    fault
}

fn reason(code: u16) -> &'static str {
    match code {
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Injected",
    }
}

fn serve(mut client: TcpStream, upstream: SocketAddr, shared: &Mutex<Shared>) -> io::Result<()> {
    let _ = client.set_nodelay(true);
    let Some(head) = read_head(&mut client)? else {
        return Ok(());
    };
    let mut limit = None;
    match decide(shared, &head) {
        Some(Fault::Status { code, retry_after }) => {
            // Read the body first: closing with unread bytes would reset the
            // connection and the client might never see the status.
            if let Some(len) = head.content_length {
                let left = len.saturating_sub(head.extra.len()) as u64;
                let _ = client.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = io::copy(&mut Read::take(&client, left), &mut io::sink());
            }
            let mut resp = format!(
                "HTTP/1.1 {code} {}\r\nContent-Type: text/plain\r\nContent-Length: 8\r\nConnection: close\r\n",
                reason(code)
            );
            if let Some(s) = retry_after {
                resp.push_str(&format!("Retry-After: {s}\r\n"));
            }
            resp.push_str("\r\ninjected");
            client.write_all(resp.as_bytes())?;
            client.flush()?;
            let _ = client.shutdown(Shutdown::Write);
            // Drain whatever else arrives until the client closes.
            let _ = client.set_read_timeout(Some(Duration::from_millis(500)));
            let _ = io::copy(&mut client, &mut io::sink());
            return Ok(());
        }
        Some(Fault::Stall(d)) => thread::sleep(d),
        Some(Fault::DropAfter { bytes }) => limit = Some(bytes),
        None => {}
    }
    let mut server = TcpStream::connect(upstream)?;
    let _ = server.set_nodelay(true);
    server.write_all(&head.rewritten)?;
    server.write_all(&head.extra)?;
    // Request body (if any) in the background; one request per connection.
    let up = {
        let mut from = client.try_clone()?;
        let mut to = server.try_clone()?;
        thread::spawn(move || {
            let _ = io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Write);
        })
    };
    let mut buf = [0u8; 64 * 1024];
    let mut relayed = 0usize;
    loop {
        let want = match limit {
            Some(l) if relayed >= l => break,
            Some(l) => buf.len().min(l - relayed),
            None => buf.len(),
        };
        let n = match server.read(&mut buf[..want]) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if client.write_all(&buf[..n]).is_err() {
            break;
        }
        relayed += n;
    }
    if limit.is_some() {
        // The cut: both sides lose their connection.
        let _ = server.shutdown(Shutdown::Both);
        let _ = client.shutdown(Shutdown::Both);
    } else {
        // The response is complete (the registry closed after it, as asked):
        // closing both directions also ends the request-body thread.
        let _ = client.shutdown(Shutdown::Both);
        let _ = server.shutdown(Shutdown::Both);
    }
    let _ = up.join();
    Ok(())
}
