//! Interoperability: what `squizzle push` stores in a real registry (CNCF
//! distribution 2.8) is read back by an independent client, the PyPI `oras`
//! package (`oras.client.OrasClient`), whose layer bytes hash to the digest
//! squizzle built. Needs python3 with `oras` (`scripts/lib/setup.sh:
//! ensure_oras`); the test fails, never skips, without it.

use std::process::Command;

use squizzle_test_support::World;
use squizzle_test_support::registry::{Auth, Registry, RegistryOptions};

const REPO: &str = "acme/migrations";

const ORAS_PULL: &str = r#"
import hashlib, json, os, sys
import oras.client
host, ref, out = sys.argv[1], sys.argv[2], sys.argv[3]
client = oras.client.OrasClient(hostname=host, insecure=True)
manifest = client.get_manifest(ref)
layer = manifest["layers"][0]["digest"]
client.download_blob(ref, layer, out)
with open(out, "rb") as f:
    actual = "sha256:" + hashlib.sha256(f.read()).hexdigest()
print(json.dumps({"manifestLayer": layer, "downloaded": actual,
                  "artifactType": manifest.get("artifactType"),
                  "size": os.path.getsize(out)}))
"#;

#[test]
fn oras_pulls_the_layer_squizzle_pushed() {
    let reg = Registry::start(RegistryOptions { auth: Auth::None });
    let w = World::plain();
    w.config(&format!(
        "[project]\nmigrations = \"migrations\"\n\n[registry]\nurl = \"{}/{REPO}\"\n",
        reg.url()
    ));
    w.build_ok("1.0.0");
    w.run(&["push", "1.0.0"]).success();
    let layer = w.layer_digest("1.0.0");
    let size = w.blob(&layer).len();

    let out = w.root().join("oras-layer.tar.gz");
    let run = Command::new("python3")
        .arg("-c")
        .arg(ORAS_PULL)
        .arg(reg.url())
        .arg(format!("{}/{REPO}:1.0.0", reg.url()))
        .arg(&out)
        .output()
        .expect("python3 runs (scripts/lib/setup.sh: ensure_oras)");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "oras failed (is the `oras` package installed? scripts/lib/setup.sh: ensure_oras):\n{stdout}\n{stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("oras script output is not JSON ({e}):\n{stdout}\n{stderr}"));
    assert_eq!(report["manifestLayer"], layer.as_str());
    assert_eq!(report["downloaded"], layer.as_str());
    assert_eq!(report["size"], size);
    assert_eq!(
        report["artifactType"],
        "application/vnd.squizzle.migrations.v1"
    );
    assert_eq!(std::fs::read(&out).unwrap(), w.blob(&layer));
}
