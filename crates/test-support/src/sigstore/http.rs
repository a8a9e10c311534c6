//! A loopback HTTP server (tiny_http) running one handler on its own thread.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

/// One request as the handler sees it.
pub struct Req {
    pub method: String,
    /// Path and query.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn path(&self) -> &str {
        self.url.split('?').next().unwrap_or("")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn query(&self, key: &str) -> Option<String> {
        let q = self.url.split_once('?')?.1;
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == key).then(|| v.to_string())
        })
    }
}

pub struct Resp {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            body: serde_json::to_vec(value).unwrap(),
        }
    }

    pub fn text(status: u16, text: impl Into<String>) -> Self {
        Self {
            status,
            content_type: "text/plain",
            body: text.into().into_bytes(),
        }
    }

    /// A JSON error body in the shape Fulcio and Rekor use.
    pub fn error(status: u16, message: impl std::fmt::Display) -> Self {
        Self::json(
            status,
            &serde_json::json!({ "code": status, "message": message.to_string() }),
        )
    }
}

pub type Handler = dyn Fn(&Req) -> Resp + Send + Sync + 'static;

/// Serves until dropped.
pub struct HttpServer {
    server: Arc<tiny_http::Server>,
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    pub fn start(handler: Box<Handler>) -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1:0"));
        let addr = server.server_addr().to_ip().expect("an IP listener");
        let srv = Arc::clone(&server);
        let thread = std::thread::spawn(move || {
            for mut request in srv.incoming_requests() {
                let mut body = Vec::new();
                let _ = request.as_reader().read_to_end(&mut body);
                let req = Req {
                    method: request.method().as_str().to_string(),
                    url: request.url().to_string(),
                    headers: request
                        .headers()
                        .iter()
                        .map(|h| (h.field.to_string(), h.value.to_string()))
                        .collect(),
                    body,
                };
                let resp = handler(&req);
                let header = tiny_http::Header::from_bytes(
                    &b"Content-Type"[..],
                    resp.content_type.as_bytes(),
                )
                .unwrap();
                let _ = request.respond(
                    tiny_http::Response::from_data(resp.body)
                        .with_status_code(resp.status)
                        .with_header(header),
                );
            }
        });
        Self {
            server,
            addr,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
