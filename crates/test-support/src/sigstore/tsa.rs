//! An RFC 3161 timestamp authority: `POST /api/v1/timestamp` with a DER
//! TimeStampReq answers a granted TimeStampResp whose token is CMS
//! SignedData over a TSTInfo, signed (ECDSA P-256) by a leaf with the
//! critical timeStamping EKU, under its own root.

use std::sync::{Arc, Mutex};

use super::ca::{self, Tbs};
use super::der;
use super::http::{HttpServer, Req, Resp};
use super::keys::{self, EcKey};
use super::oidc;

const OID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const OID_TST_INFO: &str = "1.2.840.113549.1.9.16.1.4";
const OID_CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
const OID_MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
const OID_SIGNING_TIME: &str = "1.2.840.113549.1.9.5";
const OID_SIGNING_CERT_V2: &str = "1.2.840.113549.1.9.16.2.47";
const OID_SHA256: &str = "2.16.840.1.101.3.4.2.1";
const OID_TIME_STAMPING: &str = "1.3.6.1.5.5.7.3.8";
/// The policy Sigstore's timestamp authority stamps with.
pub const POLICY: &str = "1.3.6.1.4.1.57264.2";

/// The TSA's signing leaf and root.
pub struct TsaChain {
    pub leaf_key: EcKey,
    pub leaf_der: Vec<u8>,
    pub leaf_serial: Vec<u8>,
    pub root_name: Vec<u8>,
    pub root_der: Vec<u8>,
}

impl TsaChain {
    pub fn new() -> Self {
        let now = oidc::now();
        let (nb, na) = (now - 86_400, now + 10 * 365 * 86_400);
        let root_key = EcKey::generate();
        let root_name = ca::name("sigstore.dev", "loopback-tsa-root");
        let root_ski = keys::sha256(root_key.point())[..20].to_vec();
        let root_der = ca::sign_cert(
            &Tbs {
                serial: &ca::serial(),
                issuer: &root_name,
                subject: &root_name,
                not_before: nb,
                not_after: na,
                spki: &root_key.spki(),
                extensions: &[
                    ca::ext(ca::OID_KEY_USAGE, true, &der::tlv(0x03, &[0x01, 0x06])),
                    ca::ext(
                        ca::OID_BASIC_CONSTRAINTS,
                        true,
                        &der::seq(&[der::boolean(true), der::small_uint(0)]),
                    ),
                    ca::ext(ca::OID_SKI, false, &der::octets(&root_ski)),
                ],
            }
            .encode(),
            &root_key,
        );
        let leaf_key = EcKey::generate();
        let leaf_serial = ca::serial();
        let leaf_der = ca::sign_cert(
            &Tbs {
                serial: &leaf_serial,
                issuer: &root_name,
                subject: &ca::name("sigstore.dev", "loopback-tsa"),
                not_before: nb,
                not_after: na,
                spki: &leaf_key.spki(),
                extensions: &[
                    ca::ext(ca::OID_KEY_USAGE, true, &der::tlv(0x03, &[0x07, 0x80])),
                    ca::ext(ca::OID_EKU, true, &der::seq(&[der::oid(OID_TIME_STAMPING)])),
                    ca::ext(
                        ca::OID_SKI,
                        false,
                        &der::octets(&keys::sha256(leaf_key.point())[..20]),
                    ),
                    ca::ext(ca::OID_AKI, false, &der::seq(&[der::tlv(0x80, &root_ski)])),
                ],
            }
            .encode(),
            &root_key,
        );
        Self {
            leaf_key,
            leaf_der,
            leaf_serial,
            root_name,
            root_der,
        }
    }

