//! A snapshot of the process environment, taken once by the CLI at start-up
//! and handed down: code below the CLI reads variables only through it, so
//! tests build their own and nothing changes underneath a running command.

use std::collections::BTreeMap;

/// A snapshot of environment variables. Tests build their own; the CLI takes
/// the process environment once at start-up.
#[derive(Debug, Clone, Default)]
pub struct Env(BTreeMap<String, String>);

impl Env {
    pub fn process() -> Self {
        Self(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        )
    }
    pub fn from_pairs<I: IntoIterator<Item = (K, V)>, K: Into<String>, V: Into<String>>(
        pairs: I,
    ) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
    pub fn get(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
}
