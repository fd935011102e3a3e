//! The files made from results after a run or by `peakload report`: the HTML report, JUnit XML
//! and the Markdown summary. `peakload run` and `peakload report` both come through [`write()`],
//! so the two make the same files from the same results.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::html::{self, Report};
use crate::record::results::Results;

/// Which files to write; `None` skips one.
#[derive(Debug, Clone, Default)]
pub struct Artifacts {
    pub report: Option<PathBuf>,
    pub also: OutputFlags,
}

/// The files besides the report that `run` and `report` write when asked (their command-line
/// flags, declared once here).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OutputFlags {
    /// Also write JUnit XML: one test case per threshold.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Also append a Markdown summary to this file (e.g. "$GITHUB_STEP_SUMMARY"); created
    /// when missing.
    #[arg(long)]
    pub summary_md: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot write the {what} to {}: {source}", path.display())]
pub struct WriteError {
    pub what: &'static str,
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// Writes every requested file; returns what was written, or the first failure.
pub fn write(
    results: &Results,
    baseline: Option<&Results>,
    files: &Artifacts,
) -> Result<Vec<(&'static str, PathBuf)>, WriteError> {
    let mut written = Vec::new();
    if let Some(path) = &files.report {
        let page = html::render(&Report { results, baseline });
        put("report", path, page.as_bytes(), false)?;
        written.push(("report", path.clone()));
    }
    if let Some(path) = &files.also.junit {
        put(
            "JUnit XML",
            path,
            super::junit::junit(results).as_bytes(),
            false,
        )?;
        written.push(("junit", path.clone()));
    }
    if let Some(path) = &files.also.summary_md {
        let md = super::markdown::summary_md(results);
        put("Markdown summary", path, md.as_bytes(), true)?;
        written.push(("summary", path.clone()));
    }
    Ok(written)
}

fn put(what: &'static str, path: &Path, bytes: &[u8], append: bool) -> Result<(), WriteError> {
    let fail = |source| WriteError {
        what,
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    if append {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(fail)?;
        f.write_all(bytes).map_err(fail)
    } else {
        crate::record::results::write_atomic(path, bytes).map_err(fail)
    }
}

/// Checks, before anything is sent, that every file a run will write can be written: the
/// output directory (results, HDR log, report) and the JUnit and Markdown paths. Nothing is
/// left behind by the check (a file it had to create is removed again).
pub fn check_writable(out_dir: &Path, also: &OutputFlags) -> Result<(), WriteError> {
    let probe = out_dir.join(format!(".peakload-write-check.{}", std::process::id()));
    probe_file("output directory", &probe, false).map_err(|mut e| {
        e.path = out_dir.to_owned();
        e
    })?;
    if let Some(p) = &also.junit {
        probe_file("JUnit XML", p, true)?;
    }
    if let Some(p) = &also.summary_md {
        probe_file("Markdown summary", p, true)?;
    }
    Ok(())
}

/// Opens `path` for writing without changing it (creating its directory if needed); a file
/// that did not exist is removed again, as is the probe.
fn probe_file(what: &'static str, path: &Path, keep_existing: bool) -> Result<(), WriteError> {
    let fail = |source| WriteError {
        what,
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let made = dir.map(missing_dirs).unwrap_or_default();
    let existed = keep_existing && path.exists();
    let opened = dir.map_or(Ok(()), std::fs::create_dir_all).and_then(|()| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    });
    if opened.is_ok() && !existed {
        let _ = std::fs::remove_file(path);
    }
    // Directories are made again when the file is written; a failed run leaves none behind.
    remove_empty_dirs(&made);
    opened.map(drop).map_err(fail)
}

/// `dir` and those of its ancestors that do not exist yet, deepest first: what
/// `create_dir_all(dir)` would make, for [`remove_empty_dirs`] to undo.
pub fn missing_dirs(dir: &Path) -> Vec<PathBuf> {
    dir.ancestors()
        .filter(|d| !d.as_os_str().is_empty())
        .take_while(|d| !d.exists())
        .map(Path::to_path_buf)
        .collect()
}

/// Removes the directories of [`missing_dirs`] again, deepest first, as long as they are empty.
pub fn remove_empty_dirs(made: &[PathBuf]) {
    for d in made {
        if std::fs::remove_dir(d).is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::html::tests::tiny;

    #[test]
    fn writes_requested_files_and_appends_the_summary() {
        let dir = tempfile::tempdir().unwrap();
        let files = Artifacts {
            report: Some(dir.path().join("out/report.html")),
            also: OutputFlags {
                junit: Some(dir.path().join("junit.xml")),
                summary_md: Some(dir.path().join("summary.md")),
            },
        };
        std::fs::write(dir.path().join("summary.md"), "earlier step\n").unwrap();
        let written = write(&tiny(), None, &files).unwrap();
        assert_eq!(written.len(), 3);
        let html = std::fs::read_to_string(dir.path().join("out/report.html")).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"));
        let md = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
        assert!(md.starts_with("earlier step\n## "), "{md}");
    }

    /// results.json mutated (fixed seeds) is read or refused, and whatever is read renders as
    /// every file: never a panic.
    #[test]
    fn mutated_results_never_panic_the_reader_or_the_renderers() {
        let json = serde_json::to_string(&tiny()).unwrap();
        const TOKENS: &[&str] = &[
            "null",
            "-1",
            "1e308",
            "18446744073709551615",
            "\"\"",
            "[]",
            "{}",
            "\"é\"",
            "0",
            "\"HISTFAAAA\"",
            "true",
        ];
        let mut read = 0;
        for seed in 0..1000u64 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut text = json.clone();
            // Replace a value (after a ':' ) with a token: mostly still valid JSON.
            for _ in 0..rng.usize(1..3) {
                let colons: Vec<usize> = text.match_indices(':').map(|(i, _)| i).collect();
                let at = colons[rng.usize(0..colons.len())] + 1;
                let end = text[at..]
                    .find([',', '}', ']'])
                    .map_or(text.len(), |i| at + i);
                text.replace_range(at..end, TOKENS[rng.usize(0..TOKENS.len())]);
            }
            if let Ok(r) = Results::from_slice(text.as_bytes(), Path::new("r.json")) {
                read += 1;
                let _ = html::render(&Report {
                    results: &r,
                    baseline: Some(&r),
                });
                let _ = crate::output::junit::junit(&r);
                let _ = crate::output::markdown::summary_md(&r);
                let _ = crate::output::summary(&r);
            }
        }
        assert!(
            read > 0,
            "no mutated file was readable: the test reads nothing"
        );
    }

    #[test]
    fn unwritable_paths_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").unwrap();
        let files = Artifacts {
            also: OutputFlags {
                junit: Some(blocker.join("junit.xml")),
                summary_md: None,
            },
            ..Artifacts::default()
        };
        let e = write(&tiny(), None, &files).unwrap_err();
        assert!(
            e.to_string().starts_with("cannot write the JUnit XML to"),
            "{e}"
        );
    }
}
