//! What an application's CI does before any deploy job runs: build a plain
//! project's release, sign it keyless as a workflow identity (loopback
//! Sigstore services), push it with its signature to a registry.

use crate::World;
use crate::registry::Registry;
use crate::sigstore::{Identity, SigstoreServices};

/// A plain project whose `version` is built, signed keyless as `identity`
/// and pushed to `<registry>/acme/db`. The returned world is CI's checkout
/// (its local store holds the release; `tag_digest` gives its digest).
pub fn release_keyless(
    s: &SigstoreServices,
    reg: &Registry,
    identity: &str,
    version: &str,
) -> World {
    let ci = World::plain();
    ci.config(&format!(
        "[project]\nmigrations = \"migrations\"\n\n[registry]\nurl = \"{}/acme/db\"\n\n[security]\nfulcio_url = {:?}\nrekor_url = {:?}\ntrusted_root = {:?}\n",
        reg.url(),
        s.fulcio_url(),
        s.rekor_url(),
        s.trusted_root_path().display().to_string(),
    ));
    ci.build_ok(version);
    ci.run_with_env(
        &["sign", version],
        &[("SIGSTORE_ID_TOKEN", &s.mint_token(&Identity::uri(identity)))],
    )
    .success();
    ci.run(&["push", version]).success();
    ci
}
