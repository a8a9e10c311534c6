//! Verifying one bundle against one release and the policy.
//!
//! Order matters for the messages and for safety: the bundle must parse, be a
//! DSSE envelope over an in-toto statement of the wanted kind whose only
//! subject is this release's manifest digest; then the cryptography
//! (certificate chain to the trusted root, SCT, signature, transparency-log
//! inclusion proof, checkpoint and SET, signed timestamps, certificate valid
//! at the logged time — all by sigstore-verify), and only then the identity
//! rules. A key-pair bundle is checked against the configured public keys:
//! squizzle's DSSE statements offline, a cosign message signature with its
//! transparency-log entry. A chain in the bundle that ships a root CA is
//! refused before any of the cryptography.

use sigstore_sign::types::bundle::VerificationMaterialContent;
use sigstore_sign::types::{ArtifactDigest, Bundle, Sha256Hash, SignatureContent};
use sigstore_verify::{VerificationPolicy, Verifier};

use super::keys::{self, PublicKey};
use super::statement::ParsedStatement;
use crate::core::digest::Digest;
use crate::core::policy::SignerRule;

/// Bundles larger than this are refused before parsing.
pub const MAX_BUNDLE_BYTES: u64 = 1024 * 1024;

/// What a release must be signed by.
pub struct Policy<'a> {
    pub rules: &'a [SignerRule],
    pub keys: &'a [(String, PublicKey)],
    /// The verifier for keyless bundles (built once from the trust root).
    pub verifier: Option<&'a Verifier>,
    /// Where the trust root came from, or why there is none.
    pub trust_source: &'a str,
}

/// Who signed, as established by a successful verification.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verified {
    /// `keyless` or `key`.
    pub method: &'static str,
    /// Certificate SAN (keyless) or `key <fingerprint>`.
    pub identity: String,
    /// OIDC issuer (keyless) or the public key's file.
    pub issuer: String,
    /// When the signature was made: the transparency log's time, else a
    /// verified timestamp; none for an offline key-pair signature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_index: Option<u64>,
    pub transparency_log: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub predicate_type: String,
    #[serde(skip)]
    pub predicate: serde_json::Value,
}

/// Why a bundle does not count, by kind; the reason is phrased for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct BundleError {
    pub kind: Rejection,
    pub reason: String,
}

/// What kind of reason a bundle was refused for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Not a Sigstore bundle, or not of the shape squizzle reads.
    Malformed,
    /// About another artifact, or another kind of statement.
    WrongSubject,
    /// Its cryptography or trust chain does not verify.
    Untrusted,
    /// Valid, but by a signer or key the policy does not accept.
    NotAccepted,
}

impl BundleError {
    pub fn new(kind: Rejection, reason: impl Into<String>) -> Self {
        BundleError {
            kind,
            reason: reason.into(),
        }
    }
}

/// Verifies `bundle_json` as a statement of `predicate_type` about `digest`.
/// The error is the reason, phrased for the user.
pub fn verify_bundle(
    bundle_json: &[u8],
    digest: &Digest,
    predicate_type: &str,
    policy: &Policy<'_>,
) -> Result<Verified, BundleError> {
    use Rejection::*;
    let text = std::str::from_utf8(bundle_json)
        .map_err(|_| BundleError::new(Malformed, "the bundle is not UTF-8 JSON"))?;
    let bundle = Bundle::from_json(text)
        .map_err(|e| BundleError::new(Malformed, format!("not a Sigstore bundle: {e}")))?;
    let envelope = match &bundle.content {
        SignatureContent::DsseEnvelope(envelope) => envelope,
        // A plain signature over the manifest bytes (`sigstore sign`,
        // `cosign sign-blob` of the manifest blob) says exactly "this
        // artifact", so it counts as a signature, never as another kind of
        // statement. Its message digest must be the manifest digest.
        SignatureContent::MessageSignature(m)
            if predicate_type == super::statement::SIGNATURE_PREDICATE =>
        {
            if let Some(d) = &m.message_digest
                && d.digest.as_bytes() != digest.as_bytes()
            {
                return Err(BundleError::new(
                    WrongSubject,
                    format!(
                        "the bundle is for another artifact: it signs sha256:{}, but this release is {digest}",
                        hex::encode(d.digest.as_bytes())
                    ),
                ));
            }
            // `cosign sign-blob --key k --bundle b`: the signature over the
            // manifest bytes with a public-key hint and a log entry.
            if matches!(
                bundle.verification_material.content,
                VerificationMaterialContent::PublicKey { .. }
            ) {
                return verify_message_keyed(&bundle, digest, policy);
            }
            return verify_keyless(&bundle, digest, None, policy);
        }
        _ => {
            return Err(BundleError::new(
                WrongSubject,
                format!(
                    "the bundle holds a plain message signature, which cannot carry a {predicate_type} statement"
                ),
            ));
        }
    };
    if envelope.payload_type != super::statement::PAYLOAD_TYPE {
        return Err(BundleError::new(
            Malformed,
            format!(
                "the envelope's payload type is {:?}; expected {}",
                envelope.payload_type,
                super::statement::PAYLOAD_TYPE
            ),
        ));
    }
    let statement = ParsedStatement::parse(envelope.payload.as_bytes())
        .map_err(|e| BundleError::new(Malformed, e))?;
    statement
        .check(digest, predicate_type)
        .map_err(|e| BundleError::new(WrongSubject, e))?;

    match &bundle.verification_material.content {
        VerificationMaterialContent::PublicKey { .. } => verify_keyed(&bundle, statement, policy),
        _ => verify_keyless(&bundle, digest, Some(statement), policy),
    }
}

