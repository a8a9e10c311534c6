//! A Rekor v1-compatible transparency log: `hashedrekord` and `dsse` 0.0.1
//! entries, canonicalized as real Rekor stores them, in an RFC 6962 tree,
//! answered with signed entry timestamps and checkpointed inclusion proofs.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use super::der;
use super::http::{HttpServer, Req, Resp};
use super::keys::{self, EcKey};
use super::merkle::Tree;
use super::oidc;

/// Checkpoint signer name (the note's key name).
pub const NOTE_NAME: &str = "loopback-rekor";

/// One logged entry.
#[derive(Clone, Debug)]
pub struct LogEntry {
    pub uuid: String,
    pub index: u64,
    /// The canonical body, as hashed into the tree.
    pub body: Vec<u8>,
    pub integrated_time: i64,
}

#[derive(Default)]
pub struct RekorState {
    pub entries: Vec<LogEntry>,
    pub tree: Tree,
    /// Added to the clock when stamping `integratedTime`.
    pub time_offset_secs: i64,
}

pub struct Rekor {
    server: HttpServer,
    pub key: Arc<EcKey>,
    pub state: Arc<Mutex<RekorState>>,
    pub tree_id: u64,
}

struct Ctx {
    key: Arc<EcKey>,
    state: Arc<Mutex<RekorState>>,
    tree_id: u64,
}

impl Rekor {
    pub fn start() -> Self {
        let key = Arc::new(EcKey::generate());
        let state: Arc<Mutex<RekorState>> = Arc::default();
        let tree_id = u64::from_be_bytes(keys::random::<8>()) >> 1;
        let ctx = Ctx {
            key: Arc::clone(&key),
            state: Arc::clone(&state),
            tree_id,
        };
        let server = HttpServer::start(Box::new(move |req| handle(&ctx, req)));
        Self {
            server,
            key,
            state,
            tree_id,
        }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Hex SHA-256 of the log's DER SPKI, as in `logID`.
    pub fn log_id_hex(&self) -> String {
        hex::encode(self.key.key_id())
    }
}

/// RFC 8785-style canonical JSON: keys sorted, no whitespace. (Numbers here
/// are integers and strings ASCII, where serde_json's output agrees.)
pub fn canonical_json(v: &Value) -> Vec<u8> {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out.into_bytes()
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).unwrap());
                out.push(':');
                write_canonical(&map[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&serde_json::to_string(other).unwrap()),
    }
}

type Failure = (u16, String);

fn bad(msg: impl Into<String>) -> Failure {
    (400, msg.into())
}

/// Decode base64 PEM text (certificate or public key), returning the
/// verifying point and the PEM re-encoded canonically (LF, 64 columns).
fn canonical_verifier(b64_pem: &str) -> Result<(Vec<u8>, String), Failure> {
    let pem = B64
        .decode(b64_pem)
        .map_err(|e| bad(format!("verifier base64: {e}")))?;
    let pem = String::from_utf8(pem).map_err(|e| bad(format!("verifier PEM: {e}")))?;
    if let Ok(cert) = der::from_pem(&pem, "CERTIFICATE") {
        let spki = der::cert_spki(&cert).map_err(bad)?;
        let point = keys::point_from_spki(&spki).map_err(bad)?;
        Ok((point, der::pem("CERTIFICATE", &cert)))
    } else {
        let spki = der::from_pem(&pem, "PUBLIC KEY").map_err(bad)?;
        let point = keys::point_from_spki(&spki).map_err(bad)?;
        Ok((point, der::pem("PUBLIC KEY", &spki)))
    }
}

