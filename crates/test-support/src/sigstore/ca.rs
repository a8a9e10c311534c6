//! A Fulcio-compatible certificate authority (root ← intermediate ← leaf,
//! hand-written DER) and the CT log key that signs embedded SCTs.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use super::der;
use super::http::{HttpServer, Req, Resp};
use super::keys::{self, EcKey, OID_ECDSA_SHA256};
use super::oidc::{self, Identity};

pub const OID_FULCIO_ISSUER_V1: &str = "1.3.6.1.4.1.57264.1.1";
pub const OID_FULCIO_ISSUER_V2: &str = "1.3.6.1.4.1.57264.1.8";
pub const OID_SCT_LIST: &str = "1.3.6.1.4.1.11129.2.4.2";
pub const OID_KEY_USAGE: &str = "2.5.29.15";
pub const OID_BASIC_CONSTRAINTS: &str = "2.5.29.19";
pub const OID_EKU: &str = "2.5.29.37";
pub const OID_CODE_SIGNING: &str = "1.3.6.1.5.5.7.3.3";
pub const OID_SKI: &str = "2.5.29.14";
pub const OID_AKI: &str = "2.5.29.35";
pub const OID_SAN: &str = "2.5.29.17";
pub const OID_O: &str = "2.5.4.10";
pub const OID_CN: &str = "2.5.4.3";

pub fn name(org: &str, cn: &str) -> Vec<u8> {
    der::seq(&[
        der::set(&[der::seq(&[der::oid(OID_O), der::utf8(org)])]),
        der::set(&[der::seq(&[der::oid(OID_CN), der::utf8(cn)])]),
    ])
}

pub fn ext(oid: &str, critical: bool, value: &[u8]) -> Vec<u8> {
    let mut parts = vec![der::oid(oid)];
    if critical {
        parts.push(der::boolean(true));
    }
    parts.push(der::octets(value));
    der::seq(&parts)
}

/// SKI / AKI key identifier: the first 20 bytes of SHA-256 of the key bits.
pub fn key_identifier(point: &[u8]) -> Vec<u8> {
    keys::sha256(point)[..20].to_vec()
}

pub fn serial() -> Vec<u8> {
    let mut s = keys::random::<16>();
    s[0] = (s[0] & 0x7f) | 0x01;
    der::uint(&s)
}

pub fn sig_alg() -> Vec<u8> {
    der::seq(&[der::oid(OID_ECDSA_SHA256)])
}

/// The fields of a TBSCertificate; `extensions` are full Extension TLVs.
pub struct Tbs<'a> {
    pub serial: &'a [u8],
    pub issuer: &'a [u8],
    pub subject: &'a [u8],
    pub not_before: i64,
    pub not_after: i64,
    pub spki: &'a [u8],
    pub extensions: &'a [Vec<u8>],
}

impl Tbs<'_> {
    pub fn encode(&self) -> Vec<u8> {
        der::seq(&[
            der::explicit(0, &der::small_uint(2)),
            self.serial.to_vec(),
            sig_alg(),
            self.issuer.to_vec(),
            der::seq(&[der::time(self.not_before), der::time(self.not_after)]),
            self.subject.to_vec(),
            self.spki.to_vec(),
            der::explicit(3, &der::seq(self.extensions)),
        ])
    }
}

pub fn sign_cert(tbs: &[u8], issuer_key: &EcKey) -> Vec<u8> {
    der::seq(&[tbs.to_vec(), sig_alg(), der::bits(&issuer_key.sign(tbs))])
}

/// A root and an intermediate, both ECDSA P-256.
pub struct CaChain {
    pub root_key: EcKey,
    pub root_der: Vec<u8>,
    pub intermediate_key: EcKey,
    pub intermediate_der: Vec<u8>,
    pub intermediate_name: Vec<u8>,
    pub org: String,
    pub root_cn: String,
}

