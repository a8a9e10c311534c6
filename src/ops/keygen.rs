//! `keygen`: a key pair for air-gapped signing. The private key is written
//! encrypted with the passphrase from the environment, readable by its owner
//! only; existing files are never overwritten.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::Env;
use crate::ops::release::attest::KEY_PASSWORD_VAR;
use crate::ops::{Error, Result};
use crate::signing::keys;

#[derive(Debug, Clone)]
pub struct KeygenOptions {
    /// Writes PREFIX.key and PREFIX.pub.
    pub output_prefix: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeygenReport {
    pub private_key: PathBuf,
    pub public_key: PathBuf,
    pub fingerprint: String,
}

pub fn keygen(env: &Env, opts: &KeygenOptions) -> Result<KeygenReport> {
    let pass = env
        .get(KEY_PASSWORD_VAR)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            Error::Usage(format!(
                "set {KEY_PASSWORD_VAR} to the passphrase that will protect the private key"
            ))
        })?;
    crate::core::redact::register_secret(&pass);
    let private = with_ext(&opts.output_prefix, "key");
    let public = with_ext(&opts.output_prefix, "pub");
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
    Ok(KeygenReport {
        private_key: private,
        public_key: public,
        fingerprint: generated.public_key.fingerprint().to_owned(),
    })
}

fn with_ext(prefix: &Path, ext: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

fn write_new(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
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
