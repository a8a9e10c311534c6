//! SLSA v1 provenance for a release (`build --provenance`): who built it,
//! from which source, how and when, as an in-toto statement about the
//! release's manifest digest, signed like the release and stored as a
//! referrer. Facts come from the CI system's variables (GitHub Actions,
//! GitLab CI), else from git and the machine; nothing is invented: a fact
//! that is not known is left out.
//!
//! Layout of the predicate (https://slsa.dev/spec/v1.0/provenance):
//! `buildDefinition.buildType` = [`BUILD_TYPE`], `externalParameters`
//! (version, source repository, ref, revision), `internalParameters` (tool
//! version, SOURCE_DATE_EPOCH), `resolvedDependencies` (the source commit);
//! `runDetails.builder.id`, `runDetails.metadata` (invocation id, start and
//! finish times). `schemas/provenance.v1.schema.json` describes it.

use serde::Serialize;

use crate::config::{Config, Env};
use crate::core::manifest::Manifest;
use crate::ops::host::{CiSystem, ci_system, git, hostname, os_user};

/// Identifies how squizzle builds a release (an identifier, not a fetched URL).
pub const BUILD_TYPE: &str = "https://squizzle.dev/buildtypes/release/v1";

/// What the CI environment says about this build.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BuildContext {
    pub builder_id: String,
    pub repository: Option<String>,
    pub git_ref: Option<String>,
    pub revision: Option<String>,
    pub invocation_id: Option<String>,
}

impl BuildContext {
    pub fn detect(config: &Config, env: &Env, manifest: &Manifest) -> Self {
        let mut c = BuildContext {
            repository: manifest.source.as_ref().and_then(|s| s.repository.clone()),
            revision: manifest.source.as_ref().and_then(|s| s.revision.clone()),
            ..Default::default()
        };
        let system = ci_system(env);
        if system == Some(CiSystem::GitHubActions) {
            let server = env
                .get("GITHUB_SERVER_URL")
                .unwrap_or_else(|| "https://github.com".into());
            // GITHUB_WORKFLOW_REF = owner/repo/.github/workflows/file.yml@refs/...
            let workflow = env
                .get("GITHUB_WORKFLOW_REF")
                .map(|w| w.split('@').next().unwrap_or_default().to_owned())
                .unwrap_or_default();
            c.builder_id = format!("{server}/{workflow}");
            c.git_ref = env.get("GITHUB_REF");
            c.invocation_id = match (env.get("GITHUB_REPOSITORY"), env.get("GITHUB_RUN_ID")) {
                (Some(repo), Some(run)) => Some(format!(
                    "{server}/{repo}/actions/runs/{run}/attempts/{}",
                    env.get("GITHUB_RUN_ATTEMPT").unwrap_or_else(|| "1".into())
                )),
                _ => None,
            };
        } else if system == Some(CiSystem::GitLab) {
            let project = env.get("CI_PROJECT_URL").unwrap_or_default();
            c.builder_id = format!(
                "{project}/-/blob/{}/{}",
                env.get("CI_COMMIT_SHA").unwrap_or_default(),
                env.get("CI_CONFIG_PATH")
                    .unwrap_or_else(|| ".gitlab-ci.yml".into())
            );
            c.git_ref = env.get("CI_COMMIT_REF_NAME").map(|r| {
                if env.get("CI_COMMIT_TAG").is_some() {
                    format!("refs/tags/{r}")
                } else {
                    format!("refs/heads/{r}")
                }
            });
            c.invocation_id = env.get("CI_JOB_URL");
        } else {
            // Not in a known CI: a builder id the operator chooses, else this
            // machine, which a policy pinning builder ids will refuse.
            c.builder_id = env.get("SQUIZZLE_BUILDER_ID").unwrap_or_else(|| {
                format!(
                    "local://{}@{}",
                    os_user(env).unwrap_or_else(|| "unknown".into()),
                    hostname(env)
                )
            });
            c.git_ref = git(config, &["symbolic-ref", "-q", "HEAD"]).or_else(|| {
                git(config, &["describe", "--tags", "--exact-match"])
                    .map(|t| format!("refs/tags/{t}"))
            });
        }
        c
    }
}

/// The SLSA v1 predicate for a release.
pub fn predicate(
    manifest: &Manifest,
    ctx: &BuildContext,
    env: &Env,
    started: &str,
    finished: &str,
) -> serde_json::Value {
    let mut source = serde_json::Map::new();
    if let Some(r) = &ctx.repository {
        source.insert("repository".into(), r.clone().into());
    }
    if let Some(r) = &ctx.git_ref {
        source.insert("ref".into(), r.clone().into());
    }
    if let Some(r) = &ctx.revision {
        source.insert("revision".into(), r.clone().into());
    }
    let mut resolved = Vec::new();
    if let (Some(repo), Some(rev)) = (&ctx.repository, &ctx.revision) {
        let mut uri = format!("git+{repo}");
        if let Some(r) = &ctx.git_ref {
            uri.push('@');
            uri.push_str(r);
        }
        resolved.push(serde_json::json!({"uri": uri, "digest": {"gitCommit": rev}}));
    }
    let mut metadata = serde_json::json!({"startedOn": started, "finishedOn": finished});
    if let Some(i) = &ctx.invocation_id {
        metadata["invocationId"] = i.clone().into();
    }
    serde_json::json!({
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "version": manifest.version.to_string(),
                "source": source,
            },
            "internalParameters": {
                "tool": format!("squizzle {}", env!("CARGO_PKG_VERSION")),
                "sourceDateEpoch": env.get("SOURCE_DATE_EPOCH"),
            },
            "resolvedDependencies": resolved,
        },
        "runDetails": {
            "builder": {
                "id": ctx.builder_id,
                "version": {"squizzle": env!("CARGO_PKG_VERSION")},
            },
            "metadata": metadata,
        },
    })
}

/// What `verify` reports about a verified provenance statement.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvenanceSummary {
    pub builder_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invocation_id: Option<String>,
    /// Who signed the provenance.
    pub signer: String,
}

impl ProvenanceSummary {
    /// Reads the facts a policy checks out of a verified predicate.
    pub fn from_predicate(p: &serde_json::Value, signer: String) -> Result<Self, String> {
        let bt = p["buildDefinition"]["buildType"]
            .as_str()
            .unwrap_or_default();
        let builder_id = p["runDetails"]["builder"]["id"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or("the provenance names no builder (runDetails.builder.id)")?
            .to_owned();
        if bt.is_empty() {
            return Err("the provenance has no buildDefinition.buildType".into());
        }
        let source = &p["buildDefinition"]["externalParameters"]["source"];
        // GitHub's attest action names the workflow instead, and the commit
        // among the resolved dependencies.
        let workflow = &p["buildDefinition"]["externalParameters"]["workflow"];
        let s = |v: &serde_json::Value| v.as_str().map(str::to_owned);
        let commit = p["buildDefinition"]["resolvedDependencies"][0]["digest"]["gitCommit"].clone();
        Ok(Self {
            builder_id,
            repository: s(&source["repository"]).or_else(|| s(&workflow["repository"])),
            git_ref: s(&source["ref"]).or_else(|| s(&workflow["ref"])),
            revision: s(&source["revision"]).or_else(|| s(&commit)),
            invocation_id: s(&p["runDetails"]["metadata"]["invocationId"]),
            signer,
        })
    }
}
