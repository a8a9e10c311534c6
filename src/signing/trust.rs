//! Trust material: which Sigstore instance signs and which one verifies.
//!
//! Verification trusts the public-good instance's `trusted_root.json`
//! embedded in the sigstore-trust-root crate, unless `security.trusted_root`
//! (or `--trusted-root`) names another one (a private instance, or a fresher
//! copy for air-gapped use). Nothing here reaches the network: squizzle does
//! not fetch trust roots through TUF, so `verify --offline` and a
//! verification with network differ only in where bundles are found.
//!
//! Signing uses the services of `security.signing_config`, or the URLs in
//! `[security]`, or the public-good snapshot embedded in the crate.

use std::path::{Path, PathBuf};

use sigstore_sign::SigningServices;
use sigstore_sign::trust_root::{SIGSTORE_PRODUCTION_TRUSTED_ROOT, SigningConfig, TrustedRoot};

use super::SigningError;

/// A loaded trust root and where it came from.
pub struct Trust {
    pub root: TrustedRoot,
    pub source: String,
}

/// The trusted root in the file at `path`, or the embedded public-good one
/// when no file is named.
pub fn trusted_root(path: Option<&Path>) -> Result<Trust, SigningError> {
    match path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| {
                SigningError::Usage(format!("cannot read the trusted root {}: {e}", p.display()))
            })?;
            let root = TrustedRoot::from_json(&text).map_err(|e| {
                SigningError::Usage(format!(
                    "{} is not a Sigstore trusted_root.json: {e}",
                    p.display()
                ))
            })?;
            Ok(Trust {
                root,
                source: p.display().to_string(),
            })
        }
        None => embedded(),
    }
}

/// The public-good trusted root embedded in squizzle (from the
/// sigstore-trust-root crate): no network, no TUF.
pub fn embedded() -> Result<Trust, SigningError> {
    Ok(Trust {
        root: TrustedRoot::from_json(SIGSTORE_PRODUCTION_TRUSTED_ROOT)
            .map_err(|e| SigningError::Usage(format!("embedded trusted root: {e}")))?,
        source: "the embedded Sigstore public-good root".into(),
    })
}

/// Where a private Sigstore instance is, as configured: a signing config
/// file, or the service URLs. All empty means the public-good instance.
#[derive(Debug, Clone, Default)]
pub struct ServiceSpec {
    pub signing_config: Option<PathBuf>,
    pub fulcio_url: Option<String>,
    pub rekor_url: Option<String>,
    pub tsa_url: Option<String>,
    pub oidc_url: Option<String>,
}

/// The services keyless signing talks to.
pub fn signing_services(s: &ServiceSpec) -> Result<SigningServices, SigningError> {
    if let Some(p) = &s.signing_config {
        let sc = SigningConfig::from_file(p).map_err(|e| {
            SigningError::Usage(format!(
                "{} is not a usable Sigstore signing_config.json: {e}",
                p.display()
            ))
        })?;
        return SigningServices::from_signing_config(&sc)
            .map_err(|e| SigningError::Usage(format!("{}: {e}", p.display())));
    }
    match (&s.fulcio_url, &s.rekor_url) {
        (Some(fulcio), Some(rekor)) => {
            let mut services = SigningServices::new(fulcio.clone(), rekor.clone());
            if let Some(tsa) = &s.tsa_url {
                services = services.with_tsa_url(tsa.clone());
            }
            if let Some(oidc) = &s.oidc_url {
                services = services.with_oidc_url(oidc.clone());
            }
            Ok(services)
        }
        (None, None) if s.tsa_url.is_none() => {
            SigningServices::from_embedded(sigstore_sign::SigstoreInstance::PublicGood)
                .map_err(|e| SigningError::Usage(format!("embedded signing config: {e}")))
        }
        _ => Err(SigningError::Usage(
            "a private Sigstore instance needs both `security.fulcio_url` and `security.rekor_url` (or `security.signing_config`)".into(),
        )),
    }
}