/// Validate a proposed entry and return the body Rekor would store.
pub fn canonicalize(proposed: &Value) -> Result<Value, Failure> {
    let kind = proposed["kind"].as_str().unwrap_or_default();
    let version = proposed["apiVersion"].as_str().unwrap_or_default();
    match (kind, version) {
        ("hashedrekord", "0.0.1") => {
            let spec = &proposed["spec"];
            let alg = spec["data"]["hash"]["algorithm"]
                .as_str()
                .unwrap_or_default();
            if alg != "sha256" {
                return Err(bad(format!("unsupported hash algorithm {alg:?}")));
            }
            let digest_hex = spec["data"]["hash"]["value"]
                .as_str()
                .ok_or_else(|| bad("missing spec.data.hash.value"))?
                .to_ascii_lowercase();
            let digest = hex::decode(&digest_hex).map_err(|e| bad(format!("hash value: {e}")))?;
            if digest.len() != 32 {
                return Err(bad("hash value is not 32 bytes"));
            }
            let sig_b64 = spec["signature"]["content"]
                .as_str()
                .ok_or_else(|| bad("missing spec.signature.content"))?;
            let sig = B64
                .decode(sig_b64)
                .map_err(|e| bad(format!("signature: {e}")))?;
            let (point, pem) = canonical_verifier(
                spec["signature"]["publicKey"]["content"]
                    .as_str()
                    .ok_or_else(|| bad("missing spec.signature.publicKey.content"))?,
            )?;
            if !keys::verify_digest_asn1(&point, &digest, &sig) {
                return Err(bad("signature does not verify against the digest"));
            }
            Ok(json!({
                "apiVersion": "0.0.1",
                "kind": "hashedrekord",
                "spec": {
                    "data": { "hash": { "algorithm": "sha256", "value": digest_hex } },
                    "signature": {
                        "content": B64.encode(&sig),
                        "publicKey": { "content": B64.encode(pem) },
                    },
                },
            }))
        }
        ("dsse", "0.0.1") => {
            let content = &proposed["spec"]["proposedContent"];
            let envelope_text = content["envelope"]
                .as_str()
                .ok_or_else(|| bad("missing spec.proposedContent.envelope"))?;
            // envelopeHash is over the envelope text exactly as proposed.
            let envelope: Value =
                serde_json::from_str(envelope_text).map_err(|e| bad(format!("envelope: {e}")))?;
            let payload = B64
                .decode(envelope["payload"].as_str().unwrap_or_default())
                .map_err(|e| bad(format!("envelope payload: {e}")))?;
            let payload_type = envelope["payloadType"].as_str().unwrap_or_default();
            let pae = [
                format!(
                    "DSSEv1 {} {} {} ",
                    payload_type.len(),
                    payload_type,
                    payload.len()
                )
                .into_bytes(),
                payload.clone(),
            ]
            .concat();
            let verifiers = content["verifiers"]
                .as_array()
                .ok_or_else(|| bad("missing spec.proposedContent.verifiers"))?
                .iter()
                .map(|v| canonical_verifier(v.as_str().unwrap_or_default()))
                .collect::<Result<Vec<_>, _>>()?;
            let sigs = envelope["signatures"]
                .as_array()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| bad("envelope has no signatures"))?;
            let mut signatures = Vec::new();
            // As Rekor: every signature must verify with some verifier; the
            // body keeps the envelope's `sig` strings, sorted, each with its
            // verifier's canonical PEM.
            for s in sigs {
                let sig_text = s["sig"].as_str().unwrap_or_default();
                let sig = B64
                    .decode(sig_text)
                    .map_err(|e| bad(format!("envelope signature: {e}")))?;
                let (_, pem) = verifiers
                    .iter()
                    .find(|(point, _)| keys::verify_asn1(point, &pae, &sig))
                    .ok_or_else(|| bad("an envelope signature verifies with no verifier"))?;
                signatures.push(json!({ "signature": sig_text, "verifier": B64.encode(pem) }));
            }
            signatures.sort_by(|a, b| a["signature"].as_str().cmp(&b["signature"].as_str()));
            Ok(json!({
                "apiVersion": "0.0.1",
                "kind": "dsse",
                "spec": {
                    "envelopeHash": { "algorithm": "sha256", "value": hex::encode(keys::sha256(envelope_text.as_bytes())) },
                    "payloadHash": { "algorithm": "sha256", "value": hex::encode(keys::sha256(&payload)) },
                    "signatures": signatures,
                },
            }))
        }
        _ => Err(bad(format!("unsupported entry kind {kind} {version}"))),
    }
}

fn checkpoint(ctx: &Ctx, size: usize, root: &[u8; 32]) -> String {
    let body = format!(
        "{NOTE_NAME} - {}\n{size}\n{}\n",
        ctx.tree_id,
        B64.encode(root)
    );
    let mut sig = ctx.key.key_id()[..4].to_vec();
    sig.extend_from_slice(&ctx.key.sign(body.as_bytes()));
    format!("{body}\n\u{2014} {NOTE_NAME} {}\n", B64.encode(sig))
}

/// The API view of entry `index`, with a proof against the current tree.
fn entry_json(ctx: &Ctx, st: &RekorState, index: usize) -> Value {
    let e = &st.entries[index];
    let log_id = hex::encode(ctx.key.key_id());
    let body_b64 = B64.encode(&e.body);
    let set_payload = json!({
        "body": body_b64,
        "integratedTime": e.integrated_time,
        "logID": log_id,
        "logIndex": e.index,
    });
    let set = ctx.key.sign(&canonical_json(&set_payload));
    let size = st.tree.size();
    let root = st.tree.root_at(size);
    let hashes: Vec<String> = st.tree.proof(index, size).iter().map(hex::encode).collect();
    json!({ e.uuid.clone(): {
        "body": body_b64,
        "integratedTime": e.integrated_time,
        "logID": log_id,
        "logIndex": e.index,
        "verification": {
            "signedEntryTimestamp": B64.encode(set),
            "inclusionProof": {
                "logIndex": e.index,
                "rootHash": hex::encode(root),
                "treeSize": size,
                "hashes": hashes,
                "checkpoint": checkpoint(ctx, size, &root),
            },
        },
    }})
}

