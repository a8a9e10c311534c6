//! `sign`: a signature statement over a built release's OCI manifest digest,
//! signed keylessly (Fulcio + Rekor) or with a key pair, stored as a referrer
//! of the release in the local store and as a file next to the tarball.
//! `push` publishes it with the release.

use std::path::PathBuf;

use serde::Serialize;

use crate::config::{Config, Env};
use crate::core::digest::Digest;
use crate::core::version::Version;
use crate::ops::release::evidence::{self, Kind};
use crate::ops::release::provenance;
use crate::ops::release::resolve;
use crate::ops::release::verify;
use crate::ops::{Error, Result};
use crate::signing::statement::{self, signature_statement};
use crate::signing::{SigningError, keyless, keys, token, trust};

/// Environment variable holding the passphrase of a `keygen` private key.
pub const KEY_PASSWORD_VAR: &str = "SQUIZZLE_KEY_PASSWORD";

#[derive(Debug, Clone, Default)]
pub struct SignOptions {
    pub identity_token: Option<String>,
    /// Sign with this private key (from `squizzle keygen`) instead of keyless.
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignReport {
    pub version: String,
    pub digest: Digest,
    /// `keyless` or `key`.
    pub method: &'static str,
    /// Certificate identity (keyless) or key fingerprint.
    pub identity: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_index: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rekor_url: Option<String>,
    pub timestamped: bool,
    pub bundle: PathBuf,
    pub referrer: Digest,
}

/// Progress, for the CLI's seed-style lines.
pub enum SignEvent<'a> {
    Authenticated {
        identity: &'a str,
        issuer: &'a str,
        source: token::TokenSource,
    },
    Logged {
        index: Option<u64>,
        rekor_url: &'a str,
    },
}

