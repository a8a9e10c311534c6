//! The command-line face: parses arguments, builds the context, calls one
//! operation per command, prints its report, and maps errors to exit codes in
//! exactly one place ([`exit_code_for`]).

mod apply;
mod args;
mod audit;
mod baseline;
mod build;
mod check;
mod drift;
mod fleet;
mod init;
mod keygen;
mod lint;
mod list;
mod meta;
pub mod output;
mod pull;
mod push;
mod report;
mod revoke;
mod rollback;
mod runtime;
mod sign;
mod status;
mod verify;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use serde::Serialize;

use crate::artifact::collect::CollectError;
use crate::artifact::pack::PackError;
use crate::artifact::unpack::UnpackError;
use crate::config::{Config, Env};
use crate::core::exit::ExitCode;
use crate::db::DbError;
use crate::ops::Error;
use crate::ops::rollback::RollbackError;
use crate::signing::SigningError;
use crate::store::StoreError;
use output::{OutputFormat, Printer};

const ABOUT: &str = "Database migrations as signed, verifiable OCI release artifacts";

/// The `--help` heading of the flags every command takes, listed after the
/// command's own.
const GLOBAL: &str = "Global options";

fn exit_codes_help() -> String {
    let mut s = String::from("Exit codes (stable; see docs/exit-codes.md):\n");
    for c in ExitCode::ALL {
        s.push_str(&format!(
            "  {:>2}  {:<17} {}\n",
            c.code(),
            c.name(),
            c.description()
        ));
    }
    s
}

#[derive(Debug, Parser)]
#[command(name = "squizzle", version, about = ABOUT, after_long_help = exit_codes_help())]
pub struct Cli {
    /// Path to squizzle.toml (default: search the current folder and its parents).
    #[arg(long, global = true, env = "SQUIZZLE_CONFIG", value_name = "PATH", help_heading = GLOBAL)]
    pub config: Option<PathBuf>,

    /// Environment from [environments.NAME] in squizzle.toml.
    #[arg(long = "env", global = true, env = "SQUIZZLE_ENV", value_name = "NAME", help_heading = GLOBAL)]
    pub environment: Option<String>,

    /// Output format: human-readable text, or one JSON document on stdout.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text, help_heading = GLOBAL)]
    pub output: OutputFormat,

    /// Log squizzle's decisions on stderr (-v: config, credentials, requests,
    /// referrers, policy, lock, plan, segments; -vv: also each statement with
    /// its duration). SQUIZZLE_LOG or RUST_LOG take an EnvFilter directive.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = GLOBAL)]
    pub verbose: u8,

    /// Print only failures and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose", help_heading = GLOBAL)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Init(init::InitArgs),
    Build(build::BuildArgs),
    Check(check::CheckArgs),
    Sign(sign::SignArgs),
    Verify(verify::VerifyArgs),
    List(list::ListArgs),
    Push(push::PushArgs),
    Pull(pull::PullArgs),
    Apply(apply::ApplyArgs),
    Status(status::StatusArgs),
    Drift(drift::DriftArgs),
    Baseline(baseline::BaselineArgs),
    Rollback(rollback::RollbackArgs),
    Keygen(keygen::KeygenArgs),
    Version(meta::VersionArgs),
    Completions(meta::CompletionsArgs),
    Man(meta::ManArgs),
    Lint(lint::LintArgs),
    Revoke(revoke::RevokeArgs),
    Audit(audit::AuditArgs),
}

/// What every command gets: the printer, the environment snapshot, and the
/// global flags to load the configuration with.
pub struct Context {
    pub printer: Printer,
    pub env: Env,
    pub cwd: PathBuf,
    config_path: Option<PathBuf>,
    environment: Option<String>,
}

impl Context {
    /// The configuration: `squizzle.toml` when there is one, otherwise the
    /// settings of flags and variables alone (a deploy job with no checkout),
    /// with releases kept in the user's cache folder.
    pub fn config(&self) -> Result<Config, Error> {
        Ok(Config::discover_or_defaults(
            self.config_path.as_deref(),
            &self.cwd,
            &self.env,
            self.environment.as_deref(),
        )?)
    }

    /// The configuration of a command that works on a project (`build`):
    /// `squizzle.toml` must exist.
    pub fn project_config(&self) -> Result<Config, Error> {
        Ok(Config::discover(
            self.config_path.as_deref(),
            &self.cwd,
            &self.env,
            self.environment.as_deref(),
        )?)
    }

    /// The configuration of a command that connects to the database: the
    /// active environment's `database_url` must resolve.
    pub fn database_config(&self, registry: &args::RegistryArgs) -> Result<Config, Error> {
        let config = self.registry_config(registry)?;
        config.check_database_url()?;
        Ok(config)
    }

    /// The configuration for a registry command; `--plain-http` has the
    /// same effect as `[registry] insecure = true`.
    pub fn registry_config(&self, registry: &args::RegistryArgs) -> Result<Config, Error> {
        let insecure_registry = registry.insecure_registry;
        let mut config = self.config()?;
        if insecure_registry {
            config
                .registry
                .get_or_insert_with(Default::default)
                .insecure = true;
        }
        Ok(config)
    }
}