impl CaChain {
    pub fn new(org: &str, cn: &str) -> Self {
        let now = oidc::now();
        let (nb, na) = (now - 86_400, now + 10 * 365 * 86_400);
        let root_key = EcKey::generate();
        let root_name = name(org, cn);
        let root_ski = key_identifier(root_key.point());
        let root_tbs = Tbs {
            serial: &serial(),
            issuer: &root_name,
            subject: &root_name,
            not_before: nb,
            not_after: na,
            spki: &root_key.spki(),
            extensions: &[
                ext(OID_KEY_USAGE, true, &der::tlv(0x03, &[0x01, 0x06])),
                ext(
                    OID_BASIC_CONSTRAINTS,
                    true,
                    &der::seq(&[der::boolean(true), der::small_uint(1)]),
                ),
                ext(OID_SKI, false, &der::octets(&root_ski)),
            ],
        }
        .encode();
        let root_der = sign_cert(&root_tbs, &root_key);

        let intermediate_key = EcKey::generate();
        let intermediate_name = name(org, &format!("{cn}-intermediate"));
        let int_tbs = Tbs {
            serial: &serial(),
            issuer: &root_name,
            subject: &intermediate_name,
            not_before: nb,
            not_after: na,
            spki: &intermediate_key.spki(),
            extensions: &[
                ext(OID_KEY_USAGE, true, &der::tlv(0x03, &[0x01, 0x06])),
                ext(OID_EKU, false, &der::seq(&[der::oid(OID_CODE_SIGNING)])),
                ext(
                    OID_BASIC_CONSTRAINTS,
                    true,
                    &der::seq(&[der::boolean(true), der::small_uint(0)]),
                ),
                ext(
                    OID_SKI,
                    false,
                    &der::octets(&key_identifier(intermediate_key.point())),
                ),
                ext(OID_AKI, false, &der::seq(&[der::tlv(0x80, &root_ski)])),
            ],
        }
        .encode();
        let intermediate_der = sign_cert(&int_tbs, &root_key);
        Self {
            root_key,
            root_der,
            intermediate_key,
            intermediate_der,
            intermediate_name,
            org: org.into(),
            root_cn: cn.into(),
        }
    }

    /// Intermediate then root, as Fulcio returns them after the leaf.
    pub fn chain_pem(&self) -> Vec<String> {
        vec![
            der::pem("CERTIFICATE", &self.intermediate_der),
            der::pem("CERTIFICATE", &self.root_der),
        ]
    }
}

/// The CT log: a key and its log ID (SHA-256 of the DER SPKI).
pub struct CtLog {
    pub key: EcKey,
}

impl CtLog {
    pub fn new() -> Self {
        Self {
            key: EcKey::generate(),
        }
    }

    pub fn log_id(&self) -> [u8; 32] {
        self.key.key_id()
    }

    /// A v1 SCT over a precertificate entry (RFC 6962 §3.2), TLS-encoded.
    pub fn sign_precert(
        &self,
        issuer_spki: &[u8],
        precert_tbs: &[u8],
        timestamp_ms: u64,
    ) -> Vec<u8> {
        let mut signed = vec![0u8, 0u8]; // v1, certificate_timestamp
        signed.extend_from_slice(&timestamp_ms.to_be_bytes());
        signed.extend_from_slice(&1u16.to_be_bytes()); // precert_entry
        signed.extend_from_slice(&keys::sha256(issuer_spki));
        let n = precert_tbs.len() as u32;
        signed.extend_from_slice(&n.to_be_bytes()[1..]);
        signed.extend_from_slice(precert_tbs);
        signed.extend_from_slice(&0u16.to_be_bytes()); // no extensions
        let sig = self.key.sign(&signed);

        let mut sct = vec![0u8]; // v1
        sct.extend_from_slice(&self.log_id());
        sct.extend_from_slice(&timestamp_ms.to_be_bytes());
        sct.extend_from_slice(&0u16.to_be_bytes());
        sct.extend_from_slice(&[4, 3]); // sha256, ecdsa
        sct.extend_from_slice(&(sig.len() as u16).to_be_bytes());
        sct.extend_from_slice(&sig);
        sct
    }
}

impl Default for CtLog {
    fn default() -> Self {
        Self::new()
    }
}

/// What a leaf certificate says.
pub struct LeafSpec<'a> {
    pub spki: &'a [u8],
    pub identity: &'a Identity,
    pub oidc_issuer: &'a str,
    pub not_before: i64,
    pub not_after: i64,
}

