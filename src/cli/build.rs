//! `squizzle build <version>`

use clap::Args;

use super::Context;
use super::output::bytes;
use crate::core::exit::ExitCode;
use crate::core::version::Version;
use crate::ops::{self, build::BuildOptions};

#[derive(Debug, Args)]
#[command(
    about = "Pack the migrations into a reproducible release artifact in the local store",
    after_help = "Writes db/tarballs/squizzle-<version>.tar.gz and .manifest.json and stores the\nrelease (an OCI artifact tagged <version>) in the local OCI layout (db/oci).\nSet SOURCE_DATE_EPOCH for byte-identical rebuilds.\n\nExamples:\n  squizzle build 1.0.0\n  squizzle build v1.4.0-rc.1 --notes 'add invoices table'\n  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) squizzle build 1.0.0 --output json"
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
    #[command(flatten)]
    how: super::args::SignHow,
}

pub fn exec(ctx: &Context, args: BuildArgs) -> Result<ExitCode, ops::Error> {
    let version = Version::parse(&args.version)?;
    let config = ctx.config()?;
    let started = ops::host::now_rfc3339();
    let report = ops::build::build(
        &config,
        &ctx.env,
        &BuildOptions {
            version: version.clone(),
            notes: args.notes.clone(),
        },
    )?;
    let p = &ctx.printer;
    for w in &report.warnings {
        p.warn(w);
    }
    let finished = ops::host::now_rfc3339();
    if (args.how.key.is_some() || args.how.identity_token.is_some())
        && !args.sign
        && !args.provenance
    {
        return Err(ops::Error::Usage(
            "--key and --identity-token only make sense with --sign or --provenance".into(),
        ));
    }
    if p.is_json() {
        let rt = super::runtime::runtime()?;
        let mut doc = serde_json::json!({ "build": report });
        if args.sign {
            let signed = rt.block_on(ops::sign::sign(
                &config,
                &ctx.env,
                &version,
                &args.how.options(),
                &mut |_| {},
            ))?;
            doc["signature"] = serde_json::to_value(signed).unwrap_or_default();
        }
        if args.provenance {
            let prov = rt.block_on(ops::release::attest::attest_provenance(
                &config,
                &ctx.env,
                &version,
                &args.how.options(),
                &started,
                &finished,
                &mut |_| {},
            ))?;
            doc["provenance"] = serde_json::to_value(prov).unwrap_or_default();
        }
        if args.sign || args.provenance {
            p.json(&doc);
        } else {
            p.json(&report);
        }
        return Ok(ExitCode::Ok);
    }
    let rel = |path: &std::path::Path| {
        path.strip_prefix(&config.root)
            .unwrap_or(path)
            .display()
            .to_string()
    };
    let source = match report.format {
        crate::core::manifest::SourceFormat::Drizzle => "drizzle-kit journal order",
        crate::core::manifest::SourceFormat::Plain => "numbered files",
    };
    p.ok(&format!(
        "Collected {} migrations ({source}), {} rollbacks, {} seeds",
        report.migrations, report.rollbacks, report.seeds
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
    if args.sign {
        super::report::sign_and_report(ctx, &config, &version, &args.how)?;
    }
    if args.provenance {
        let prov = super::runtime::runtime()?.block_on(ops::release::attest::attest_provenance(
            &config,
            &ctx.env,
            &version,
            &args.how.options(),
            &started,
            &finished,
            &mut super::report::printer_events(p),
        ))?;
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
    Ok(ExitCode::Ok)
}
