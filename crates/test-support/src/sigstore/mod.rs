//! Loopback Sigstore services for tests, after sigstore-go's VirtualSigstore.
//!
//! [`SigstoreServices::start`] runs, each on its own `127.0.0.1:0` HTTP
//! server thread:
//!
//! - an OIDC issuer ([`oidc::OidcIssuer`]): discovery document, JWKS, and
//!   ES256 ID tokens minted on demand for email or URI identities;
//! - a Fulcio-compatible CA ([`ca::Fulcio`], `POST /api/v2/signingCert`,
//!   both the `publicKeyRequest` + proof-of-possession form sigstore-rust
//!   sends and the PKCS#10 form sigstore-python sends): it verifies the token
//!   and the proof, then issues leaf ← intermediate ← root with the Fulcio
//!   issuer extensions and an embedded SCT from the CT log key;
//! - a Rekor v1-compatible log ([`rekor::Rekor`]): `hashedrekord` and `dsse`
//!   0.0.1 entries canonicalized as Rekor stores them, an RFC 6962 tree,
//!   signed entry timestamps and checkpointed inclusion proofs;
//! - optionally ([`SigstoreServices::start_with`], [`SigstoreOptions::tsa`])
//!   an RFC 3161 timestamp authority ([`tsa::Tsa`], `POST /api/v1/timestamp`).
//!
//! The CT log is only a key (no HTTP). Every key is ECDSA P-256
//! (aws-lc-rs); certificates are written as DER by hand ([`der`]), so the
//! precertificate TBS the SCT signs is exactly the certificate's TBS without
//! its last (SCT list) extension.
//!
//! Trust material (`trusted_root.json`, `signing_config.json`,
//! `trust_config.json` for sigstore-python's `--trust-config`) is written
//! into a temporary directory the handle owns.
//!
//! Hostile hooks: [`SigstoreServices::set_cert_validity`],
//! [`SigstoreServices::use_untrusted_ca`],
//! [`SigstoreServices::set_log_time_offset`],
//! [`SigstoreServices::set_tsa_time_offset`], tokens shaped by
//! [`TokenOptions`], and direct access to the log's entries.
//!
//! Threads end and the directory is removed when the handle is dropped.

pub mod ca;
pub mod der;
pub mod http;
pub mod keys;
pub mod merkle;
pub mod oidc;
pub mod python;
pub mod rekor;
pub mod tsa;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

pub use ca::{CaChain, CtLog};
pub use oidc::{Identity, TokenOptions};
pub use rekor::LogEntry;

/// Start of every validity window in the trust material.
const VALID_FROM: &str = "2020-01-01T00:00:00Z";

/// What to run besides the OIDC issuer, Fulcio and Rekor.
#[derive(Clone, Debug, Default)]
pub struct SigstoreOptions {
    /// Run a timestamp authority, list it in the trusted root's
    /// `timestampAuthorities` and the signing config's `tsaUrls` (so
    /// sigstore-python timestamps what it signs).
    pub tsa: bool,
}

pub struct SigstoreServices {
    // Servers first: dropped (stopped) before the directory goes.
    oidc: oidc::OidcIssuer,
    fulcio: ca::Fulcio,
    rekor: rekor::Rekor,
    tsa: Option<tsa::Tsa>,
    trusted_ca: Arc<CaChain>,
    untrusted_ca: Arc<CaChain>,
    ct: Arc<CtLog>,
    dir: tempfile::TempDir,
}

impl SigstoreServices {
    /// OIDC issuer, Fulcio, Rekor; no timestamp authority.
    pub fn start() -> Self {
        Self::start_with(SigstoreOptions::default())
    }

