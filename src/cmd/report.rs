//! `peakload report`: rebuilds the report (and optionally JUnit and Markdown) from results,
//! optionally compared with a baseline run.

use super::{Failure, Outcome};
use crate::cli::ReportCli;
use crate::output::artifacts::{self, Artifacts};
use crate::output::html;
use crate::record::results::Results;

pub fn command(args: ReportCli) -> Result<Outcome, Failure> {
    let results = Results::load(&args.results).map_err(|e| Failure::Invalid(e.to_string()))?;
    let baseline = args
        .baseline
        .as_deref()
        .map(Results::load)
        .transpose()
        .map_err(|e| Failure::Invalid(format!("baseline: {e}")))?;
    if let Some(w) = baseline
        .as_ref()
        .and_then(|b| html::baseline_mismatch(&results, b))
    {
        crate::errln!("warning: {w}");
    }
    let files = Artifacts {
        report: Some(
            args.output
                .unwrap_or_else(|| args.results.with_file_name("report.html")),
        ),
        also: args.outputs,
    };
    let written = artifacts::write(&results, baseline.as_ref(), &files)
        .map_err(|e| Failure::Output(e.to_string()))?;
    for (what, path) in written {
        crate::outln!("{what}: {}", path.display());
    }
    Ok(Outcome::Success)
}