pub async fn sign_release(
    config: &Config,
    env: &Env,
    version: &Version,
    opts: &SignOptions,
    on: &mut dyn FnMut(SignEvent<'_>),
) -> Result<SignReport> {
    let store = resolve::open_local(config, version)?;
    let release = resolve::resolve(&store, version)?;
    verify::require_integrity(config, &store, &release, "sign")?;
    let statement = signature_statement(&subject_name(config), &release.digest());
    let signed = sign_statement(config, env, &statement, opts, on).await?;
    let path = evidence::bundle_file(config, &release.manifest.version.to_string());
    let referrer = evidence::attach(&store, &release, &signed.bundle_json, Kind::Signature)?;
    write_file(&path, &signed.bundle_json)?;
    Ok(SignReport {
        version: release.tag.clone(),
        digest: release.digest(),
        method: signed.method,
        identity: signed.identity,
        issuer: signed.issuer,
        log_index: signed.log_index,
        rekor_url: signed.rekor_url,
        timestamped: signed.timestamped,
        bundle: path,
        referrer: referrer.digest,
    })
}

/// `build --provenance`: a SLSA v1 provenance statement about the release,
/// signed like its signature, stored as a referrer and next to the tarball.
pub async fn attest_provenance(
    config: &Config,
    env: &Env,
    version: &Version,
    opts: &SignOptions,
    started: &str,
    finished: &str,
    on: &mut dyn FnMut(SignEvent<'_>),
) -> Result<ProvenanceReport> {
    let store = resolve::open_local(config, version)?;
    let release = resolve::resolve(&store, version)?;
    verify::require_integrity(config, &store, &release, "attest")?;
    let ctx = provenance::BuildContext::detect(config, env, &release.manifest);
    let predicate = provenance::predicate(&release.manifest, &ctx, env, started, finished);
    // About the release's config blob, not its manifest digest, so that no
    // stock verifier takes it for a signature (evidence.rs).
    let st = statement::statement(
        &subject_name(config),
        &Kind::Provenance.subject_of(&release),
        statement::PROVENANCE_PREDICATE,
        predicate,
    );
    let signed = sign_statement(config, env, &st, opts, on).await?;
    let referrer = evidence::attach(&store, &release, &signed.bundle_json, Kind::Provenance)?;
    let path = config.tarballs_dir().join(format!(
        "squizzle-{}.provenance.sigstore.json",
        release.manifest.version
    ));
    write_file(&path, &signed.bundle_json)?;
    Ok(ProvenanceReport {
        version: release.tag.clone(),
        digest: release.digest(),
        builder_id: ctx.builder_id,
        repository: ctx.repository,
        git_ref: ctx.git_ref,
        revision: ctx.revision,
        signer: signed.identity,
        bundle: path,
        referrer: referrer.digest,
    })
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvenanceReport {
    pub version: String,
    pub digest: Digest,
    pub builder_id: String,
    pub repository: Option<String>,
    pub git_ref: Option<String>,
    pub revision: Option<String>,
    pub signer: String,
    pub bundle: PathBuf,
    pub referrer: Digest,
}

/// A signed statement, ready to be stored.
pub struct SignedStatement {
    pub bundle_json: Vec<u8>,
    pub method: &'static str,
    pub identity: String,
    pub issuer: Option<String>,
    pub log_index: Option<u64>,
    pub rekor_url: Option<String>,
    pub timestamped: bool,
}

/// Signs any statement the way `opts` says: with the private key, or
/// keylessly with the identity token. Used for signatures, provenance and
/// revocations alike.
pub async fn sign_statement(
    config: &Config,
    env: &Env,
    statement: &[u8],
    opts: &SignOptions,
    on: &mut dyn FnMut(SignEvent<'_>),
) -> Result<SignedStatement> {
    sign_statement_as(config, env, &|_| statement.to_vec(), opts, on).await
}

/// As [`sign_statement`], for a statement that names its signer: `build`
/// gets the signer's identity (certificate identity, or `key <fingerprint>`)
/// once it is known, before anything is signed.
pub async fn sign_statement_as(
    config: &Config,
    env: &Env,
    build: &dyn Fn(&str) -> Vec<u8>,
    opts: &SignOptions,
    on: &mut dyn FnMut(SignEvent<'_>),
) -> Result<SignedStatement> {
    let signed = if let Some(key_path) = &opts.key {
        let pem = std::fs::read_to_string(key_path).map_err(|e| {
            Error::Usage(format!(
                "cannot read the private key {}: {e}",
                key_path.display()
            ))
        })?;
        let passphrase = env.get(KEY_PASSWORD_VAR).unwrap_or_default();
        if passphrase.is_empty() {
            return Err(SigningError::Usage(format!(
                "set {KEY_PASSWORD_VAR} to the passphrase of {} (the one given to `squizzle keygen`)",
                key_path.display()
            ))
            .into());
        }
        crate::core::redact::register_secret(&passphrase);
        let key = keys::load_private_key(&pem, &passphrase)
            .map_err(|e| SigningError::Usage(format!("{}: {e}", key_path.display())))?;
        let fp = key.public_key().fingerprint().to_owned();
        let statement = build(&format!("key {fp}"));
        let bundle = keys::sign_statement(&key, &statement).map_err(SigningError::from)?;
        SignedStatement {
            bundle_json: to_json(&bundle)?,
            method: "key",
            identity: format!("key {fp}"),
            issuer: None,
            log_index: None,
            rekor_url: None,
            timestamped: false,
        }
    } else {
        // The services first: a configuration error should not wait for
        // (or spend) an identity token.
        let s = &config.security;
        let services = trust::signing_services(&trust::ServiceSpec {
            signing_config: s.signing_config.as_deref().map(|p| config.path(p)),
            fulcio_url: s.fulcio_url.clone(),
            rekor_url: s.rekor_url.clone(),
            tsa_url: s.tsa_url.clone(),
            oidc_url: s.oidc_url.clone(),
        })?;
        let (tok, source) = token::identity_token(opts.identity_token.as_deref(), env).await?;
        let who = tok.identity().to_owned();
        let iss = tok.issuer().to_owned();
        on(SignEvent::Authenticated {
            identity: &who,
            issuer: &iss,
            source,
        });
        let statement = build(&who);
        let signed = keyless::sign_statement(services, tok, &statement).await?;
        on(SignEvent::Logged {
            index: signed.log_index,
            rekor_url: &signed.rekor_url,
        });
        SignedStatement {
            bundle_json: to_json(&signed.bundle)?,
            method: "keyless",
            identity: who,
            issuer: Some(iss),
            log_index: signed.log_index,
            rekor_url: Some(signed.rekor_url),
            timestamped: signed.timestamped,
        }
    };
    Ok(signed)
}

fn to_json(bundle: &sigstore_sign::types::Bundle) -> Result<Vec<u8>> {
    bundle
        .to_json()
        .map(String::into_bytes)
        .map_err(|e| Error::Signature(format!("cannot serialize the bundle: {e}")))
}

/// The statement's subject name: the registry repository when there is one
/// (as cosign names container subjects), else the project name. Only the
/// digest is security relevant.
pub fn subject_name(config: &Config) -> String {
    config
        .registry
        .as_ref()
        .and_then(|r| r.url.clone())
        .filter(|u| !u.trim().is_empty())
        .or_else(|| config.project.name.clone())
        .unwrap_or_else(|| "squizzle".into())
}

pub fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io {
        action: "write",
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    std::io::Write::write_all(&mut tmp, bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}