    pub fn start_with(options: SigstoreOptions) -> Self {
        let oidc = oidc::OidcIssuer::start();
        let trusted_ca = Arc::new(CaChain::new("sigstore.dev", "loopback-fulcio"));
        let untrusted_ca = Arc::new(CaChain::new("untrusted.example", "untrusted-fulcio"));
        let ct = Arc::new(CtLog::new());
        let fulcio = ca::Fulcio::start(ca::FulcioConfig {
            trusted: Arc::clone(&trusted_ca),
            untrusted: Arc::clone(&untrusted_ca),
            ct: Arc::clone(&ct),
            oidc_url: oidc.url(),
            oidc_point: oidc.public_point(),
        });
        let rekor = rekor::Rekor::start();
        let tsa = options.tsa.then(tsa::Tsa::start);
        let dir = tempfile::Builder::new()
            .prefix("sigstore-services-")
            .tempdir()
            .expect("temp dir");
        let s = Self {
            oidc,
            fulcio,
            rekor,
            tsa,
            trusted_ca,
            untrusted_ca,
            ct,
            dir,
        };
        s.write_trust_material();
        s
    }

    // ---- URLs -------------------------------------------------------------

    /// The OIDC issuer URL (the `iss` claim, the certificates' issuer).
    pub fn issuer_url(&self) -> String {
        self.oidc.url()
    }

    pub fn fulcio_url(&self) -> String {
        self.fulcio.url()
    }

    pub fn rekor_url(&self) -> String {
        self.rekor.url()
    }

    /// The timestamping URL, when started with [`SigstoreOptions::tsa`].
    pub fn tsa_url(&self) -> Option<String> {
        self.tsa.as_ref().map(tsa::Tsa::url)
    }

    // ---- tokens -----------------------------------------------------------

    /// A valid ID token (audience `sigstore`, 10 minutes) for `identity`.
    pub fn mint_token(&self, identity: &Identity) -> String {
        self.oidc.mint_token(identity)
    }

    /// A token shaped by `options` (expired, wrong audience, foreign key...).
    pub fn mint_token_with(&self, options: &TokenOptions) -> String {
        self.oidc.mint_token_with(options)
    }

    // ---- trust material ---------------------------------------------------

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn trusted_root_path(&self) -> PathBuf {
        self.dir.path().join("trusted_root.json")
    }

    pub fn signing_config_path(&self) -> PathBuf {
        self.dir.path().join("signing_config.json")
    }

    /// sigstore-python's `--trust-config` file (trusted root + signing config).
    pub fn trust_config_path(&self) -> PathBuf {
        self.dir.path().join("trust_config.json")
    }

    /// `trusted_root.json` as a string.
    pub fn trusted_root_json(&self) -> String {
        serde_json::to_string_pretty(&self.trusted_root()).unwrap()
    }

