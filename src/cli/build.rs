//! `squizzle build <version>`

use std::path::PathBuf;

use clap::{ArgGroup, Args};

use super::Context;
use super::args::HistoryArgs;
use super::output::{Printer, bytes};
use super::report::{print_lineage, print_signed, printer_events};
use super::runtime::runtime;
use crate::config::Config;
use crate::core::exit::ExitCode;
use crate::core::version::Version;
use crate::ops;
use crate::ops::build::{BuildEvent, BuildOptions, BuildReport, ReleaseOptions};
use crate::ops::release::attest::{ProvenanceReport, SignOptions};

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("signing").args(["sign", "provenance"]).multiple(true)))]
#[command(
    about = "Pack the migrations into a reproducible release artifact in the local store",
    after_help = "Writes db/tarballs/squizzle-<version>.tar.gz and .manifest.json and stores the\nrelease (an OCI artifact tagged <version>) in the local OCI layout (db/oci).\nSet SOURCE_DATE_EPOCH for byte-identical rebuilds.\n\nThe migrations are compared with the previous release (the newest older one in the\nlocal store, else in the registry, or --previous): a released migration that was\nedited, removed, renamed or moved, or a new one placed before released ones, is\nrefused (exit 5) unless --allow-rewrite ID / --allow-out-of-order with --reason.\nA file with BEGIN/COMMIT, or CONCURRENTLY without -- squizzle:no-transaction,\nis refused (exit 2).\n\nExamples:\n  squizzle build 1.0.0\n  squizzle build v1.4.0-rc.1 --notes 'add invoices table'\n  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) squizzle build 1.0.0 --output json\n  squizzle build 1.4.0 --allow-rewrite 0001_init --reason 'comment typo, no SQL change'"
)]
pub struct BuildArgs {
    /// Release version (semver; a leading `v` is dropped).
    version: String,
    /// Release notes stored in the manifest.
    #[arg(long)]
    notes: Option<String>,
    /// Sign the release right after building it (as `squizzle sign` does).
    #[arg(long)]
    sign: bool,
    /// Also write a signed SLSA v1 provenance statement (builder, source,
    /// times from the CI environment), stored as a referrer like the signature.
    #[arg(long)]
    provenance: bool,
    /// OIDC identity token for --sign/--provenance (prefer SIGSTORE_ID_TOKEN:
    /// arguments are visible to other users).
    #[arg(long, value_name = "JWT", hide_env_values = true, requires = "signing")]
    identity_token: Option<String>,
    /// Sign with this private key (from `squizzle keygen`; passphrase in
    /// SQUIZZLE_KEY_PASSWORD) instead of keylessly.
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with = "identity_token",
        requires = "signing"
    )]
    key: Option<PathBuf>,
    #[command(flatten)]
    history: HistoryArgs,
}

pub fn exec(ctx: &Context, args: BuildArgs) -> Result<ExitCode, ops::Error> {
    let version = Version::parse(&args.version)?;
    let config = ctx.project_config()?;
    let opts = ReleaseOptions {
        build: BuildOptions {
            version,
            notes: args.notes.clone(),
            lineage: args.history.options()?,
        },
        sign: args.sign,
        provenance: args.provenance,
        how: SignOptions {
            identity_token: args.identity_token.clone(),
            key: args.key.clone(),
        },
    };
    let p = &ctx.printer;
    let json = p.is_json();
    let mut sign_progress = printer_events(p);
    let mut on = |event: BuildEvent<'_>| match event {
        BuildEvent::Built(report) => {
            for w in &report.warnings {
                p.warn(w);
            }
            if !json {
                print_built(p, &config, report);
            }
        }
        BuildEvent::Sign(e) if !json => sign_progress(e),
        BuildEvent::Signed(report) if !json => print_signed(p, report),
        BuildEvent::Attested(prov) if !json => print_attested(p, prov),
        _ => {}
    };
    let report =
        runtime()?.block_on(ops::build::build_release(&config, &ctx.env, &opts, &mut on))?;
    if json {
        if args.sign || args.provenance {
            p.report(&report);
        } else {
            p.report(&report.build);
        }
    }
    Ok(ExitCode::Ok)
}

fn print_built(p: &Printer, config: &Config, report: &BuildReport) {
    let rel = |path: &std::path::Path| {
        path.strip_prefix(&config.root)
            .unwrap_or(path)
            .display()
            .to_string()
    };
    let source = report.format.order_rule();
    p.ok(&format!(
        "Collected {} ({source}), {}, {}",
        super::output::count(report.migrations, "migration"),
        super::output::count(report.rollbacks, "rollback"),
        super::output::count(report.seeds, "seed")
    ));
    p.ok(&format!(
        "Packed {} ({}, {} uncompressed)",
        rel(&report.tarball),
        bytes(report.tarball_size),
        bytes(report.uncompressed_size)
    ));
    if report.unchanged {
        p.ok(&format!(
            "{} is already in {} with identical content; nothing changed",
            report.version,
            rel(&report.store)
        ));
    } else {
        p.ok(&format!(
            "Stored {} in {}",
            report.version,
            rel(&report.store)
        ));
    }
    p.info(&format!("Digest: {}", report.digest));
    p.info(&format!("Tarball sha256: {}", report.tarball_sha256));
    if let Some(prev) = &report.previous_version {
        p.info(&format!("Previous version: {prev}"));
    }
    // A build without a previous release has said why in a warning already.
    // Findings were warned about already, with the other warnings.
    if let Some(lineage) = report.lineage.as_ref().filter(|l| l.previous.is_some()) {
        let mut shown = lineage.clone();
        shown.findings.clear();
        print_lineage(p, &shown, true);
    }
}

fn print_attested(p: &Printer, prov: &ProvenanceReport) {
    p.ok(&format!("Provenance signed ({})", prov.signer));
    p.info(&format!("Builder: {}", prov.builder_id));
    if let Some(r) = &prov.repository {
        p.info(&format!(
            "Source: {r}{}{}",
            prov.git_ref
                .as_deref()
                .map(|g| format!(" {g}"))
                .unwrap_or_default(),
            prov.revision
                .as_deref()
                .map(|g| format!(" ({g})"))
                .unwrap_or_default()
        ));
    }
}