/// Issue a leaf from `ca`'s intermediate with an SCT from `ct` embedded
/// as the last extension. Returns the DER certificate.
pub fn issue_leaf(ca: &CaChain, ct: &CtLog, spec: &LeafSpec<'_>) -> Vec<u8> {
    let point = keys::point_from_spki(spec.spki).expect("P-256 key");
    let san = match spec.identity {
        Identity::Email(e) => der::tlv(0x81, e.as_bytes()),
        Identity::Uri(u) => der::tlv(0x86, u.as_bytes()),
    };
    let mut extensions = vec![
        ext(OID_KEY_USAGE, true, &der::tlv(0x03, &[0x07, 0x80])),
        ext(OID_EKU, false, &der::seq(&[der::oid(OID_CODE_SIGNING)])),
        ext(OID_SKI, false, &der::octets(&key_identifier(&point))),
        ext(
            OID_AKI,
            false,
            &der::seq(&[der::tlv(0x80, &key_identifier(ca.intermediate_key.point()))]),
        ),
        ext(OID_SAN, true, &der::seq(&[san])),
        ext(OID_FULCIO_ISSUER_V1, false, spec.oidc_issuer.as_bytes()),
        ext(OID_FULCIO_ISSUER_V2, false, &der::utf8(spec.oidc_issuer)),
    ];
    let serial = serial();
    let empty_subject = der::seq(&[]);
    let tbs = |extensions: &[Vec<u8>]| {
        Tbs {
            serial: &serial,
            issuer: &ca.intermediate_name,
            subject: &empty_subject,
            not_before: spec.not_before,
            not_after: spec.not_after,
            spki: spec.spki,
            extensions,
        }
        .encode()
    };
    let precert_tbs = tbs(&extensions);
    let ts = (oidc::now() as u64) * 1000;
    let sct = ct.sign_precert(&ca.intermediate_key.spki(), &precert_tbs, ts);
    let mut list = ((sct.len() + 2) as u16).to_be_bytes().to_vec();
    list.extend_from_slice(&(sct.len() as u16).to_be_bytes());
    list.extend_from_slice(&sct);
    extensions.push(ext(OID_SCT_LIST, false, &der::octets(&list)));
    sign_cert(&tbs(&extensions), &ca.intermediate_key)
}

/// Knobs for hostile tests, read on every request.
#[derive(Default)]
pub struct FulcioState {
    /// Issue with this (not_before, not_after) instead of now..now+10min.
    pub validity_override: Option<(i64, i64)>,
    /// Issue from the CA that is not in the trusted root.
    pub use_untrusted_ca: bool,
    /// Every leaf issued, DER.
    pub issued: Vec<Vec<u8>>,
}

pub struct Fulcio {
    server: HttpServer,
    pub state: Arc<Mutex<FulcioState>>,
}

pub struct FulcioConfig {
    pub trusted: Arc<CaChain>,
    pub untrusted: Arc<CaChain>,
    pub ct: Arc<CtLog>,
    pub oidc_url: String,
    pub oidc_point: Vec<u8>,
}

impl Fulcio {
    pub fn start(cfg: FulcioConfig) -> Self {
        let state: Arc<Mutex<FulcioState>> = Arc::default();
        let st = Arc::clone(&state);
        let server = HttpServer::start(Box::new(move |req| handle(&cfg, &st, req)));
        Self { server, state }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }
}

fn handle(cfg: &FulcioConfig, state: &Mutex<FulcioState>, req: &Req) -> Resp {
    match (req.method.as_str(), req.path()) {
        ("POST", "/api/v2/signingCert") => match signing_cert(cfg, state, req) {
            Ok(v) => Resp::json(201, &v),
            Err((status, msg)) => Resp::error(status, msg),
        },
        ("GET", "/api/v2/configuration") => Resp::json(
            200,
            &json!({ "issuers": [{ "issuerUrl": cfg.oidc_url, "audience": "sigstore", "issuerType": "email" }] }),
        ),
        ("GET", "/api/v2/trustBundle") => Resp::json(
            200,
            &json!({ "chains": [{ "certificates": cfg.trusted.chain_pem() }] }),
        ),
        _ => Resp::error(404, "not found"),
    }
}

type Failure = (u16, String);

fn bad(msg: impl Into<String>) -> Failure {
    (400, msg.into())
}

