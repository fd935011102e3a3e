//! Diagnostics: every problem in a scenario file, each located at `path:line:col`.
//!
//! The compiler records problems as byte offsets into the source while it walks the TOML tree;
//! [`Collector::finish`] turns them into 1-based lines and character columns, sorted by
//! position, once the whole file has been checked.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: PathBuf,
    /// 1-based; 0 when the problem is about the file as a whole (it could not be read).
    pub line: usize,
    /// 1-based, counted in characters; 0 together with `line`.
    pub col: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.path.display(),
                self.line,
                self.col,
                self.message
            )
        }
    }
}

/// Every problem found in a scenario file, sorted by position.
///
/// Displays as one `path:line:col: message` line per problem, each ending in a newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioErrors {
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for ScenarioErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.diagnostics {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioErrors {}

impl ScenarioErrors {
    /// A problem with the file as a whole, e.g. it could not be read.
    pub fn whole_file(path: &Path, message: impl Into<String>) -> Self {
        ScenarioErrors {
            diagnostics: vec![Diagnostic {
                path: path.to_path_buf(),
                line: 0,
                col: 0,
                message: message.into(),
            }],
        }
    }
}

/// A file that is not UTF-8: where the first bad byte is (line, column and byte offset).
pub(crate) fn not_utf8(path: &Path, bytes: &[u8], e: std::str::Utf8Error) -> ScenarioErrors {
    let at = e.valid_up_to();
    let valid = std::str::from_utf8(&bytes[..at]).unwrap_or_default();
    let (line, col) = line_col(valid, at);
    ScenarioErrors {
        diagnostics: vec![Diagnostic {
            path: path.to_path_buf(),
            line,
            col,
            message: format!(
                "the file is not valid UTF-8 at byte {at} (0x{:02X}); save it as UTF-8",
                bytes[at]
            ),
        }],
    }
}

/// The longest message kept: a value echoed in a message (a 10 MB template) is cut.
const MAX_MESSAGE_BYTES: usize = 1000;

/// Problems gathered while compiling, as byte offsets into the source.
pub(crate) struct Collector {
    found: Vec<(usize, String)>,
}

impl Collector {
    pub(crate) fn new() -> Self {
        Collector { found: Vec::new() }
    }

    pub(crate) fn error(&mut self, at: usize, message: impl Into<String>) {
        let mut message = message.into();
        if message.len() > MAX_MESSAGE_BYTES {
            let full = message.len();
            let mut end = MAX_MESSAGE_BYTES;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push_str(&format!("… (message cut; {full} bytes)"));
        }
        self.found.push((at, message));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    pub(crate) fn finish(mut self, src: &str, path: &Path) -> ScenarioErrors {
        self.found.sort_by_key(|(at, _)| *at);
        self.found.dedup();
        let diagnostics = self
            .found
            .into_iter()
            .map(|(at, message)| {
                let (line, col) = line_col(src, at);
                Diagnostic {
                    path: path.to_path_buf(),
                    line,
                    col,
                    message,
                }
            })
            .collect();
        ScenarioErrors { diagnostics }
    }
}

/// 1-based line and character column of a byte offset (clamped to the source).
pub(crate) fn line_col(src: &str, at: usize) -> (usize, usize) {
    let mut at = at.min(src.len());
    while !src.is_char_boundary(at) {
        at -= 1;
    }
    let before = &src[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// The closest candidate within a small edit distance, for "did you mean" hints.
pub(crate) fn suggest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    // Names people type are short; a long word (a 10 MB template pasted where a name goes)
    // gets no hint rather than a comparison that costs its length times each candidate's.
    const LONGEST_WORD: usize = 256;
    if word.len() > LONGEST_WORD {
        return None;
    }
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        // The distance is at least the difference in length.
        .filter(|c| {
            c.len() <= LONGEST_WORD * 4 && c.chars().count().abs_diff(word.chars().count()) <= limit
        })
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `(did you mean "x"?)` with a leading space, or nothing.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    suggest(word, candidates)
        .map(|s| format!(" (did you mean \"{s}\"?)"))
        .unwrap_or_default()
}

/// Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of
/// neighbours each cost one. Three rows of the table, so memory is linear in `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut row: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        row[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (prev[j] + 1).min(row[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            row[j] = best;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut row);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_edits_and_swaps() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("", "ab"), 2);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("uuid", "uudi"), 1);
        assert_eq!(edit_distance("ca", "abc"), 3);
        assert_eq!(edit_distance("émail", "email"), 1);
    }

    /// Regression: a 10 MB word (a template pasted where a variable name goes) was compared
    /// through a table of its length times each candidate's: 631 MB and seconds. It gets no
    /// hint now, and a short one still does.
    #[test]
    fn a_huge_word_gets_no_hint_and_costs_nothing() {
        let huge = "v".repeat(10_000_000);
        let started = std::time::Instant::now();
        assert_eq!(suggest(&huge, ["uuid", "vu", "iteration"]), None);
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
        assert_eq!(suggest("uiud", ["uuid", "vu", "iteration"]), Some("uuid"));
        assert_eq!(
            suggest("itteration", ["uuid", "vu", "iteration"]),
            Some("iteration")
        );
    }
}
