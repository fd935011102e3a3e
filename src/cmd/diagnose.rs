//! `peakload diagnose`: re-runs the diagnosis offline, from a run's `results.json`, a CSV
//! export of signals, or both.

use std::path::Path;

use super::{Failure, Outcome};
use crate::cli::DiagnoseCli;
use crate::diagnose::{analyze, render_text, resample, Input};
use crate::observe::{csv_import, RunWindow};
use crate::record::results::Results;

pub fn command(args: &DiagnoseCli) -> Result<Outcome, Failure> {
    diagnose(args).map_err(Failure::Invalid)?;
    Ok(Outcome::Success)
}

fn diagnose(args: &DiagnoseCli) -> Result<(), String> {
    let (input, mut results) = match (&args.results, &args.metrics) {
        (Some(path), metrics) => {
            let mut results = Results::load(path).map_err(|e| e.to_string())?;
            let mut input = Input::from_results(&results, results.infra.as_ref());
            if let Some(csv) = metrics {
                let origin = RunWindow::from_results(&results).map(|w| w.start_unix);
                let infra = csv_import::import(csv, origin).map_err(|e| e.to_string())?;
                input.add_infra(&infra);
                if args.write {
                    results
                        .infra
                        .get_or_insert_with(Default::default)
                        .extend(infra);
                }
            }
            (input, Some((path, results)))
        }
        (None, Some(csv)) => (csv_input(csv, args.sli.as_deref())?, None),
        (None, None) => {
            return Err("give a results.json, or --metrics FILE.csv --sli COLUMN".into());
        }
    };
    let d = analyze(&input);
    if args.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&d).expect("diagnosis serializes")
        );
    } else {
        crate::out!("{}", render_text(&d));
    }
    if let (true, Some((path, results))) = (args.write, results.as_mut()) {
        results.capacity = d.capacity.clone();
        results.findings = d.findings.clone();
        results.diagnosis_notes = d.notes();
        results.save(path).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A CSV on its own: `--sli` names the users' metric (higher is worse), the other columns
/// are the candidate signals.
fn csv_input(path: &Path, sli: Option<&str>) -> Result<Input, String> {
    let sli = sli.ok_or("--metrics without a results file needs --sli COLUMN")?;
    let mut infra = csv_import::import(path, None).map_err(|e| e.to_string())?;
    let at = infra
        .series
        .iter()
        .position(|s| s.name == sli)
        .ok_or_else(|| {
            let names: Vec<&str> = infra.series.iter().map(|s| s.name.as_str()).collect();
            format!(
                "--sli {sli:?}: no such column in {}; columns: {}",
                path.display(),
                names.join(", ")
            )
        })?;
    let sli_series = infra.series.remove(at);
    let n = sli_series
        .points
        .iter()
        .map(|p| p.0)
        .fold(0.0, f64::max)
        .floor() as usize
        + 1;
    let latency =
        resample(&sli_series, n).ok_or_else(|| format!("--sli {sli:?} has fewer than 3 values"))?;
    let mut input = Input {
        latency_stat: "sli",
        latency_ms: Some(latency),
        rps: vec![0.0; n],
        generator_busy: vec![false; n],
        generator_kept_up: true,
        // The column's unit is unknown: judge it by relative change only.
        latency_floor_ms: 0.0,
        ..Default::default()
    };
    input.add_infra(&infra);
    Ok(input)
}