fn signing_cert(
    cfg: &FulcioConfig,
    state: &Mutex<FulcioState>,
    req: &Req,
) -> Result<Value, Failure> {
    let request: Value =
        serde_json::from_slice(&req.body).map_err(|e| bad(format!("request: {e}")))?;
    // sigstore-rust sends the token in the body, sigstore-python (with a
    // CSR) as a bearer token.
    let token = request["credentials"]["oidcIdentityToken"]
        .as_str()
        .or_else(|| req.header("Authorization")?.strip_prefix("Bearer "))
        .ok_or_else(|| (401, "no OIDC identity token".to_string()))?;
    let claims = oidc::verify_token(token, &cfg.oidc_point, &cfg.oidc_url).map_err(|e| (401, e))?;
    let sub = claims["sub"].as_str().unwrap_or_default().to_string();
    let identity = match claims["email"].as_str() {
        Some(email) => {
            if claims["email_verified"] != json!(true) {
                return Err((401, "email is not verified".into()));
            }
            Identity::Email(email.to_string())
        }
        None => Identity::Uri(sub.clone()),
    };

    // The key, and proof the caller holds its private half.
    let spki = if let Some(pkr) = request.get("publicKeyRequest") {
        let pem = pkr["publicKey"]["content"]
            .as_str()
            .ok_or_else(|| bad("missing publicKeyRequest.publicKey.content"))?;
        let spki = der::from_pem(pem, "PUBLIC KEY").map_err(bad)?;
        let point = keys::point_from_spki(&spki).map_err(bad)?;
        let proof = B64
            .decode(pkr["proofOfPossession"].as_str().unwrap_or_default())
            .map_err(|e| bad(format!("proofOfPossession: {e}")))?;
        // Fulcio checks the proof over the token's subject: the email for
        // email issuers, `sub` otherwise.
        if !keys::verify_asn1(&point, identity_claim(&claims).as_bytes(), &proof) {
            return Err(bad("proof of possession does not verify"));
        }
        spki
    } else if let Some(csr_b64) = request["certificateSigningRequest"].as_str() {
        let pem = B64
            .decode(csr_b64)
            .map_err(|e| bad(format!("certificateSigningRequest: {e}")))?;
        let pem = String::from_utf8(pem).map_err(|e| bad(e.to_string()))?;
        let csr = der::from_pem(&pem, "CERTIFICATE REQUEST").map_err(bad)?;
        csr_spki(&csr).map_err(bad)?
    } else {
        return Err(bad(
            "neither publicKeyRequest nor certificateSigningRequest",
        ));
    };

    let mut st = state.lock().unwrap();
    let now = oidc::now();
    let (not_before, not_after) = st.validity_override.unwrap_or((now, now + 600));
    let ca = if st.use_untrusted_ca {
        &cfg.untrusted
    } else {
        &cfg.trusted
    };
    let leaf = issue_leaf(
        ca,
        &cfg.ct,
        &LeafSpec {
            spki: &spki,
            identity: &identity,
            oidc_issuer: &cfg.oidc_url,
            not_before,
            not_after,
        },
    );
    st.issued.push(leaf.clone());
    let mut certificates = vec![der::pem("CERTIFICATE", &leaf)];
    certificates.extend(ca.chain_pem());
    Ok(json!({ "signedCertificateEmbeddedSct": { "chain": { "certificates": certificates } } }))
}

fn identity_claim(claims: &Value) -> String {
    claims["email"]
        .as_str()
        .or(claims["sub"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The SPKI of a PKCS#10 request whose self-signature verifies.
fn csr_spki(csr: &[u8]) -> Result<Vec<u8>, String> {
    let top = der::parse_one(csr)?;
    let parts = der::children(top.content)?;
    let [info, alg, sig] = parts.as_slice() else {
        return Err("CSR: expected info, algorithm, signature".into());
    };
    if alg.raw != sig_alg().as_slice() {
        return Err("CSR: signature algorithm is not ecdsa-with-SHA256".into());
    }
    let fields = der::children(info.content)?;
    let spki = fields
        .get(2)
        .ok_or("CSR: no SubjectPublicKeyInfo")?
        .raw
        .to_vec();
    let point = keys::point_from_spki(&spki)?;
    if sig.tag != 0x03 || sig.content.first() != Some(&0) {
        return Err("CSR: malformed signature".into());
    }
    if !keys::verify_asn1(&point, info.raw, &sig.content[1..]) {
        return Err("CSR: signature does not verify".into());
    }
    Ok(spki)
}
