//! `squizzle keygen`

use std::path::PathBuf;

use clap::Args;

use super::Context;
use crate::core::exit::ExitCode;
use crate::ops::keygen::KeygenOptions;
use crate::ops::{self, Error};

#[derive(Debug, Args)]
#[command(
    about = "Write a key pair for air-gapped signing (`sign --key`, `verify --key`)",
    after_help = "The private key is an encrypted PKCS#8 PEM (PBES2: PBKDF2-HMAC-SHA256 + AES-256-CBC), \
                  encrypted with the passphrase in SQUIZZLE_KEY_PASSWORD; the public key is an SPKI PEM. \
                  Existing files are never overwritten.\n\n\
                  Examples:\n  SQUIZZLE_KEY_PASSWORD=... squizzle keygen\n  \
                  SQUIZZLE_KEY_PASSWORD=... squizzle keygen --output-prefix keys/release"
)]
pub struct KeygenArgs {
    /// Writes PREFIX.key and PREFIX.pub.
    #[arg(long, default_value = "squizzle", value_name = "PREFIX")]
    output_prefix: PathBuf,
}

pub fn exec(ctx: &Context, args: KeygenArgs) -> Result<ExitCode, Error> {
    let report = ops::keygen::keygen(
        &ctx.env,
        &KeygenOptions {
            output_prefix: args.output_prefix,
        },
    )?;
    let p = &ctx.printer;
    if p.is_json() {
        p.report(&report);
    } else {
        p.ok(&format!(
            "Private key written to {} (encrypted)",
            report.private_key.display()
        ));
        p.ok(&format!(
            "Public key written to {}",
            report.public_key.display()
        ));
        p.info(&format!("Fingerprint: {}", report.fingerprint));
    }
    Ok(ExitCode::Ok)
}
