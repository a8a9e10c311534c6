//! The only place squizzle writes to the terminal. Every string passes through
//! [`redact`] on its way out, so no printer can leak a secret by mistake.
//!
//! Text mode prints seed-style check lines (`✓`, `✗`, `→`, `!`); colour only on
//! a terminal and never with `NO_COLOR`. JSON mode prints exactly one JSON
//! document on stdout per command.
//!
//! Results go to stdout, progress and status to stderr (as cosign and oras
//! do): transfers, "Pulled ...", signing steps, warnings and errors. So
//! `squizzle verify 1.0.0 > report.txt` keeps the report and shows the rest.

use std::cell::RefCell;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::core::digest::Digest;
use crate::core::redact::redact;
use crate::store::progress::{Direction, TransferEvent};

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
    /// stderr is a terminal (and colour is allowed): transfers redraw in place.
    err_tty: bool,
}

const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

impl Printer {
    pub fn new(format: OutputFormat, quiet: bool, no_color_env: bool) -> Self {
        let allowed = !no_color_env && std::env::var("TERM").map_or(true, |t| t != "dumb");
        Self {
            format,
            quiet,
            color: allowed && std::io::stdout().is_terminal(),
            err_tty: allowed && std::io::stderr().is_terminal(),
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
        let msg = printable(msg);
        self.out(&format!("{} {msg}", self.paint(GREEN, "✓")));
    }

    /// A failed check: shown even with --quiet (on stdout, with its details).
    pub fn fail(&self, msg: &str) {
        if self.is_json() {
            return;
        }
        let msg = printable(msg);
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
        let _ = writeln!(stdout, "  {}", redact(&printable(msg)));
    }

    /// A step done on the way to the result (pulled, signed in, logged):
    /// on stderr, not in JSON mode or with --quiet.
    pub fn status(&self, msg: &str) {
        if self.silent() {
            return;
        }
        let msg = printable(msg);
        let mark = if self.err_tty {
            format!("{GREEN}✓{RESET}")
        } else {
            "✓".to_owned()
        };
        self.err(&format!("{mark} {msg}"));
    }

    /// A detail under a [`Printer::status`] line, on stderr.
    pub fn status_info(&self, msg: &str) {
        if self.silent() {
            return;
        }
        let msg = printable(msg);
        let mark = if self.err_tty {
            format!("{DIM}→{RESET}")
        } else {
            "→".to_owned()
        };
        self.err(&format!("{mark} {msg}"));
    }

    pub fn info(&self, msg: &str) {
        let msg = printable(msg);
        self.out(&format!("{} {msg}", self.paint(DIM, "→")));
    }

    pub fn skip(&self, msg: &str) {
        let msg = printable(msg);
        self.out(&format!("{} {msg}", self.paint(DIM, "–")));
    }

    pub fn line(&self, msg: &str) {
        self.out(&printable(msg));
    }

    pub fn warn(&self, msg: &str) {
        if self.quiet {
            return;
        }
        let msg = printable(msg);
        self.err(&format!("{} {msg}", self.paint(YELLOW, "!")));
    }

    pub fn error(&self, msg: &str) {
        let msg = printable(msg);
        self.err(&format!("{} {msg}", self.paint(RED, "error:")));
    }

    /// Writes generated text (a completion script, a man page) to stdout as is.
    pub fn raw(&self, bytes: &[u8]) {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(bytes);
        let _ = stdout.flush();
    }

    /// Prints a command's report as one JSON document with
    /// `"schemaVersion": 1` as its first field (schemas/<command>.v1.schema.json).
    /// For reports that do not carry their own `schemaVersion`.
    pub fn report<T: Serialize>(&self, value: &T) {
        self.json(&Versioned {
            schema_version: REPORT_SCHEMA_VERSION,
            report: value,
        });
    }

    /// Prints one JSON document (redacted) on stdout.
    pub fn json<T: Serialize>(&self, value: &T) {
        let text = serde_json::to_string_pretty(value)
            .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{}", redact(&text));
    }
}

/// The version of every JSON document [`Printer::report`] prints. Adding a
/// field keeps it; removing, renaming or changing the meaning of one makes it 2
/// (with a new `schemas/<command>.v2.schema.json`).
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// A report with its schema version in front; the report's own fields follow
/// in their order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Versioned<'a, T> {
    schema_version: u32,
    #[serde(flatten)]
    report: &'a T,
}

/// Shows blob transfers of `push` and `pull`: on a colour terminal, one line
/// per blob redrawn in place (carriage return) at most every
/// [`REDRAW_EVERY`]; otherwise (a pipe, `NO_COLOR`, `TERM=dumb`) one plain
/// line per finished blob, e.g. `↑ layer sha256:0a1b2c3d4e5f… 12.3 MB`.
/// Nothing in JSON mode or with `--quiet`.
pub struct TransferProgress<'a> {
    printer: &'a Printer,
    state: RefCell<ProgressState>,
}

#[derive(Default)]
struct ProgressState {
    last_draw: Option<Instant>,
    /// A partial line is on screen.
    drawn: bool,
    /// Labels ("layer", "config") of the blobs started, by digest.
    labels: Vec<(Digest, &'static str)>,
}

/// At most ~10 redraws a second.
pub const REDRAW_EVERY: Duration = Duration::from_millis(100);

impl Printer {
    pub fn transfer_progress(&self) -> TransferProgress<'_> {
        TransferProgress {
            printer: self,
            state: RefCell::default(),
        }
    }

