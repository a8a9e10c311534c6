//! A loopback OIDC issuer: discovery document, JWKS, and ES256 ID tokens
//! minted on demand.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde_json::{Value, json};

use super::http::{HttpServer, Resp};
use super::keys::EcKey;

/// Who a token names. Fulcio puts an email identity in an rfc822Name SAN and
/// a URI identity (e.g. a GitHub workflow ref) in a URI SAN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    Email(String),
    Uri(String),
}

impl Identity {
    pub fn email(e: impl Into<String>) -> Self {
        Self::Email(e.into())
    }

    pub fn uri(u: impl Into<String>) -> Self {
        Self::Uri(u.into())
    }

    /// The SAN value a certificate for this identity carries.
    pub fn value(&self) -> &str {
        match self {
            Self::Email(v) | Self::Uri(v) => v,
        }
    }
}

/// How to mint a token; [`TokenOptions::new`] gives a valid one.
#[derive(Clone, Debug)]
pub struct TokenOptions {
    pub identity: Identity,
    /// `aud`; Fulcio requires `sigstore`.
    pub audience: String,
    /// Seconds from now until `exp` (negative: already expired).
    pub expires_in: i64,
    /// `iat` and `nbf`, seconds from now.
    pub issued_in: i64,
    /// `email_verified` for email identities.
    pub email_verified: bool,
    /// Override `iss` (default: the issuer's URL).
    pub issuer: Option<String>,
    /// Sign with a key the issuer does not publish.
    pub foreign_key: bool,
    /// Extra claims merged into the payload.
    pub extra_claims: Value,
}

impl TokenOptions {
    pub fn new(identity: Identity) -> Self {
        Self {
            identity,
            audience: "sigstore".into(),
            expires_in: 600,
            issued_in: 0,
            email_verified: true,
            issuer: None,
            foreign_key: false,
            extra_claims: json!({}),
        }
    }
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub struct OidcIssuer {
    server: HttpServer,
    key: Arc<EcKey>,
    kid: String,
}

impl OidcIssuer {
    pub fn start() -> Self {
        let key = Arc::new(EcKey::generate());
        let kid = hex::encode(&key.key_id()[..8]);
        // The issuer URL is known only once bound; the handler reads it back
        // from the Host it was reached on, so fill it in per request.
        let jwks = json!({ "keys": [{
            "kty": "EC",
            "crv": "P-256",
            "x": B64URL.encode(&key.point()[1..33]),
            "y": B64URL.encode(&key.point()[33..65]),
            "kid": kid,
            "alg": "ES256",
            "use": "sig",
        }]});
        let url_cell: Arc<std::sync::OnceLock<String>> = Arc::default();
        let cell = Arc::clone(&url_cell);
        let server = HttpServer::start(Box::new(move |req| {
            let base = cell.get().cloned().unwrap_or_default();
            match (req.method.as_str(), req.path()) {
                ("GET", "/.well-known/openid-configuration") => Resp::json(
                    200,
                    &json!({
                        "issuer": base,
                        "jwks_uri": format!("{base}/jwks"),
                        "authorization_endpoint": format!("{base}/auth"),
                        "token_endpoint": format!("{base}/token"),
                        "response_types_supported": ["id_token"],
                        "subject_types_supported": ["public"],
                        "id_token_signing_alg_values_supported": ["ES256"],
                    }),
                ),
                ("GET", "/jwks") => Resp::json(200, &jwks),
                _ => Resp::error(404, "not found"),
            }
        }));
        url_cell.set(server.url()).unwrap();
        Self { server, key, kid }
    }

    /// The issuer URL: the `iss` claim and the certificates' OIDC issuer.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The uncompressed public point tokens are signed with.
    pub fn public_point(&self) -> Vec<u8> {
        self.key.point().to_vec()
    }

    pub fn key_id(&self) -> &str {
        &self.kid
    }

    /// A valid ES256 token for `identity`, audience `sigstore`, 10 minutes.
    pub fn mint_token(&self, identity: &Identity) -> String {
        self.mint_token_with(&TokenOptions::new(identity.clone()))
    }

    pub fn mint_token_with(&self, o: &TokenOptions) -> String {
        let now = now();
        let iss = o.issuer.clone().unwrap_or_else(|| self.url());
        let mut claims = json!({
            "iss": iss,
            "aud": o.audience,
            "iat": now + o.issued_in,
            "nbf": now + o.issued_in,
            "exp": now + o.expires_in,
        });
        match &o.identity {
            Identity::Email(e) => {
                claims["sub"] = json!(format!(
                    "user-{}",
                    hex::encode(&super::keys::sha256(e.as_bytes())[..6])
                ));
                claims["email"] = json!(e);
                claims["email_verified"] = json!(o.email_verified);
            }
            Identity::Uri(u) => claims["sub"] = json!(u),
        }
        if let Value::Object(extra) = &o.extra_claims {
            for (k, v) in extra {
                claims[k] = v.clone();
            }
        }
        let header = json!({ "alg": "ES256", "typ": "JWT", "kid": self.kid });
        let signing_input = format!(
            "{}.{}",
            B64URL.encode(serde_json::to_vec(&header).unwrap()),
            B64URL.encode(serde_json::to_vec(&claims).unwrap())
        );
        let sig = if o.foreign_key {
            EcKey::generate().sign_fixed(signing_input.as_bytes())
        } else {
            self.key.sign_fixed(signing_input.as_bytes())
        };
        format!("{signing_input}.{}", B64URL.encode(sig))
    }
}

/// Check a token as Fulcio does: ES256 signature by `point`, `iss` equal to
/// `issuer`, `aud` containing `sigstore`, not expired, not before `nbf`.
/// Returns the claims.
pub fn verify_token(token: &str, point: &[u8], issuer: &str) -> Result<Value, String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [h, p, s] = parts.as_slice() else {
        return Err("token is not a JWS compact serialization".into());
    };
    let header: Value = serde_json::from_slice(&B64URL.decode(h).map_err(|e| e.to_string())?)
        .map_err(|e| format!("token header: {e}"))?;
    if header["alg"] != "ES256" {
        return Err(format!("unsupported token algorithm {}", header["alg"]));
    }
    let sig = B64URL
        .decode(s)
        .map_err(|e| format!("token signature: {e}"))?;
    if !super::keys::verify_fixed(point, format!("{h}.{p}").as_bytes(), &sig) {
        return Err("token signature does not verify against the issuer's key".into());
    }
    let claims: Value = serde_json::from_slice(&B64URL.decode(p).map_err(|e| e.to_string())?)
        .map_err(|e| format!("token claims: {e}"))?;
    if claims["iss"] != issuer {
        return Err(format!("unknown issuer {}", claims["iss"]));
    }
    let aud_ok = match &claims["aud"] {
        Value::String(a) => a == "sigstore",
        Value::Array(a) => a.iter().any(|x| x == "sigstore"),
        _ => false,
    };
    if !aud_ok {
        return Err(format!("audience {} is not sigstore", claims["aud"]));
    }
    let now = now();
    let exp = claims["exp"].as_i64().ok_or("token has no exp")?;
    if exp <= now {
        return Err("token expired".into());
    }
    if claims["nbf"].as_i64().is_some_and(|nbf| nbf > now + 60) {
        return Err("token not yet valid".into());
    }
    if claims["sub"].as_str().unwrap_or("").is_empty() {
        return Err("token has no sub".into());
    }
    Ok(claims)
}
