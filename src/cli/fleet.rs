//! Printing fleet reports: a progress line per target as it finishes (on
//! stderr) and one aligned table at the end (on stdout), for `apply` and
//! `status` over a fleet.

use super::output::Printer;

/// Columns padded to their widest cell; the last column is left as is.
pub fn print_table(p: &Printer, headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let last = cells.len().saturating_sub(1);
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    c.clone()
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    p.line(&line(
        &headers.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
    ));
    for row in rows {
        p.line(&line(row));
    }
}

/// Milliseconds as seconds with one decimal.
pub fn seconds(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// The first line of an error message, for a table cell.
pub fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().to_owned()
}