    /// A TimeStampResp granting a token over `imprint` (the request's
    /// MessageImprint TLV), echoing `nonce` (the request's INTEGER TLV).
    pub fn respond(&self, imprint: &[u8], nonce: Option<&[u8]>, gen_time: i64) -> Vec<u8> {
        let mut tst = vec![
            der::small_uint(1),
            der::oid(POLICY),
            imprint.to_vec(),
            der::uint(&keys::random::<16>()),
            der::generalized_time(gen_time),
        ];
        if let Some(n) = nonce {
            tst.push(n.to_vec());
        }
        let tst_info = der::seq(&tst);
        let sha256_alg = der::seq(&[der::oid(OID_SHA256)]);
        let attr = |oid: &str, value: Vec<u8>| der::seq(&[der::oid(oid), der::set(&[value])]);
        let attrs = vec![
            attr(OID_CONTENT_TYPE, der::oid(OID_TST_INFO)),
            attr(OID_SIGNING_TIME, der::time(gen_time)),
            attr(OID_MESSAGE_DIGEST, der::octets(&keys::sha256(&tst_info))),
            attr(
                OID_SIGNING_CERT_V2,
                der::seq(&[der::seq(&[der::seq(&[der::octets(&keys::sha256(
                    &self.leaf_der,
                ))])])]),
            ),
        ];
        // Signed as a SET OF, carried as [0] IMPLICIT.
        let signed_attrs = der::set_of(&attrs);
        let signature = self.leaf_key.sign(&signed_attrs);
        let mut implicit_attrs = signed_attrs.clone();
        implicit_attrs[0] = 0xa0;
        let signer_info = der::seq(&[
            der::small_uint(1),
            der::seq(&[self.root_name.clone(), self.leaf_serial.clone()]),
            sha256_alg.clone(),
            implicit_attrs,
            ca::sig_alg(),
            der::octets(&signature),
        ]);
        let signed_data = der::seq(&[
            der::small_uint(3),
            der::set(&[sha256_alg]),
            der::seq(&[
                der::oid(OID_TST_INFO),
                der::explicit(0, &der::octets(&tst_info)),
            ]),
            der::tlv(0xa0, &self.leaf_der),
            der::set(&[signer_info]),
        ]);
        let token = der::seq(&[der::oid(OID_SIGNED_DATA), der::explicit(0, &signed_data)]);
        der::seq(&[der::seq(&[der::small_uint(0)]), token])
    }
}

impl Default for TsaChain {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Default)]
pub struct TsaState {
    /// Added to the clock when stamping `genTime`.
    pub time_offset_secs: i64,
    /// How many timestamps were issued.
    pub issued: usize,
}

pub struct Tsa {
    server: HttpServer,
    pub chain: Arc<TsaChain>,
    pub state: Arc<Mutex<TsaState>>,
}

impl Tsa {
    pub fn start() -> Self {
        let chain = Arc::new(TsaChain::new());
        let state: Arc<Mutex<TsaState>> = Arc::default();
        let (c, st) = (Arc::clone(&chain), Arc::clone(&state));
        let server = HttpServer::start(Box::new(move |req| handle(&c, &st, req)));
        Self {
            server,
            chain,
            state,
        }
    }

    /// The timestamping endpoint (what signing configs list).
    pub fn url(&self) -> String {
        format!("{}/api/v1/timestamp", self.server.url())
    }
}

fn handle(chain: &TsaChain, state: &Mutex<TsaState>, req: &Req) -> Resp {
    if req.method != "POST" || req.path() != "/api/v1/timestamp" {
        return Resp::error(404, "not found");
    }
    let parsed = (|| -> Result<(Vec<u8>, Option<Vec<u8>>), String> {
        let top = der::parse_one(&req.body)?;
        let fields = der::children(top.content)?;
        let imprint = fields.get(1).ok_or("TimeStampReq: no messageImprint")?;
        let parts = der::children(imprint.content)?;
        let [alg, hash] = parts.as_slice() else {
            return Err("MessageImprint: expected algorithm and hash".into());
        };
        let alg_oid = der::children(alg.content)?;
        if alg_oid.first().map(|o| o.raw) != Some(der::oid(OID_SHA256).as_slice())
            || hash.content.len() != 32
        {
            return Err("only SHA-256 imprints are supported".into());
        }
        let nonce = fields[2..]
            .iter()
            .find(|f| f.tag == 0x02)
            .map(|f| f.raw.to_vec());
        Ok((imprint.raw.to_vec(), nonce))
    })();
    match parsed {
        Ok((imprint, nonce)) => {
            let mut st = state.lock().unwrap();
            st.issued += 1;
            let gen_time = oidc::now() + st.time_offset_secs;
            Resp {
                status: 200,
                content_type: "application/timestamp-reply",
                body: chain.respond(&imprint, nonce.as_deref(), gen_time),
            }
        }
        Err(e) => Resp::error(400, e),
    }
}
