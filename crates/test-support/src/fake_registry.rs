//! A scripted fake OCI registry for hostile-answer tests.
//!
//! [`FakeRegistry::start`] listens on a loopback address (`127.0.0.1`, or
//! another `127.x.y.z` to play a second host), answers every request with
//! whatever the test's handler returns (HTTP/1.1, one request per
//! connection, `Connection: close`), and records every request it saw. A
//! response body can be real bytes or a generated filler of any length,
//! written in 64 KiB pieces so a test can see how much the client read
//! ([`FakeRegistry::body_bytes_sent`]). [`Release`] holds the bytes of a
//! release built by the real binary and serves them as the `/v2/` API does.
//!
//! Threads end when the registry is dropped.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// One request as received.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

pub enum Body {
    Bytes(Vec<u8>),
    /// `len` bytes of `byte`, generated while sending.
    Filler {
        len: u64,
        byte: u8,
    },
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Response {
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Body::Bytes(Vec::new()),
        }
    }

    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }

    pub fn body(mut self, b: impl Into<Vec<u8>>) -> Self {
        self.body = Body::Bytes(b.into());
        self
    }

    pub fn filler(mut self, len: u64, byte: u8) -> Self {
        self.body = Body::Filler { len, byte };
        self
    }

    /// `404` with a distribution error envelope.
    pub fn not_found(code: &str) -> Self {
        Self::new(404)
            .header("Content-Type", "application/json")
            .body(format!(
                r#"{{"errors":[{{"code":"{code}","message":"not found","detail":{{}}}}]}}"#
            ))
    }

    /// A manifest answer: content type and `Docker-Content-Digest` of `bytes`.
    pub fn manifest(media_type: &str, bytes: &[u8]) -> Self {
        Self::new(200)
            .header("Content-Type", media_type)
            .header("Docker-Content-Digest", &sha256_digest(bytes))
            .body(bytes.to_vec())
    }

    pub fn blob(bytes: &[u8]) -> Self {
        Self::new(200)
            .header("Content-Type", "application/octet-stream")
            .body(bytes.to_vec())
    }
}

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

pub struct FakeRegistry {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeRegistry {
    /// Listens on `ip:0` (a loopback address) and answers with `handler`.
    pub fn start(
        ip: &str,
        handler: impl Fn(&Request) -> Response + Send + Sync + 'static,
    ) -> FakeRegistry {
        let listener = TcpListener::bind((ip, 0)).expect("fake registry: bind");
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let thread = {
            let (requests, sent, stop) = (requests.clone(), sent.clone(), stop.clone());
            thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (requests, sent, handler) =
                        (requests.clone(), sent.clone(), handler.clone());
                    thread::spawn(move || serve(conn, &*handler, &requests, &sent));
                }
            })
        };
        FakeRegistry {
            addr,
            requests,
            sent,
            stop,
            thread: Some(thread),
        }
    }

    /// `ip:port`, as a registry URL's host part.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// Body bytes written to clients so far (what they accepted).
    pub fn body_bytes_sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(conn: TcpStream, handler: &Handler, log: &Mutex<Vec<Request>>, sent: &AtomicU64) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("").to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let mut req = Request {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    let mut w = conn;
    if req
        .header("Expect")
        .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    {
        let _ = w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    if let Some(len) = req
        .header("Content-Length")
        .and_then(|l| l.parse::<u64>().ok())
    {
        let _ = (&mut reader).take(len).read_to_end(&mut req.body);
    }
    log.lock().unwrap().push(req.clone());
    let resp = handler(&req);
    let len = match &resp.body {
        Body::Bytes(b) => b.len() as u64,
        Body::Filler { len, .. } => *len,
    };
    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {len}\r\nConnection: close\r\n\r\n"
    ));
    if w.write_all(head.as_bytes()).is_err() || req.method == "HEAD" {
        return;
    }
    match resp.body {
        Body::Bytes(b) => {
            for chunk in b.chunks(64 * 1024) {
                if w.write_all(chunk).is_err() {
                    return;
                }
                sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            }
        }
        Body::Filler { len, byte } => {
            let chunk = vec![byte; 64 * 1024];
            let mut left = len;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                if w.write_all(&chunk[..n]).is_err() {
                    return;
                }
                sent.fetch_add(n as u64, Ordering::SeqCst);
                left -= n as u64;
            }
        }
    }
    let _ = w.flush();
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Status",
    }
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// The bytes of one release: its OCI manifest and every blob by digest.
#[derive(Clone, Debug, Default)]
pub struct Release {
    pub manifest: Vec<u8>,
    pub blobs: HashMap<String, Vec<u8>>,
}

impl Release {
    /// The manifest's digest.
    pub fn digest(&self) -> String {
        sha256_digest(&self.manifest)
    }

    pub fn manifest_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.manifest).unwrap()
    }

    pub fn layer_digest(&self) -> String {
        self.manifest_json()["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn config_digest(&self) -> String {
        self.manifest_json()["config"]["digest"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Answers the pull side of the `/v2/` API for `repo`, serving this
    /// release under `tag` (and by digest); `None` for other paths.
    pub fn answer(&self, repo: &str, tag: &str, req: &Request) -> Option<Response> {
        let path = req.path();
        if path == "/v2/" || path == "/v2" {
            return Some(
                Response::new(200)
                    .header("Content-Type", "application/json")
                    .body("{}"),
            );
        }
        let rest = path.strip_prefix(&format!("/v2/{repo}/"))?;
        if let Some(r) = rest.strip_prefix("manifests/") {
            return Some(if r == tag || r == self.digest() {
                Response::manifest(OCI_MANIFEST, &self.manifest)
            } else {
                Response::not_found("MANIFEST_UNKNOWN")
            });
        }
        if let Some(d) = rest.strip_prefix("blobs/") {
            return Some(match self.blobs.get(d) {
                Some(b) => Response::blob(b),
                None => Response::not_found("BLOB_UNKNOWN"),
            });
        }
        if rest == "tags/list" {
            return Some(
                Response::new(200)
                    .header("Content-Type", "application/json")
                    .body(format!(r#"{{"name":"{repo}","tags":["{tag}"]}}"#)),
            );
        }
        None
    }
}