/// Runs the CLI with `args`; returns the process exit code.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let cli = match command()
        .try_get_matches_from(&args)
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(c) => c,
        Err(e) => {
            if !e.use_stderr() {
                // --help and --version: what was asked for, on stdout.
                let _ = e.print();
                return ExitCode::Ok;
            }
            if wants_json(&args) {
                let printer = Printer::new(OutputFormat::Json, false, true);
                printer.report(&JsonError {
                    error: JsonErrorBody {
                        kind: ExitCode::Usage.name(),
                        code: ExitCode::Usage.code(),
                        message: usage_message(&e),
                        failure: None,
                    },
                });
            } else {
                let _ = e.print();
            }
            return ExitCode::Usage;
        }
    };
    let env = Env::process();
    let printer = Printer::new(
        cli.output,
        cli.quiet,
        env.get("NO_COLOR").is_some_and(|v| !v.is_empty()),
    );
    init_tracing(cli.verbose, cli.quiet, &env);
    let cwd = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => {
            printer.error(&format!("cannot determine the current folder: {e}"));
            return ExitCode::General;
        }
    };
    let ctx = Context {
        printer,
        env,
        cwd,
        config_path: cli.config,
        environment: cli.environment,
    };
    let result = match cli.command {
        Command::Init(a) => init::exec(&ctx, a),
        Command::Build(a) => build::exec(&ctx, a),
        Command::Check(a) => check::exec(&ctx, a),
        Command::Verify(a) => verify::exec(&ctx, a),
        Command::List(a) => list::exec(&ctx, a),
        Command::Push(a) => push::exec(&ctx, a),
        Command::Pull(a) => pull::exec(&ctx, a),
        Command::Apply(a) => apply::exec(&ctx, a),
        Command::Status(a) => status::exec(&ctx, a),
        Command::Drift(a) => drift::exec(&ctx, a),
        Command::Baseline(a) => baseline::exec(&ctx, a),
        Command::Rollback(a) => rollback::exec(&ctx, a),
        Command::Sign(a) => sign::exec(&ctx, a),
        Command::Keygen(a) => keygen::exec(&ctx, a),
        Command::Version(a) => meta::version(&ctx, a),
        Command::Completions(a) => meta::completions(&ctx, a),
        Command::Man(a) => meta::man(&ctx, a),
        Command::Lint(a) => lint::exec(&ctx, a),
        Command::Revoke(a) => revoke::exec(&ctx, a),
        Command::Audit(a) => audit::exec(&ctx, a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let code = exit_code_for(&e);
            report_error(&ctx.printer, &e, code);
            code
        }
    }
}

/// The clap command (global flags are listed under their own heading after
/// each command's options).
fn command() -> clap::Command {
    Cli::command()
}

/// Whether the command line asks for `--output json`, read from the raw
/// arguments because parsing them failed.
fn wants_json(args: &[OsString]) -> bool {
    let mut it = args.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if a == "--output=json" || (a == "--output" && it.next().is_some_and(|v| v == "json")) {
            return true;
        }
    }
    false
}

/// clap's message without its `error: ` prefix, styling or trailing hint.
fn usage_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    text.lines()
        .filter(|l| !l.starts_with("For more information"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

/// The error envelope of JSON mode (schemas/error.v1.schema.json).
#[derive(Serialize)]
pub(crate) struct JsonError<'a> {
    pub(crate) error: JsonErrorBody<'a>,
}

#[derive(Serialize)]
pub(crate) struct JsonErrorBody<'a> {
    pub(crate) kind: &'a str,
    pub(crate) code: u8,
    pub(crate) message: String,
    /// Where a migration or rollback script failed, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) failure: Option<&'a crate::ops::run::MigrationFailure>,
}

fn report_error(printer: &Printer, e: &Error, code: ExitCode) {
    tracing::debug!(error = ?e, "command failed");
    if printer.is_json() {
        printer.report(&JsonError {
            error: JsonErrorBody {
                kind: code.name(),
                code: code.code(),
                message: e.to_string(),
                failure: None,
            },
        });
    } else {
        printer.error(&e.to_string());
    }
}

