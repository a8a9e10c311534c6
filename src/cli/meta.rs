//! `squizzle version`, `squizzle completions` and `squizzle man`: about the
//! tool itself, generated from the same clap definitions the parser uses.

use std::path::PathBuf;

use clap::{Args, CommandFactory};
use serde::Serialize;

use super::{Cli, Context};
use crate::core::exit::ExitCode;
use crate::ops::Error;

#[derive(Debug, Args)]
#[command(
    about = "Show the version, the commit and how this binary was built",
    after_help = "Examples:\n  squizzle version\n  squizzle version --output json"
)]
pub struct VersionArgs {}

/// What `version --output json` prints (schemas/version.v1.schema.json).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildInfo {
    pub schema_version: u32,
    pub version: &'static str,
    pub commit: &'static str,
    /// The date of the commit (the binary does not record when it was built,
    /// so that the same source gives the same bytes).
    pub build_date: &'static str,
    pub target: &'static str,
    pub rustc: &'static str,
}

pub fn build_info() -> BuildInfo {
    BuildInfo {
        schema_version: 1,
        version: env!("CARGO_PKG_VERSION"),
        commit: env!("SQUIZZLE_BUILD_COMMIT"),
        build_date: env!("SQUIZZLE_BUILD_DATE"),
        target: env!("SQUIZZLE_BUILD_TARGET"),
        rustc: env!("SQUIZZLE_BUILD_RUSTC"),
    }
}

pub fn version(ctx: &Context, _args: VersionArgs) -> Result<ExitCode, Error> {
    let info = build_info();
    let p = &ctx.printer;
    if p.is_json() {
        p.json(&info);
    } else {
        p.line(&format!("squizzle {}", info.version));
        p.line(&format!("commit:  {}", info.commit));
        p.line(&format!("date:    {}", info.build_date));
        p.line(&format!("target:  {}", info.target));
        p.line(&format!("rustc:   {}", info.rustc));
    }
    Ok(ExitCode::Ok)
}

#[derive(Debug, Args)]
#[command(
    about = "Print a shell completion script",
    after_help = "Examples:\n  squizzle completions bash > /etc/bash_completion.d/squizzle\n  \
                  squizzle completions zsh > \"${fpath[1]}/_squizzle\"\n  \
                  squizzle completions fish > ~/.config/fish/completions/squizzle.fish"
)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

pub fn completions(ctx: &Context, args: CompletionsArgs) -> Result<ExitCode, Error> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "squizzle", &mut out);
    ctx.printer.raw(&out);
    Ok(ExitCode::Ok)
}

#[derive(Debug, Args)]
#[command(
    about = "Write man pages (squizzle.1 and one per command)",
    after_help = "Without --dir, prints squizzle(1) to stdout.\n\nExamples:\n  \
                  squizzle man --dir /usr/local/share/man/man1\n  squizzle man | man -l -"
)]
pub struct ManArgs {
    /// Folder to write squizzle.1 and squizzle-COMMAND.1 into (created if missing).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn man(ctx: &Context, args: ManArgs) -> Result<ExitCode, Error> {
    let root = Cli::command();
    let Some(dir) = args.dir else {
        let mut out = Vec::new();
        render(&root, &mut out)?;
        ctx.printer.raw(&out);
        return Ok(ExitCode::Ok);
    };
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
        action: "create",
        path: dir.clone(),
        source,
    })?;
    let mut pages = vec![("squizzle.1".to_owned(), root.clone())];
    for sub in root.get_subcommands().filter(|s| s.get_name() != "help") {
        // Named as the command line reads, so the SYNOPSIS is `squizzle apply ...`.
        let sub = sub
            .clone()
            .name(format!("squizzle-{}", sub.get_name()))
            .display_name(format!("squizzle {}", sub.get_name()));
        pages.push((format!("{}.1", sub.get_name()), sub));
    }
    for (file, page) in &pages {
        let mut out = Vec::new();
        render(page, &mut out)?;
        let path = dir.join(file);
        std::fs::write(&path, out).map_err(|source| Error::Io {
            action: "write",
            path: path.clone(),
            source,
        })?;
        ctx.printer.ok(&format!("Wrote {}", path.display()));
    }
    Ok(ExitCode::Ok)
}

fn render(cmd: &clap::Command, out: &mut Vec<u8>) -> Result<(), Error> {
    clap_mangen::Man::new(cmd.clone())
        .render(out)
        .map_err(|source| Error::Io {
            action: "render a man page for",
            path: PathBuf::from(cmd.get_name()),
            source,
        })
}