fn verify_keyless(
    bundle: &Bundle,
    digest: &Digest,
    statement: Option<ParsedStatement>,
    policy: &Policy<'_>,
) -> Result<Verified, BundleError> {
    use Rejection::*;
    refuse_root_in_chain(bundle)?;
    let verifier = policy.verifier.ok_or_else(|| {
        BundleError::new(Untrusted, format!(
            "keyless bundles need a trusted root, and none could be loaded ({}); fix `security.trusted_root` or pass --trusted-root",
            policy.trust_source
        ))
    })?;
    let artifact = ArtifactDigest::sha256(
        Sha256Hash::from_hex(&digest.hex())
            .map_err(|e| BundleError::new(Malformed, format!("digest: {e}")))?,
    );
    let result = verifier
        .verify(
            sigstore_sign::types::Artifact::Digest(artifact),
            bundle,
            &VerificationPolicy::any_identity(),
        )
        .map_err(|e| {
            BundleError::new(
                Untrusted,
                format!(
                    "{} (trusted root: {})",
                    crate::core::errors::error_chain(&e),
                    policy.trust_source
                ),
            )
        })?;
    let identity = result
        .identity()
        .map(|s| s.as_str().to_owned())
        .ok_or_else(|| BundleError::new(Untrusted, "the signing certificate names no identity"))?;
    let issuer = result.issuer().map(str::to_owned).ok_or_else(|| {
        BundleError::new(Untrusted, "the signing certificate names no OIDC issuer")
    })?;
    if !result.certificate_verified() || !result.tlog_verified() {
        return Err(BundleError::new(
            Untrusted,
            "the certificate chain or the transparency-log inclusion could not be verified",
        ));
    }
    // A keyless signature proves who signed, not that they may: with no
    // signer rule nobody is trusted to sign keylessly (a configured public
    // key trusts that key, never "anyone with a certificate").
    if policy.rules.is_empty() {
        return Err(BundleError::new(
            NotAccepted,
            format!(
                "signed keylessly by {identity} (issuer {issuer}), but no keyless signer is trusted: add [[security.signers]] with its identity and issuer, or pass --certificate-identity and --certificate-oidc-issuer"
            ),
        ));
    }
    let rule = {
        let Some(rule) = policy.rules.iter().find(|r| r.matches(&identity, &issuer)) else {
            let allowed: Vec<String> = policy.rules.iter().map(ToString::to_string).collect();
            return Err(BundleError::new(
                NotAccepted,
                format!(
                    "signed by {identity} (issuer {issuer}), who is not an accepted signer; accepted: {}",
                    allowed.join("; ")
                ),
            ));
        };
        Some(rule.to_string())
    };
    let signed_at = result
        .integrated_time()
        .or_else(|| result.verified_timestamps().first().copied())
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
    Ok(Verified {
        method: "keyless",
        identity,
        issuer,
        signed_at,
        log_index: bundle
            .verification_material
            .tlog_entries
            .first()
            .map(|e| e.log_index.get()),
        transparency_log: true,
        rule,
        predicate_type: statement.as_ref().map_or_else(
            || super::statement::SIGNATURE_PREDICATE.to_owned(),
            |s| s.predicate_type.clone(),
        ),
        predicate: statement.map_or(serde_json::Value::Null, |s| s.predicate),
    })
}

fn verify_keyed(
    bundle: &Bundle,
    statement: ParsedStatement,
    policy: &Policy<'_>,
) -> Result<Verified, BundleError> {
    if policy.keys.is_empty() {
        return Err(BundleError::new(
            Rejection::NotAccepted,
            "the bundle is signed with a key pair, but no public key is trusted (set `security.public_keys` or pass --key)",
        ));
    }
    let mut reasons = Vec::new();
    for (path, key) in policy.keys {
        match keys::verify_statement(bundle, key) {
            Ok(_) => {
                return Ok(Verified {
                    method: "key",
                    identity: format!("key {}", key.fingerprint()),
                    issuer: path.clone(),
                    signed_at: None,
                    log_index: None,
                    transparency_log: false,
                    rule: None,
                    predicate_type: statement.predicate_type,
                    predicate: statement.predicate,
                });
            }
            Err(e) => reasons.push(format!("{path}: {e}")),
        }
    }
    Err(BundleError::new(
        Rejection::Untrusted,
        format!(
            "no trusted public key verifies the bundle ({})",
            reasons.join("; ")
        ),
    ))
}

