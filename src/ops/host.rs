//! Facts about the machine and the job a command runs in: host name, OS user,
//! the CI system's identity for the job, the git checkout, the clock.
//!
//! The one place that reads CI variables for the history's "who and where"
//! (through the `Env` snapshot, never the process environment directly).

use std::process::Command;

use crate::config::{Config, Env};

/// The kernel's host name, else `$HOSTNAME`.
pub fn hostname(env: &Env) -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| env.get("HOSTNAME"))
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

/// The CI systems squizzle recognises from their own variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CiSystem {
    GitHubActions,
    GitLab,
    Buildkite,
    CircleCi,
}

/// Which CI system this job runs in, if any: the one place that decides it.
pub fn ci_system(env: &Env) -> Option<CiSystem> {
    let on = |var: &str| env.get(var).as_deref() == Some("true");
    if on("GITHUB_ACTIONS") {
        Some(CiSystem::GitHubActions)
    } else if on("GITLAB_CI") {
        Some(CiSystem::GitLab)
    } else if on("BUILDKITE") {
        Some(CiSystem::Buildkite)
    } else if on("CIRCLECI") {
        Some(CiSystem::CircleCi)
    } else {
        None
    }
}

/// The CI job identity and run URL, from the CI system's own variables.
pub fn ci_identity(env: &Env) -> (Option<String>, Option<String>) {
    let system = ci_system(env);
    if system == Some(CiSystem::GitHubActions) {
        let repo = env.get("GITHUB_REPOSITORY").unwrap_or_default();
        let id = format!(
            "github-actions:{repo}:{}",
            env.get("GITHUB_WORKFLOW_REF")
                .or_else(|| env.get("GITHUB_WORKFLOW"))
                .unwrap_or_default()
        );
        let url = match (env.get("GITHUB_SERVER_URL"), env.get("GITHUB_RUN_ID")) {
            (Some(s), Some(r)) => Some(format!("{s}/{repo}/actions/runs/{r}")),
            _ => None,
        };
        return (Some(id), url);
    }
    if system == Some(CiSystem::GitLab) {
        let id = format!(
            "gitlab:{}:job {}",
            env.get("CI_PROJECT_PATH").unwrap_or_default(),
            env.get("CI_JOB_ID").unwrap_or_default()
        );
        return (Some(id), env.get("CI_JOB_URL"));
    }
    if system == Some(CiSystem::Buildkite) {
        let id = format!(
            "buildkite:{}:{}",
            env.get("BUILDKITE_PIPELINE_SLUG").unwrap_or_default(),
            env.get("BUILDKITE_BUILD_NUMBER").unwrap_or_default()
        );
        return (Some(id), env.get("BUILDKITE_BUILD_URL"));
    }
    if system == Some(CiSystem::CircleCi) {
        let id = format!(
            "circleci:{}:{}",
            env.get("CIRCLE_PROJECT_REPONAME").unwrap_or_default(),
            env.get("CIRCLE_BUILD_NUM").unwrap_or_default()
        );
        return (Some(id), env.get("CIRCLE_BUILD_URL"));
    }
    (None, None)
}

pub fn os_user(env: &Env) -> Option<String> {
    env.get("USER")
        .or_else(|| env.get("LOGNAME"))
        .filter(|u| !u.is_empty())
}

/// The current time, UTC, whole seconds, RFC 3339 (`2026-11-22T19:46:47Z`):
/// how squizzle writes every time it records.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The trimmed output of `git -C <project root> ARGS`, if git ran, succeeded
/// and printed something (no git, not a checkout, or no project: `None`).
pub fn git(config: &Config, args: &[&str]) -> Option<String> {
    // Without a squizzle.toml the root is squizzle's cache folder, which may
    // sit inside some unrelated checkout (a dotfiles repository in $HOME).
    if !config.has_file() {
        return None;
    }
    let out = Command::new("git")
        .arg("-C")
        .arg(&config.root)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use crate::config::{Config, Env};

    #[test]
    fn without_a_project_no_surrounding_checkout_is_read() {
        let tmp = tempfile::tempdir().unwrap();
        let ok = Command::new("git")
            .args(["init", "-q"])
            .arg(tmp.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // No git here: nothing could be read either way.
            return;
        }
        let cache = tmp.path().join("cache");
        std::fs::create_dir_all(cache.join("squizzle")).unwrap();
        let env = Env::from_pairs([("XDG_CACHE_HOME", cache.to_str().unwrap())]);
        let bare = Config::without_file(Path::new("/empty"), &env, None).unwrap();
        assert!(bare.root.starts_with(tmp.path()));
        assert_eq!(super::git(&bare, &["rev-parse", "--show-toplevel"]), None);
        // The same checkout is read for a project that lives in it.
        let project = Config::from_str("", &tmp.path().join("squizzle.toml"), &env, None).unwrap();
        assert!(super::git(&project, &["rev-parse", "--show-toplevel"]).is_some());
    }
}
