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
    pub junit: Option<PathBuf>,
    /// Appended to, as `$GITHUB_STEP_SUMMARY` expects (created when missing).
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
    if let Some(path) = &files.junit {
        put(
            "JUnit XML",
            path,
            super::junit::junit(results).as_bytes(),
            false,
        )?;
        written.push(("junit", path.clone()));
    }
    if let Some(path) = &files.summary_md {
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
        std::fs::write(path, bytes).map_err(fail)
    }
}

/// Arguments of `peakload report`.
#[derive(Debug, Clone)]
pub struct ReportArgs {
    pub results: PathBuf,
    pub output: Option<PathBuf>,
    pub baseline: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub summary_md: Option<PathBuf>,
}

/// `peakload report`: rebuilds the report (and optionally JUnit and Markdown) from results.
/// Returns the exit code: 0, or 2 when an input cannot be read or an output written.
pub fn report_command(args: ReportArgs) -> i32 {
    use crate::run::exit;
    let results = match Results::load(&args.results) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID;
        }
    };
    let baseline = match args.baseline.as_deref().map(Results::load).transpose() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: baseline: {e}");
            return exit::INVALID;
        }
    };
    if let Some(w) = baseline
        .as_ref()
        .and_then(|b| html::baseline_mismatch(&results, b))
    {
        eprintln!("warning: {w}");
    }
    let files = Artifacts {
        report: Some(
            args.output
                .unwrap_or_else(|| args.results.with_file_name("report.html")),
        ),
        junit: args.junit,
        summary_md: args.summary_md,
    };
    match write(&results, baseline.as_ref(), &files) {
        Ok(written) => {
            for (what, path) in written {
                println!("{what}: {}", path.display());
            }
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::INVALID
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
            junit: Some(dir.path().join("junit.xml")),
            summary_md: Some(dir.path().join("summary.md")),
        };
        std::fs::write(dir.path().join("summary.md"), "earlier step\n").unwrap();
        let written = write(&tiny(), None, &files).unwrap();
        assert_eq!(written.len(), 3);
        let html = std::fs::read_to_string(dir.path().join("out/report.html")).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"));
        let md = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
        assert!(md.starts_with("earlier step\n## "), "{md}");
    }

    #[test]
    fn unwritable_paths_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").unwrap();
        let files = Artifacts {
            junit: Some(blocker.join("junit.xml")),
            ..Artifacts::default()
        };
        let e = write(&tiny(), None, &files).unwrap_err();
        assert!(
            e.to_string().starts_with("cannot write the JUnit XML to"),
            "{e}"
        );
    }
}