/// A certificate chain in a bundle (v0.1/v0.2 `x509CertificateChain`) may
/// carry the signing certificate and intermediates, never a root: a root
/// taken from the bundle could stand in for the trusted root's own, so a
/// bundle that ships one is refused (as the Sigstore client specification
/// and its conformance suite ask; sigstore-python only warns).
fn refuse_root_in_chain(bundle: &Bundle) -> Result<(), BundleError> {
    use der::Decode as _;
    let VerificationMaterialContent::X509CertificateChain { certificates } =
        &bundle.verification_material.content
    else {
        return Ok(());
    };
    for (position, cert) in certificates.iter().enumerate().skip(1) {
        let parsed = x509_cert::Certificate::from_der(cert.raw_bytes.as_bytes()).map_err(|e| {
            BundleError::new(
                Rejection::Malformed,
                format!(
                    "certificate {} of the bundle's chain is not DER X.509: {e}",
                    position + 1
                ),
            )
        })?;
        let tbs = &parsed.tbs_certificate;
        if tbs.subject == tbs.issuer {
            return Err(BundleError::new(
                Rejection::Untrusted,
                format!(
                    "the bundle's certificate chain carries a root CA (certificate {} of {}, {}); a bundle holds the signing certificate and at most intermediates, the root comes only from the trusted root: sign again with a current client, or remove the root from `verificationMaterial.x509CertificateChain`",
                    position + 1,
                    certificates.len(),
                    tbs.subject
                ),
            ));
        }
    }
    Ok(())
}

/// A plain message signature over the manifest bytes made with a key pair
/// (`cosign sign-blob --key`): verified by sigstore-verify's public-key
/// policy, transparency-log entry included (inclusion proof, checkpoint,
/// signed entry timestamp, and the entry describing this signature and key),
/// against each trusted key in turn.
fn verify_message_keyed(
    bundle: &Bundle,
    digest: &Digest,
    policy: &Policy<'_>,
) -> Result<Verified, BundleError> {
    use Rejection::*;
    if policy.keys.is_empty() {
        return Err(BundleError::new(
            NotAccepted,
            "the bundle is signed with a key pair, but no public key is trusted (set `security.public_keys` or pass --key)",
        ));
    }
    if bundle.verification_material.tlog_entries.is_empty() {
        return Err(BundleError::new(
            Untrusted,
            "a key-pair message signature must carry a transparency-log entry (as `cosign sign-blob --key --bundle` writes); this one has none",
        ));
    }
    let verifier = policy.verifier.ok_or_else(|| {
        BundleError::new(Untrusted, format!(
            "the bundle's transparency-log entry needs a trusted root to check it against, and none could be loaded ({}); fix `security.trusted_root` or pass --trusted-root",
            policy.trust_source
        ))
    })?;
    let hex = digest.hex();
    let sha = Sha256Hash::from_hex(&hex)
        .map_err(|e| BundleError::new(Malformed, format!("digest: {e}")))?;
    let mut reasons = Vec::new();
    for (path, key) in policy.keys {
        let key_policy = sigstore_verify::PublicKeyVerificationPolicy::new(
            sigstore_sign::types::DerPublicKey::new(key.spki_der().to_vec()),
        );
        match verifier.verify(
            sigstore_sign::types::Artifact::Digest(ArtifactDigest::sha256(sha)),
            bundle,
            &key_policy,
        ) {
            Ok(result) if result.tlog_verified() => {
                return Ok(Verified {
                    method: "key",
                    identity: format!("key {}", key.fingerprint()),
                    issuer: path.clone(),
                    signed_at: result
                        .integrated_time()
                        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
                    log_index: bundle
                        .verification_material
                        .tlog_entries
                        .first()
                        .map(|e| e.log_index.get()),
                    transparency_log: true,
                    rule: None,
                    predicate_type: super::statement::SIGNATURE_PREDICATE.to_owned(),
                    predicate: serde_json::Value::Null,
                });
            }
            Ok(_) => reasons.push(format!(
                "{path}: the transparency-log entry could not be verified"
            )),
            Err(e) => reasons.push(format!("{path}: {}", crate::core::errors::error_chain(&e))),
        }
    }
    Err(BundleError::new(
        Untrusted,
        format!(
            "no trusted public key verifies the bundle's message signature and its log entry ({}; trusted root: {})",
            reasons.join("; "),
            policy.trust_source
        ),
    ))
}
