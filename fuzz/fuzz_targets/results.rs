//! The results reader on any bytes, and every file made from what it accepts (report, JUnit,
//! Markdown, text summary): errors, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use peakload::output::html::{render, Report};
use peakload::record::results::Results;

fuzz_target!(|data: &[u8]| {
    let Ok(results) = Results::from_slice(data, Path::new("results.json")) else {
        return;
    };
    let _ = render(&Report {
        results: &results,
        baseline: Some(&results),
    });
    let _ = peakload::output::junit::junit(&results);
    let _ = peakload::output::markdown::summary_md(&results);
    let _ = peakload::output::summary(&results);
});