/// The one mapping from errors to exit codes.
pub fn exit_code_for(e: &Error) -> ExitCode {
    match e {
        Error::Config(_) | Error::Version(_) | Error::Usage(_) => ExitCode::Usage,
        Error::Collect(CollectError::Io { .. }) => ExitCode::General,
        Error::Collect(_) => ExitCode::Usage,
        Error::Pack(
            PackError::Read { .. } | PackError::Write { .. } | PackError::Changed { .. },
        ) => ExitCode::General,
        Error::Pack(_) => ExitCode::Usage,
        Error::Store(StoreError::Io { .. }) => ExitCode::General,
        Error::Store(StoreError::BadTag { .. } | StoreError::BadRegistryRef { .. }) => {
            ExitCode::Usage
        }
        Error::Store(StoreError::RemoteUnreachable { .. }) => ExitCode::Connection,
        Error::Store(StoreError::RemoteAuth { .. }) => ExitCode::Authentication,
        Error::Store(StoreError::RemoteNotFound { .. }) => ExitCode::NotFound,
        Error::Store(StoreError::Registry { .. } | StoreError::RemoteUnsupported { .. }) => {
            ExitCode::General
        }
        // Digest/size mismatches, oversized or corrupt content, and a manifest
        // redirected to another host (`RemoteRedirect`: an untrusted source).
        Error::Store(_) => ExitCode::Integrity,
        // This machine failing to write (a full disk, permissions) is I/O,
        // not a fault of the release.
        Error::Unpack(
            UnpackError::Io { .. }
            | UnpackError::ReadInput { .. }
            | UnpackError::DestinationExists { .. }
            | UnpackError::InvalidDestination { .. }
            | UnpackError::Stopped,
        ) => ExitCode::General,
        Error::Unpack(_) | Error::Integrity(_) => ExitCode::Integrity,
        Error::Io { .. } => ExitCode::General,
        Error::NotFound { .. } => ExitCode::NotFound,
        Error::VersionExists { .. } | Error::VersionMismatch { .. } | Error::TagConflict { .. } => {
            ExitCode::VersionConflict
        }
        Error::Signature(_) | Error::Denied(_) => ExitCode::Signature,
        Error::Revoked(_) => ExitCode::Revoked,
        Error::Signing(e) => match e {
            SigningError::Usage(_) | SigningError::NoToken | SigningError::Token(_) => {
                ExitCode::Usage
            }
            SigningError::Rejected(_) => ExitCode::Authentication,
            SigningError::Service(_) => ExitCode::Connection,
            SigningError::Key(_) => ExitCode::Usage,
        },
        Error::Db(e) => match e {
            DbError::BadUrl(_) | DbError::BadIdentifier(_) | DbError::NotConfigured { .. } => {
                ExitCode::Usage
            }
            DbError::Connect { .. }
            | DbError::Tls(_)
            | DbError::ConnectionLost { .. }
            | DbError::LockLost { .. }
            | DbError::AppliedConcurrently { .. } => ExitCode::Connection,
            DbError::Auth { .. } => ExitCode::Authentication,
            DbError::LockTimeout { .. } => ExitCode::LockTimeout,
            DbError::RecordEdited { .. } => ExitCode::Integrity,
            DbError::Query { .. } | DbError::LayoutTooNew { .. } | DbError::Privilege { .. } => {
                ExitCode::General
            }
        },
        Error::Plan(_) | Error::HistoryNotEmpty(_) | Error::HistoryRewrite(_) => {
            ExitCode::VersionConflict
        }
        Error::MigrationFailed(_) => ExitCode::MigrationFailed,
        Error::TransactionControl { .. } => ExitCode::Usage,
        Error::Rollback(e) => match e.as_ref() {
            RollbackError::NewerApplied { .. } | RollbackError::Drift { .. } => {
                ExitCode::VersionConflict
            }
            RollbackError::MissingScripts { .. }
            | RollbackError::Disagreement { .. }
            | RollbackError::Failed(_) => ExitCode::RollbackFailed,
        },
    }
}

/// Logs go to stderr, through the redactor. The level: `SQUIZZLE_LOG`, else
/// `RUST_LOG` (an `EnvFilter` directive such as `squizzle=debug`), else
/// -q/-v/-vv (error / debug / trace; warn by default). A directive that does
/// not parse is reported and the flags' level is used.
fn init_tracing(verbose: u8, quiet: bool, env: &Env) {
    use tracing_subscriber::EnvFilter;
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "debug",
        _ => "trace",
    };
    let mut bad = None;
    let filter = ["SQUIZZLE_LOG", "RUST_LOG"]
        .iter()
        .find_map(|var| {
            let text = env.get(var).filter(|t| !t.trim().is_empty())?;
            match EnvFilter::try_new(&text) {
                Ok(f) => Some(f),
                Err(e) => {
                    bad = Some(format!(
                        "{var}={text:?} is not a log filter ({e}); expected e.g. squizzle=debug; using the -v level"
                    ));
                    None
                }
            }
        })
        .unwrap_or_else(|| EnvFilter::new(format!("squizzle={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(RedactingStderr::default)
        .with_ansi(false)
        .without_time()
        .try_init();
    if let Some(msg) = bad {
        tracing::warn!("{msg}");
    }
}

/// A `MakeWriter` target that redacts each formatted log line before stderr.
#[derive(Default)]
struct RedactingStderr {
    buf: Vec<u8>,
}

impl std::io::Write for RedactingStderr {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let text = String::from_utf8_lossy(&self.buf);
            std::io::stderr()
                .lock()
                .write_all(crate::core::redact::redact(&text).as_bytes())?;
            self.buf.clear();
        }
        Ok(())
    }
}

impl Drop for RedactingStderr {
    fn drop(&mut self) {
        let _ = std::io::Write::flush(self);
    }
}
