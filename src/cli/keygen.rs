//! `squizzle keygen`

use std::path::PathBuf;

use clap::Args;

use super::Context;
use crate::core::exit::ExitCode;
use crate::ops::{self, Error};
use crate::signing::keys;

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

pub fn exec(ctx: &Context, args: KeygenArgs) -> Result<ExitCode, ops::Error> {
    let pass = ctx
        .env
        .get(ops::release::attest::KEY_PASSWORD_VAR)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            Error::Usage(format!(
                "set {} to the passphrase that will protect the private key",
                ops::release::attest::KEY_PASSWORD_VAR
            ))
        })?;
    crate::core::redact::register_secret(&pass);
    let private = with_ext(&args.output_prefix, "key");
    let public = with_ext(&args.output_prefix, "pub");
    for p in [&private, &public] {
        if p.exists() {
            return Err(Error::Usage(format!(
                "{} already exists; keygen never overwrites a key: choose another --output-prefix",
                p.display()
            )));
        }
    }
    let generated = keys::generate(&pass).map_err(crate::signing::SigningError::from)?;
    write_new(&private, generated.private_key_pem.as_bytes(), true)?;
    write_new(&public, generated.public_key_pem.as_bytes(), false)?;
    let p = &ctx.printer;
    if p.is_json() {
        p.json(&serde_json::json!({
            "privateKey": private,
            "publicKey": public,
            "fingerprint": generated.public_key.fingerprint(),
        }));
    } else {
        p.ok(&format!(
            "Private key written to {} (encrypted)",
            private.display()
        ));
        p.ok(&format!("Public key written to {}", public.display()));
        p.info(&format!(
            "Fingerprint: {}",
            generated.public_key.fingerprint()
        ));
    }
    Ok(ExitCode::Ok)
}

fn with_ext(prefix: &std::path::Path, ext: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

fn write_new(path: &std::path::Path, bytes: &[u8], private: bool) -> Result<(), Error> {
    use std::io::Write;
    let io = |source| Error::Io {
        action: "write",
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if private { 0o600 } else { 0o644 });
    }
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(())
}