    fn silent(&self) -> bool {
        self.is_json() || self.quiet
    }

    /// Replaces the current line of the terminal on stderr (no newline).
    fn redraw(&self, line: &str) {
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\r\x1b[2K{}", redact(line));
        let _ = stderr.flush();
    }
}

impl TransferProgress<'_> {
    pub fn on(&self, event: &TransferEvent) {
        let p = self.printer;
        if p.silent() {
            return;
        }
        let mut st = self.state.borrow_mut();
        match event {
            TransferEvent::Started {
                direction,
                digest,
                media_type,
                total,
                ..
            } => {
                if p.err_tty {
                    let head = transfer_head(*direction, media_type, digest);
                    p.redraw(&format!("{head} 0 B / {}", bytes(*total)));
                    st.drawn = true;
                    st.last_draw = Some(Instant::now());
                }
                st.labels.push((*digest, label(media_type)));
            }
            TransferEvent::Progress {
                direction,
                digest,
                done,
                total,
            } => {
                if !p.err_tty || st.last_draw.is_some_and(|t| t.elapsed() < REDRAW_EVERY) {
                    return;
                }
                let head = transfer_head_known(*direction, digest, &st.labels);
                let pct = if *total == 0 { 100 } else { done * 100 / total };
                p.redraw(&format!(
                    "{head} {} / {} ({pct}%)",
                    bytes(*done),
                    bytes(*total)
                ));
                st.drawn = true;
                st.last_draw = Some(Instant::now());
            }
            TransferEvent::Finished {
                direction,
                digest,
                bytes: n,
            } => {
                let head = transfer_head_known(*direction, digest, &st.labels);
                let line = format!("{head} {}", bytes(*n));
                if st.drawn {
                    p.redraw("");
                    st.drawn = false;
                }
                st.last_draw = None;
                p.err(&line);
            }
        }
    }
}

impl Drop for TransferProgress<'_> {
    /// Clears a half-drawn line so an error message starts on a clean line.
    fn drop(&mut self) {
        if self.state.borrow().drawn {
            self.printer.redraw("");
        }
    }
}

/// Text from outside squizzle (a revocation's reason, a certificate's
/// identity, a registry's error body, SQL) may carry terminal control
/// sequences that would recolour, move or erase what the user reads. Line
/// breaks and tabs stay (CRLF becomes LF); every other control character is
/// shown escaped. squizzle's own colours are added after this.
fn printable(msg: &str) -> std::borrow::Cow<'_, str> {
    let clean = |c: char| !c.is_control() || c == '\n' || c == '\t';
    if msg.chars().all(clean) {
        return std::borrow::Cow::Borrowed(msg);
    }
    let mut out = String::with_capacity(msg.len() + 8);
    let mut chars = msg.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' && chars.peek() == Some(&'\n') {
            continue;
        }
        if clean(c) {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
    }
    std::borrow::Cow::Owned(out)
}

fn label(media_type: &str) -> &'static str {
    if media_type.ends_with("tar+gzip") || media_type.contains(".layer.") {
        "layer"
    } else if media_type.ends_with("+json") {
        "config"
    } else {
        "blob"
    }
}

fn transfer_head(direction: Direction, media_type: &str, digest: &Digest) -> String {
    format!(
        "{} {} {}",
        arrow(direction),
        label(media_type),
        short(digest)
    )
}

fn transfer_head_known(
    direction: Direction,
    digest: &Digest,
    labels: &[(Digest, &'static str)],
) -> String {
    let label = labels
        .iter()
        .rev()
        .find(|(d, _)| d == digest)
        .map_or("blob", |(_, l)| *l);
    format!("{} {label} {}", arrow(direction), short(digest))
}

fn arrow(direction: Direction) -> &'static str {
    match direction {
        Direction::Push => "↑",
        Direction::Pull => "↓",
    }
}

/// `sha256:` and the first 12 hex digits.
fn short(digest: &Digest) -> String {
    let full = digest.to_string();
    match full.get(..19) {
        Some(head) if full.len() > 19 => format!("{head}…"),
        _ => full,
    }
}

/// `1 migration`, `3 migrations`: a count with its noun in the right number
/// (`noun` is the singular; the plural adds an `s`).
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
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
    use super::printable;

    #[test]
    fn control_sequences_from_outside_are_shown_not_obeyed() {
        assert_eq!(printable("tab\there\nnext line"), "tab\there\nnext line");
        assert_eq!(
            printable("SELECT 1;\r\nSELECT 2;\r\n"),
            "SELECT 1;\nSELECT 2;\n"
        );
        assert_eq!(
            printable("reason: \u{1b}[2K\u{1b}[1Gall good\r"),
            "reason: \\u{1b}[2K\\u{1b}[1Gall good\\r"
        );
        assert_eq!(printable("bell\u{7}"), "bell\\u{7}");
    }

    #[test]
    fn counts_agree_with_their_noun() {
        assert_eq!(super::count(0, "migration"), "0 migrations");
        assert_eq!(super::count(1, "statement"), "1 statement");
        assert_eq!(super::count(2, "statement"), "2 statements");
    }

    #[test]
    fn byte_sizes_read_naturally() {
        assert_eq!(super::bytes(512), "512 B");
        assert_eq!(super::bytes(138_767), "138.8 KB");
        assert_eq!(super::bytes(210_000_000), "210.0 MB");
    }
}
