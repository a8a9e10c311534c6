//! Argument groups several commands share: the signature-policy flags, the
//! flags of commands that run SQL, and how to sign.

use std::path::PathBuf;

use clap::Args;

use crate::config::{Signer, TxMode};
use crate::ops::release::attest::SignOptions;
use crate::ops::release::evidence::PolicyOverrides;
use crate::ops::run::{RunOptions, Timeouts};
use crate::ops::{self, Error};

/// How to reach the registry; every command that may talk to one takes it.
#[derive(Debug, Clone, Default, Args)]
pub struct RegistryArgs {
    /// Talk plain HTTP to the registry (as `[registry] insecure = true`);
    /// oras's name, with cosign's and squizzle's older one as aliases.
    /// Registries on loopback may always use HTTP.
    #[arg(
        long = "plain-http",
        visible_aliases = ["allow-http-registry", "insecure-registry"],
        env = "SQUIZZLE_PLAIN_HTTP",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub insecure_registry: bool,
}

/// Signature policy flags, shared by verify and apply. Any of them replaces
/// the configured signers (or keys) and makes a signature required.
#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// Accept signatures whose certificate identity is exactly this.
    #[arg(
        long,
        value_name = "IDENTITY",
        env = "SQUIZZLE_CERTIFICATE_IDENTITY",
        conflicts_with = "certificate_identity_regexp"
    )]
    pub certificate_identity: Option<String>,
    /// Accept certificate identities matching this regular expression (whole value).
    #[arg(
        long,
        value_name = "REGEX",
        env = "SQUIZZLE_CERTIFICATE_IDENTITY_REGEXP"
    )]
    pub certificate_identity_regexp: Option<String>,
    /// The OIDC issuer the identity must come from, exactly.
    #[arg(
        long,
        value_name = "URL",
        env = "SQUIZZLE_CERTIFICATE_OIDC_ISSUER",
        conflicts_with = "certificate_oidc_issuer_regexp"
    )]
    pub certificate_oidc_issuer: Option<String>,
    /// The OIDC issuer, as a regular expression (whole value).
    #[arg(
        long,
        value_name = "REGEX",
        env = "SQUIZZLE_CERTIFICATE_OIDC_ISSUER_REGEXP"
    )]
    pub certificate_oidc_issuer_regexp: Option<String>,
    /// Accept key-pair signatures made with this public key (repeatable).
    #[arg(long = "key", value_name = "PUBLIC_KEY")]
    pub keys: Vec<PathBuf>,
    /// Sigstore trusted_root.json to verify against (default: [security] trusted_root, else public-good).
    #[arg(long, value_name = "PATH", env = "SQUIZZLE_TRUSTED_ROOT")]
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
            crate::core::policy::SignerRule::from_spec(&s).map_err(|m| {
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

/// Options shared by the commands that run a release's SQL (`apply`, `rollback`).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// release: everything in one transaction (default); file: each file commits on its own.
    #[arg(long, value_enum, env = "SQUIZZLE_TX_MODE")]
    pub tx_mode: Option<TxMode>,
    /// How long to wait for another squizzle's migration lock (default 5m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, env = "SQUIZZLE_LOCK_TIMEOUT")]
    pub lock_timeout: Option<std::time::Duration>,
    /// PostgreSQL statement_timeout for each statement.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, env = "SQUIZZLE_STATEMENT_TIMEOUT")]
    pub statement_timeout: Option<std::time::Duration>,
    /// PostgreSQL lock_timeout: how long one statement may wait for a table lock.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, env = "SQUIZZLE_STATEMENT_LOCK_TIMEOUT")]
    pub statement_lock_timeout: Option<std::time::Duration>,
    #[command(flatten)]
    pub policy: super::args::PolicyArgs,
    /// Never contact the registry: the release and its signatures must be in the local store.
    #[arg(long)]
    pub offline: bool,
    /// Also consider this signature bundle file.
    #[arg(long, value_name = "PATH")]
    pub bundle: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

impl RunArgs {
    pub fn options(&self) -> Result<RunOptions, Error> {
        Ok(RunOptions {
            tx_mode: self.tx_mode,
            timeouts: Timeouts {
                lock: self.lock_timeout,
                statement: self.statement_timeout,
                statement_lock: self.statement_lock_timeout,
            },
            verify: self.verify_options()?,
            offline: self.offline,
        })
    }

    pub fn verify_options(&self) -> Result<crate::ops::release::verify::VerifyOptions, Error> {
        Ok(crate::ops::release::verify::VerifyOptions {
            policy: self.policy.overrides()?,
            bundle: self.bundle.clone(),
            allow_revoked: false,
        })
    }
}

pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    crate::core::duration::parse(s)
}

/// How to sign; shared with `build --sign`.
#[derive(Debug, Clone, Args)]
pub struct SignHow {
    /// OIDC identity token (prefer SIGSTORE_ID_TOKEN: arguments are visible to other users).
    #[arg(long, value_name = "JWT", hide_env_values = true)]
    pub identity_token: Option<String>,
    /// Sign with this private key (from `squizzle keygen`; passphrase in SQUIZZLE_KEY_PASSWORD).
    #[arg(long, value_name = "PATH", conflicts_with = "identity_token")]
    pub key: Option<PathBuf>,
}

impl SignHow {
    pub fn options(&self) -> SignOptions {
        SignOptions {
            identity_token: self.identity_token.clone(),
            key: self.key.clone(),
        }
    }
}

/// Which release a build is compared with, and what it may change of the
/// migrations released before (shared by build and check).
#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// Compare with this release instead of the newest older one (taken from
    /// the local store, else pulled from the registry); `none` declares a
    /// first release, and is recorded as the reason nothing was compared.
    #[arg(long, value_name = "VERSION|none")]
    pub previous: Option<String>,
    /// Accept the edit, removal, rename or move of this released migration
    /// (its id, e.g. 0001_init; repeatable). Recorded with --reason in the
    /// signed manifest; verify and apply show it.
    #[arg(long, value_name = "ID", requires = "reason")]
    pub allow_rewrite: Vec<String>,
    /// Accept new migrations ordered before released ones (recorded like
    /// --allow-rewrite).
    #[arg(long, requires = "reason")]
    pub allow_out_of_order: bool,
    /// Accept the findings with this id in this file (e.g.
    /// drop-table:migrations/0005_drop.sql; repeatable), so an environment
    /// whose deny policy names them still applies the release. Recorded with
    /// --reason in the signed manifest; an allowance that matches no finding
    /// is refused.
    #[arg(long = "allow", value_name = "ID:FILE", requires = "reason")]
    pub allow_findings: Vec<String>,
    /// Why the allowances are right; recorded with each of them.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

impl HistoryArgs {
    pub fn options(&self) -> Result<ops::lineage::LineageOptions, Error> {
        if self.reason.is_some()
            && self.allow_rewrite.is_empty()
            && !self.allow_out_of_order
            && self.allow_findings.is_empty()
        {
            return Err(Error::Usage(
                "--reason explains an allowance: give --allow-rewrite ID, --allow-out-of-order or --allow ID:FILE with it".into(),
            ));
        }
        Ok(ops::lineage::LineageOptions {
            previous: match &self.previous {
                Some(p) => ops::lineage::PreviousChoice::parse(p)?,
                None => ops::lineage::PreviousChoice::Newest,
            },
            allow_rewrite: self.allow_rewrite.clone(),
            allow_out_of_order: self.allow_out_of_order,
            allow_findings: self.allow_findings.clone(),
            reason: self.reason.clone(),
        })
    }
}

/// How a command runs over a fleet (an environment with `targets`,
/// `schemas`, `targets_file` or `targets_query`; docs/fleet.md).
#[derive(Debug, Args)]
pub struct FleetArgs {
    /// Fleet: targets in flight at once.
    #[arg(long, value_name = "N", env = "SQUIZZLE_PARALLEL", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub parallel: Option<u32>,
    /// Fleet: only targets whose identity hashes to I of N shards (0 <= I < N),
    /// e.g. `--shard "$JOB_COMPLETION_INDEX/4"` in a Kubernetes Indexed Job.
    #[arg(long, value_name = "I/N", env = "SQUIZZLE_SHARD")]
    pub shard: Option<String>,
}

impl FleetArgs {
    /// Default number of targets in flight.
    pub const DEFAULT_PARALLEL: usize = 4;

    pub fn given(&self) -> Option<&'static str> {
        if self.parallel.is_some() {
            Some("--parallel")
        } else if self.shard.is_some() {
            Some("--shard")
        } else {
            None
        }
    }

    pub fn parallel(&self) -> usize {
        self.parallel.map_or(Self::DEFAULT_PARALLEL, |n| n as usize)
    }

    pub fn shard(&self) -> Result<Option<crate::ops::fleet::Shard>, Error> {
        self.shard
            .as_deref()
            .map(crate::ops::fleet::Shard::parse)
            .transpose()
    }
}

/// The refusal of a fleet flag on an environment that names one database.
pub fn not_a_fleet(flag: &str, environment: Option<&str>) -> Error {
    let name = environment.unwrap_or("default");
    Error::Usage(format!(
        "{flag} is for fleets, but environment {name} names one database; give it `targets`, `schemas`, `targets_file` or `targets_query` (docs/fleet.md), or drop {flag}"
    ))
}
