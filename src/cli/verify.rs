//! `squizzle verify <version>`

use std::path::PathBuf;

use clap::Args;

use super::Context;
use super::apply::runtime;
use crate::config::Signer;
use crate::core::exit::ExitCode;
use crate::core::version::Version;
use crate::ops::evidence::PolicyOverrides;
use crate::ops::verify::VerifyOptions;
use crate::ops::{self, verify::Failure, verify::Status};

#[derive(Debug, Args)]
#[command(
    about = "Check a release's digests, every file hash and its signature against the policy",
    after_help = "Signatures are looked for among the release's referrers (pushed and pulled with it) and in \
                  db/tarballs/squizzle-<version>.sigstore.json. With a registry configured, a missing release is \
                  pulled and new referrers are fetched first, unless --offline. Keyless signatures are checked \
                  against the trusted root (the embedded Sigstore public-good root, or [security] trusted_root): \
                  certificate chain and SCT, signature over this release's manifest digest, transparency-log \
                  inclusion proof and checkpoint, timestamps, then the signer rules ([[security.signers]] or the \
                  --certificate-* flags; a regular expression must match the whole value).\n\n\
                  Examples:\n  squizzle verify 1.0.0\n  squizzle verify 1.0.0 --env production --output json\n  \
                  squizzle verify 1.0.0 --certificate-identity-regexp 'https://github\\.com/acme/app/\\.github/workflows/release\\.yml@refs/tags/v.*' \\\n      \
                  --certificate-oidc-issuer https://token.actions.githubusercontent.com\n  \
                  squizzle verify 1.0.0 --offline --key squizzle.pub --bundle release.sigstore.json"
)]
pub struct VerifyArgs {
    /// Release version to verify.
    version: String,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Never contact the registry: use only what is in the local store and files.
    #[arg(long)]
    pub offline: bool,
    /// Also consider this bundle file.
    #[arg(long, value_name = "PATH")]
    pub bundle: Option<PathBuf>,
}

/// Signature policy flags, shared by verify and apply. Any of them replaces
/// the configured signers (or keys) and makes a signature required.
#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// Accept signatures whose certificate identity is exactly this.
    #[arg(
        long,
        value_name = "IDENTITY",
        conflicts_with = "certificate_identity_regexp"
    )]
    pub certificate_identity: Option<String>,
    /// Accept certificate identities matching this regular expression (whole value).
    #[arg(long, value_name = "REGEX")]
    pub certificate_identity_regexp: Option<String>,
    /// The OIDC issuer the identity must come from, exactly.
    #[arg(
        long,
        value_name = "URL",
        conflicts_with = "certificate_oidc_issuer_regexp"
    )]
    pub certificate_oidc_issuer: Option<String>,
    /// The OIDC issuer, as a regular expression (whole value).
    #[arg(long, value_name = "REGEX")]
    pub certificate_oidc_issuer_regexp: Option<String>,
    /// Accept key-pair signatures made with this public key (repeatable).
    #[arg(long = "key", value_name = "PUBLIC_KEY")]
    pub keys: Vec<PathBuf>,
    /// Sigstore trusted_root.json to verify against (default: [security] trusted_root, else public-good).
    #[arg(long, value_name = "PATH")]
    pub trusted_root: Option<PathBuf>,
}

impl PolicyArgs {
    pub fn overrides(&self) -> Result<PolicyOverrides, ops::Error> {
        let any_identity = self.certificate_identity.is_some()
            || self.certificate_identity_regexp.is_some()
            || self.certificate_oidc_issuer.is_some()
            || self.certificate_oidc_issuer_regexp.is_some();
        let mut signers = Vec::new();
        if any_identity {
            let s = Signer {
                identity: self.certificate_identity.clone(),
                identity_regexp: self.certificate_identity_regexp.clone(),
                issuer: self.certificate_oidc_issuer.clone(),
                issuer_regexp: self.certificate_oidc_issuer_regexp.clone(),
            };
            crate::signing::policy::SignerRule::from_config(&s).map_err(|m| {
                ops::Error::Usage(format!(
                    "{m} (flags: --certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp])"
                ))
            })?;
            signers.push(s);
        }
        Ok(PolicyOverrides {
            require: any_identity || !self.keys.is_empty(),
            signers,
            keys: self.keys.clone(),
            trusted_root: self.trusted_root.clone(),
        })
    }
}

