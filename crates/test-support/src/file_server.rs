//! A static file server on 127.0.0.1 (tiny_http): `GET /NAME` answers the
//! file NAME of one folder, anything else 404. It stands in for a release
//! page (GitHub release downloads) in tests/install.rs. The folder is read on
//! every request, so a test may change a file between two downloads.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

pub struct FileServer {
    server: Arc<tiny_http::Server>,
    port: u16,
    thread: Option<JoinHandle<()>>,
}

impl FileServer {
    /// Serves `root` until dropped.
    pub fn start(root: &Path) -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1:0"));
        let port = server.server_addr().to_ip().expect("an IP listener").port();
        let root = root.to_path_buf();
        let s = server.clone();
        let thread = std::thread::spawn(move || {
            for req in s.incoming_requests() {
                let body = file_for(&root, req.url()).and_then(|f| std::fs::read(f).ok());
                let _ = match (req.method(), body) {
                    (tiny_http::Method::Get, Some(body)) => {
                        req.respond(tiny_http::Response::from_data(body))
                    }
                    _ => req.respond(
                        tiny_http::Response::from_string("not found").with_status_code(404),
                    ),
                };
            }
        });
        FileServer {
            server,
            port,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Only plain names in the folder: no sub-folders, no `..`.
fn file_for(root: &Path, url: &str) -> Option<PathBuf> {
    url.strip_prefix('/')
        .filter(|n| !n.is_empty() && !n.contains('/') && !n.contains(".."))
        .map(|n| root.join(n))
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
