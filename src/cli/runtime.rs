//! The async runtime every command that talks to a registry, a database or a
//! signing service runs its operation on.

use crate::ops::Error;

pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            action: "start the async runtime for",
            path: "squizzle".into(),
            source,
        })
}