    /// The trusted root (protobuf-specs JSON): the Rekor log, the trusted
    /// CA (intermediate, root), the CT log. Never the untrusted CA.
    pub fn trusted_root(&self) -> Value {
        let key = |spki: Vec<u8>, id: [u8; 32], url: String| {
            json!({
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": B64.encode(spki),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": { "start": VALID_FROM },
                },
                "logId": { "keyId": B64.encode(id) },
            })
        };
        json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [key(self.rekor.key.spki(), self.rekor.key.key_id(), self.rekor_url())],
            "certificateAuthorities": [{
                "subject": { "organization": self.trusted_ca.org, "commonName": self.trusted_ca.root_cn },
                "uri": self.fulcio_url(),
                "certChain": { "certificates": [
                    { "rawBytes": B64.encode(&self.trusted_ca.intermediate_der) },
                    { "rawBytes": B64.encode(&self.trusted_ca.root_der) },
                ]},
                "validFor": { "start": VALID_FROM },
            }],
            "ctlogs": [key(self.ct.key.spki(), self.ct.log_id(), "http://127.0.0.1:9/ct".into())],
            "timestampAuthorities": self.tsa.iter().map(|t| json!({
                "subject": { "organization": "sigstore.dev", "commonName": "loopback-tsa" },
                "uri": t.url(),
                "certChain": { "certificates": [
                    { "rawBytes": B64.encode(&t.chain.leaf_der) },
                    { "rawBytes": B64.encode(&t.chain.root_der) },
                ]},
                "validFor": { "start": VALID_FROM },
            })).collect::<Vec<_>>(),
        })
    }

    /// The signing config (v0.2): Fulcio, OIDC, Rekor v1, the TSA if any.
    pub fn signing_config(&self) -> Value {
        let service = |url: String| {
            json!({
                "url": url,
                "majorApiVersion": 1,
                "validFor": { "start": VALID_FROM },
                "operator": "loopback",
            })
        };
        json!({
            "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
            "caUrls": [service(self.fulcio_url())],
            "oidcUrls": [service(self.issuer_url())],
            "rekorTlogUrls": [service(self.rekor_url())],
            "tsaUrls": self.tsa_url().into_iter().map(service).collect::<Vec<_>>(),
            "rekorTlogConfig": { "selector": "ANY" },
            "tsaConfig": { "selector": "ANY" },
        })
    }

    fn write_trust_material(&self) {
        let write = |path: PathBuf, v: &Value| {
            std::fs::write(&path, serde_json::to_vec_pretty(v).unwrap())
                .unwrap_or_else(|e| panic!("write {}: {e}", path.display()))
        };
        write(self.trusted_root_path(), &self.trusted_root());
        write(self.signing_config_path(), &self.signing_config());
        write(
            self.trust_config_path(),
            &json!({
                "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
                "trustedRoot": self.trusted_root(),
                "signingConfig": self.signing_config(),
            }),
        );
    }

    // ---- keys and CAs -----------------------------------------------------

    pub fn trusted_ca(&self) -> &CaChain {
        &self.trusted_ca
    }

    /// A second CA, never in the trusted root.
    pub fn untrusted_ca(&self) -> &CaChain {
        &self.untrusted_ca
    }

    pub fn ct_log(&self) -> &CtLog {
        &self.ct
    }

    /// The Rekor log's DER SubjectPublicKeyInfo.
    pub fn rekor_public_key_der(&self) -> Vec<u8> {
        self.rekor.key.spki()
    }

    /// The Rekor log ID, hex (SHA-256 of its DER SPKI).
    pub fn rekor_log_id_hex(&self) -> String {
        self.rekor.log_id_hex()
    }

    // ---- hostile hooks ----------------------------------------------------

    /// Issue the next certificates with this validity (unix seconds)
    /// instead of now..now+10min; `None` restores the default.
    pub fn set_cert_validity(&self, validity: Option<(i64, i64)>) {
        self.fulcio.state.lock().unwrap().validity_override = validity;
    }

    /// Issue the next certificates from the untrusted CA (or not).
    pub fn use_untrusted_ca(&self, untrusted: bool) {
        self.fulcio.state.lock().unwrap().use_untrusted_ca = untrusted;
    }

    /// Every leaf certificate Fulcio issued, DER, oldest first.
    pub fn issued_certificates(&self) -> Vec<Vec<u8>> {
        self.fulcio.state.lock().unwrap().issued.clone()
    }

    /// Shift the log's clock for `integratedTime` by `secs`.
    pub fn set_log_time_offset(&self, secs: i64) {
        self.rekor.state.lock().unwrap().time_offset_secs = secs;
    }

    /// Shift the timestamp authority's clock for `genTime` by `secs`.
    pub fn set_tsa_time_offset(&self, secs: i64) {
        if let Some(t) = &self.tsa {
            t.state.lock().unwrap().time_offset_secs = secs;
        }
    }

    /// How many timestamps the TSA issued (0 without one).
    pub fn timestamps_issued(&self) -> usize {
        self.tsa
            .as_ref()
            .map_or(0, |t| t.state.lock().unwrap().issued)
    }

    /// Every logged entry, oldest first.
    pub fn log_entries(&self) -> Vec<LogEntry> {
        self.rekor.state.lock().unwrap().entries.clone()
    }

    /// The log's current size and root hash.
    pub fn log_root(&self) -> (usize, [u8; 32]) {
        let st = self.rekor.state.lock().unwrap();
        (st.tree.size(), st.tree.root())
    }
}