pub fn exec(ctx: &Context, args: VerifyArgs) -> Result<ExitCode, ops::Error> {
    let version = Version::parse(&args.version)?;
    let config = ctx.config()?;
    let opts = VerifyOptions {
        policy: args.policy.overrides()?,
        bundle: args.bundle.clone(),
        allow_revoked: false,
    };
    let p = &ctx.printer;
    let fetched = runtime()?.block_on(ops::transfer::fetch_release_and_evidence(
        &config,
        &version,
        args.offline,
        true,
    ))?;
    if let Some(pulled) = &fetched.pulled {
        p.ok(&format!(
            "Pulled {} from {}",
            pulled.version, pulled.registry
        ));
    }
    if let Some(why) = &fetched.refresh_failed {
        p.warn(&format!(
            "Could not check the registry for new signatures or revocations ({why}); using what the local store has"
        ));
    }
    let report = ops::verify::verify(&config, &version, &opts)?;
    let code = match report.failure() {
        None => ExitCode::Ok,
        Some(Failure::Integrity) => ExitCode::Integrity,
        Some(Failure::Signature) => ExitCode::Signature,
        Some(Failure::Revoked) => ExitCode::Revoked,
    };
    let p = &ctx.printer;
    if p.is_json() {
        p.json(&report);
        return Ok(code);
    }
    print_checks(p, &report);
    match report.failure() {
        None => p.info(&format!("{} {} verified", report.version, report.digest)),
        Some(Failure::Integrity) => p.fail(&format!(
            "Integrity check failed for {}: do not apply it; rebuild it from source or pull it again",
            report.version
        )),
        Some(Failure::Signature) => p.fail(&format!("Signature policy not satisfied for {}", report.version)),
        Some(Failure::Revoked) => p.fail(&format!(
            "{} is revoked: do not deploy it; see docs/incident-response.md",
            report.version
        )),
    }
    Ok(code)
}

/// The seed-style check lines of a verify report (used by verify and apply).
pub fn print_checks(p: &super::output::Printer, report: &crate::ops::verify::VerifyReport) {
    for check in &report.checks {
        if check.name == "files" {
            for f in report.files.iter().filter(|f| !f.ok) {
                p.fail(&format!("Checksum mismatch in {}", f.path));
                p.fail_detail(&format!(
                    "Expected: {} ({} bytes)",
                    f.expected_sha256, f.expected_size
                ));
                p.fail_detail(&format!(
                    "Actual:   {} ({} bytes)",
                    f.actual_sha256, f.actual_size
                ));
            }
        }
        match check.status {
            Status::Pass if check.name == "signature" => {
                p.ok("Verifying signature...");
                if let Some(s) = &report.signature {
                    print_signer(p, s);
                }
                p.ok(&check.detail);
            }
            Status::Pass if check.name == "provenance" => {
                p.ok(&check.detail);
                if let Some(pv) = &report.provenance {
                    p.info(&format!("Builder: {}", pv.builder_id));
                    if let Some(r) = &pv.repository {
                        let at = match (&pv.git_ref, &pv.revision) {
                            (Some(g), Some(rev)) => format!(" {g} ({rev})"),
                            (None, Some(rev)) => format!(" ({rev})"),
                            (Some(g), None) => format!(" {g}"),
                            (None, None) => String::new(),
                        };
                        p.info(&format!("Source: {r}{at}"));
                    }
                    if let Some(i) = &pv.invocation_id {
                        p.info(&format!("Build run: {i}"));
                    }
                }
            }
            Status::Pass => p.ok(&check.detail),
            Status::Skip if check.name == "revocation" => p.warn(&check.detail),
            Status::Skip => p.skip(&check.detail),
            Status::Fail => {
                p.fail(&check.detail);
                if let Some(e) = &check.expected {
                    p.fail_detail(&format!("Expected: {e}"));
                }
                if let Some(a) = &check.actual {
                    p.fail_detail(&format!("Actual:   {a}"));
                }
            }
        }
        if check.name == "files" && report.failure() != Some(Failure::Integrity) {
            p.ok("Integrity verified");
        }
    }
}

fn print_signer(p: &super::output::Printer, s: &crate::signing::verify::Verified) {
    if s.method == "keyless" {
        p.info(&format!("Signed by: {}", s.identity));
        p.info(&format!("Issuer: {}", s.issuer));
    } else {
        p.info(&format!("Signed by: {} ({})", s.identity, s.issuer));
    }
    if let Some(t) = &s.signed_at {
        p.info(&format!("Signed at: {t}"));
    }
    if let Some(i) = s.log_index {
        p.info(&format!(
            "Transparency log index: {i} (inclusion proof verified)"
        ));
    }
    if let Some(r) = &s.rule {
        p.info(&format!("Policy: {r}"));
    }
}