fn find_by_uuid(st: &RekorState, uuid: &str) -> Option<usize> {
    let uuid = uuid.to_ascii_lowercase();
    st.entries
        .iter()
        .position(|e| e.uuid == uuid || (uuid.len() == 64 && e.uuid.ends_with(&uuid)))
}

fn handle(ctx: &Ctx, req: &Req) -> Resp {
    let path = req.path();
    match (req.method.as_str(), path) {
        ("POST", "/api/v1/log/entries") => {
            let proposed: Value = match serde_json::from_slice(&req.body) {
                Ok(v) => v,
                Err(e) => return Resp::error(400, format!("request: {e}")),
            };
            let body = match canonicalize(&proposed) {
                Ok(b) => canonical_json(&b),
                Err((s, m)) => return Resp::error(s, m),
            };
            let mut st = ctx.state.lock().unwrap();
            if let Some(i) = st.entries.iter().position(|e| e.body == body) {
                return Resp::error(
                    409,
                    format!(
                        "an equivalent entry already exists in the transparency log with UUID {}",
                        st.entries[i].uuid
                    ),
                );
            }
            let index = st.tree.append(&body);
            let uuid = format!(
                "{:016x}{}",
                ctx.tree_id,
                hex::encode(st.tree.leaf(index).unwrap())
            );
            let integrated_time = oidc::now() + st.time_offset_secs;
            st.entries.push(LogEntry {
                uuid,
                index: index as u64,
                body,
                integrated_time,
            });
            Resp::json(201, &entry_json(ctx, &st, index))
        }
        ("GET", "/api/v1/log/entries") => {
            let st = ctx.state.lock().unwrap();
            match req.query("logIndex").and_then(|i| i.parse::<usize>().ok()) {
                Some(i) if i < st.entries.len() => Resp::json(200, &entry_json(ctx, &st, i)),
                _ => Resp::error(404, "no entry at that index"),
            }
        }
        ("POST", "/api/v1/log/entries/retrieve") => {
            let query: Value = serde_json::from_slice(&req.body).unwrap_or_default();
            let st = ctx.state.lock().unwrap();
            let mut found = Vec::new();
            for uuid in query["entryUUIDs"].as_array().into_iter().flatten() {
                if let Some(i) = find_by_uuid(&st, uuid.as_str().unwrap_or_default()) {
                    found.push(entry_json(ctx, &st, i));
                }
            }
            for i in query["logIndexes"].as_array().into_iter().flatten() {
                if let Some(i) = i.as_u64().filter(|i| (*i as usize) < st.entries.len()) {
                    found.push(entry_json(ctx, &st, i as usize));
                }
            }
            for proposed in query["entries"].as_array().into_iter().flatten() {
                if let Ok(b) = canonicalize(proposed) {
                    let body = canonical_json(&b);
                    if let Some(i) = st.entries.iter().position(|e| e.body == body) {
                        found.push(entry_json(ctx, &st, i));
                    }
                }
            }
            Resp::json(200, &Value::Array(found))
        }
        ("GET", "/api/v1/log") => {
            let st = ctx.state.lock().unwrap();
            let size = st.tree.size();
            let root = st.tree.root_at(size);
            Resp::json(
                200,
                &json!({
                    "rootHash": hex::encode(root),
                    "treeSize": size,
                    "signedTreeHead": checkpoint(ctx, size, &root),
                    "treeID": ctx.tree_id.to_string(),
                    "inactiveShards": [],
                }),
            )
        }
        ("GET", "/api/v1/log/publicKey") => Resp {
            status: 200,
            content_type: "application/x-pem-file",
            body: ctx.key.public_pem().into_bytes(),
        },
        ("GET", p) if p.starts_with("/api/v1/log/entries/") => {
            let st = ctx.state.lock().unwrap();
            match find_by_uuid(&st, &p["/api/v1/log/entries/".len()..]) {
                Some(i) => Resp::json(200, &entry_json(ctx, &st, i)),
                None => Resp::error(404, "no such entry"),
            }
        }
        _ => Resp::error(404, "not found"),
    }
}
