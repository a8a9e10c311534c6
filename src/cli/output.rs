//! The only place squizzle writes to the terminal. Every string passes through
//! [`redact`] on its way out, so no printer can leak a secret by mistake.
//!
//! Text mode prints seed-style check lines (`✓`, `✗`, `→`, `!`); colour only on
//! a terminal and never with `NO_COLOR`. JSON mode prints exactly one JSON
//! document on stdout per command.

use std::io::{IsTerminal, Write};

use serde::Serialize;

use crate::core::redact::redact;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Printer {
    pub format: OutputFormat,
    quiet: bool,
    color: bool,
}

const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

impl Printer {
    pub fn new(format: OutputFormat, quiet: bool, no_color_env: bool) -> Self {
        let color = !no_color_env
            && std::io::stdout().is_terminal()
            && std::env::var("TERM").map_or(true, |t| t != "dumb");
        Self {
            format,
            quiet,
            color,
        }
    }

    pub fn is_json(&self) -> bool {
        self.format == OutputFormat::Json
    }

    fn paint(&self, color: &str, s: &str) -> String {
        if self.color {
            format!("{color}{s}{RESET}")
        } else {
            s.to_owned()
        }
    }

    fn out(&self, line: &str) {
        if self.is_json() || self.quiet {
            return;
        }
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{}", redact(line));
    }

    fn err(&self, line: &str) {
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(stderr, "{}", redact(line));
    }

    pub fn ok(&self, msg: &str) {
        self.out(&format!("{} {msg}", self.paint(GREEN, "✓")));
    }

    /// A failed check: shown even with --quiet (on stdout, with its details).
    pub fn fail(&self, msg: &str) {
        if self.is_json() {
            return;
        }
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(
            stdout,
            "{}",
            redact(&format!("{} {msg}", self.paint(RED, "✗")))
        );
    }

    /// Indented detail under a failed check (Expected/Actual), shown with it.
    pub fn fail_detail(&self, msg: &str) {
        if self.is_json() {
            return;
        }
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "  {}", redact(msg));
    }

    pub fn info(&self, msg: &str) {
        self.out(&format!("{} {msg}", self.paint(DIM, "→")));
    }

    pub fn skip(&self, msg: &str) {
        self.out(&format!("{} {msg}", self.paint(DIM, "–")));
    }

    pub fn line(&self, msg: &str) {
        self.out(msg);
    }

    pub fn warn(&self, msg: &str) {
        if self.quiet {
            return;
        }
        self.err(&format!("{} {msg}", self.paint(YELLOW, "!")));
    }

    pub fn error(&self, msg: &str) {
        self.err(&format!("{} {msg}", self.paint(RED, "error:")));
    }

    /// Prints one JSON document (redacted) on stdout.
    pub fn json<T: Serialize>(&self, value: &T) {
        let text = serde_json::to_string_pretty(value)
            .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{}", redact(&text));
    }
}

/// Human-readable byte size (1.2 MB, 340 KB, 512 B); decimal units.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn byte_sizes_read_naturally() {
        assert_eq!(super::bytes(512), "512 B");
        assert_eq!(super::bytes(138_767), "138.8 KB");
        assert_eq!(super::bytes(210_000_000), "210.0 MB");
    }
}
