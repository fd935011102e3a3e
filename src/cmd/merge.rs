//! `peakload merge`: the results of the N shards of a distributed run → the result of the
//! whole plan, written as one run writes it (results.json, latency.hlog, report.html, JUnit,
//! Markdown), with thresholds and the diagnosis run again on the merged figures.
//!
//! Inputs are shard directories (with `results.json` and `latency.hlog`), `results.json` files,
//! or a directory holding shard directories (a shared volume, one directory per pod); or an
//! `s3://bucket/prefix/` holding them ([`s3`] fetches them into a staging directory first).
//! `--out s3://…` writes locally, then uploads.
//!
//! With `--shards A-B` (or `--shards-per-part N` in an Indexed Job) it writes a *part* of a
//! two-level merge: the shards of that range only, results.json and latency.hlog, for a final
//! `peakload merge` of the parts (and any shards not in a part) to add up and judge.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::{s3, Failure, Outcome};
use crate::cli::MergeCli;
use crate::output::artifacts::{self, Artifacts};
use crate::record::merge::{
    in_range, merge, merge_part, thresholds_given, InRange, MergeError, ShardInput, ShardRange,
};
use crate::record::results::{Results, ResultsError, ResultsKind};
use crate::scenario::Scenario;

pub fn command(args: MergeCli) -> Result<Outcome, Failure> {
    let mut select = Selection {
        part: part_range(&args)?,
        outside: 0,
    };
    if select.part.is_some() && (args.outputs.junit.is_some() || args.outputs.summary_md.is_some())
    {
        return Err(Failure::Invalid(
            "a part (--shards) writes results.json and latency.hlog only: give --junit and \
             --summary-md to the final merge of the parts"
                .into(),
        ));
    }
    let out_s3 = s3::location(&args.out)?;
    let mut remote = Vec::new();
    for input in &args.inputs {
        if let Some(at) = s3::location(input)? {
            remote.push(at);
        }
    }
    if out_s3.is_none() && remote.is_empty() {
        let files = local_inputs(&args.inputs, &args.out)?;
        return merge_into(files, &args.out, &args, &mut select);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Aborted(format!("cannot start the runtime: {e}")))?;
    let bucket = rt
        .block_on(s3::connect(args.s3_endpoint.as_deref()))
        .map_err(Failure::Invalid)?;
    let staging = s3::staging_dir("merge");
    let result = (|| {
        let mut files = Vec::new();
        for (i, input) in args.inputs.iter().enumerate() {
            match s3::location(input)? {
                Some(at) => {
                    let into = staging.join(format!("input-{i}"));
                    let mut keep = |file: &Path, source: &str| {
                        let kind =
                            Results::kind(file).map_err(|e| Failure::Invalid(e.to_string()))?;
                        select.admit(&kind, source)
                    };
                    let fetched = rt.block_on(s3::fetch_results(
                        &bucket,
                        &at,
                        out_s3.as_ref(),
                        &into,
                        &mut keep,
                    ))?;
                    files.extend(fetched.into_iter().map(|f| (f.results, f.source)));
                }
                None => files.extend(local_inputs(std::slice::from_ref(input), &args.out)?),
            }
        }
        let Some(to) = &out_s3 else {
            return merge_into(files, &args.out, &args, &mut select);
        };
        let local_out = staging.join("merged");
        let outcome = merge_into(files, &local_out, &args, &mut select)?;
        let names = rt
            .block_on(s3::upload_dir(&bucket, &local_out, to))
            .map_err(|e| {
                Failure::Output(format!(
                    "uploading the merged results to {to} failed: {e}; they are kept in {}",
                    local_out.display()
                ))
            })?;
        crate::outln!("  uploaded to {to}: {}", names.join(", "));
        Ok(outcome)
    })();
    // Kept when the merged files could not be uploaded (the message names them).
    if !matches!(result, Err(Failure::Output(_))) {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

/// The shard range of a part (`--shards`, or `--shards-per-part` with the Indexed Job's
/// completion index), `None` for a whole merge.
fn part_range(args: &MergeCli) -> Result<Option<ShardRange>, Failure> {
    let Some(size) = args.shards_per_part else {
        return Ok(args.shards);
    };
    let env = crate::plan::shard::INDEX_ENV;
    let index = std::env::var(env).map_err(|_| {
        Failure::Invalid(format!(
            "--shards-per-part takes the part from {env} (set in a Kubernetes Indexed Job), \
             which is not set: give --shards A-B"
        ))
    })?;
    let k: u32 = index
        .trim()
        .parse()
        .map_err(|_| Failure::Invalid(format!("{env}={index:?}: not a part number")))?;
    ShardRange::nth(k, size).map(Some).map_err(Failure::Invalid)
}

/// Which results found in the inputs are merged: shards and parts (those within the range
/// of a part being merged); never an earlier whole merge's output.
struct Selection {
    part: Option<ShardRange>,
    /// Shards and parts left out for being outside the range.
    outside: usize,
}

impl Selection {
    fn admit(&mut self, results: &ResultsKind, source: &str) -> Result<bool, Failure> {
        if results.shard.is_none() && results.part.is_none() {
            if results.merge.is_some() {
                // An earlier merge's output next to the shards (a prefix's merged/).
                crate::errln!("left out {source}: a merged result, not a shard");
                return Ok(false);
            }
            // Not a shard at all: the merge says so.
            return Ok(true);
        }
        let Some(range) = self.part else {
            return Ok(true);
        };
        match in_range(results, range) {
            InRange::Inside => Ok(true),
            InRange::Outside => {
                self.outside += 1;
                Ok(false)
            }
            InRange::Across => {
                let p = results.part.as_ref().expect("only a part lies across");
                Err(Failure::Invalid(format!(
                    "{source} is the part of shards {}-{}, partly inside --shards {range}: \
                     the parts of one merge cannot overlap",
                    p.first, p.last
                )))
            }
        }
    }
}

/// The `results.json` files the local inputs name, each with the name the per-shard table
/// gives it (its directory).
fn local_inputs(inputs: &[PathBuf], out: &Path) -> Result<Vec<(PathBuf, String)>, Failure> {
    let mut files = Vec::new();
    for input in inputs {
        files.extend(results_files(input, out)?);
    }
    Ok(files
        .into_iter()
        .map(|file| {
            let source = file
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(&file)
                .display()
                .to_string();
            (file, source)
        })
        .collect())
}

/// Merges the shards' files into `out`, a local directory.
fn merge_into(
    files: Vec<(PathBuf, String)>,
    out: &Path,
    args: &MergeCli,
    select: &mut Selection,
) -> Result<Outcome, Failure> {
    if files.is_empty() {
        return Err(Failure::Invalid(
            "no results.json found in the inputs: give shard directories, results.json files, \
             a directory holding shard directories, or an s3:// prefix holding them"
                .into(),
        ));
    }
    let mut inputs = Vec::new();
    for (file, source) in files {
        let unreadable = |e: ResultsError| Failure::Invalid(e.to_string());
        // A part keeps a tenth of what it finds: the others are looked at, not loaded.
        if select.part.is_some()
            && !select.admit(&Results::kind(&file).map_err(unreadable)?, &source)?
        {
            continue;
        }
        let results = Results::load(&file).map_err(unreadable)?;
        if select.part.is_none() && !select.admit(&ResultsKind::from(&results), &source)? {
            continue;
        }
        let hlog = std::fs::File::open(file.with_file_name("latency.hlog"))
            .ok()
            .map(|f| Box::new(std::io::BufReader::new(f)) as Box<dyn std::io::BufRead + Send>);
        inputs.push(ShardInput {
            source,
            results,
            hlog,
        });
    }
    if let Some(range) = select.part {
        if select.outside > 0 {
            crate::errln!(
                "left out {} shard(s) or part(s) outside shards {range}",
                select.outside
            );
        }
        if inputs.is_empty() {
            return Err(Failure::Invalid(format!(
                "no shard of {range} in the inputs: nothing to merge into this part"
            )));
        }
        return write_part(inputs, range, out);
    }
    let thresholds_wanted: Vec<String> = {
        let mut v = thresholds_given(&inputs);
        v.extend(args.thresholds.iter().cloned());
        v
    };
    let scenario_path = args.scenario.clone().or_else(|| {
        inputs
            .first()
            .map(|i| PathBuf::from(&i.results.scenario.file))
            .filter(|p| p.is_file())
    });
    let mut results = with_hlog(out, |hlog| merge(inputs, hlog))?;

    // Thresholds, on the merged figures: the scenario's and those given to the shards.
    if !thresholds_wanted.is_empty() {
        let scenario: Scenario = match &scenario_path {
            Some(p) => crate::scenario::load_scenario(p).map_err(Failure::Scenario)?,
            None => {
                return Err(Failure::Invalid(format!(
                    "the shards have thresholds ({}) and the scenario file {:?} is not here to \
                     read them against: pass --scenario FILE",
                    thresholds_wanted.join(", "),
                    results.scenario.file
                )))
            }
        };
        let parsed = thresholds_wanted
            .iter()
            .map(|e| {
                crate::scenario::parse_threshold(e, &scenario)
                    .map_err(|err| Failure::Invalid(format!("threshold {e:?}: {err}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        results.thresholds = crate::gate::evaluate(&parsed, &results);
    }
    let diagnosis = results
        .infra
        .is_some()
        .then(|| crate::diagnose::apply(&mut results));

    let path = out.join("results.json");
    results
        .save(&path)
        .map_err(|e| Failure::Output(e.to_string()))?;
    crate::out!("{}", crate::output::summary(&results));
    crate::out!("{}", crate::output::shards::text(&results));
    if let Some(d) = &diagnosis {
        crate::out!("\n{}", crate::diagnose::render_text(d));
    }
    crate::outln!("\n  results: {}", path.display());
    let mut also = args.outputs.clone();
    also.junit.get_or_insert_with(|| out.join("junit.xml"));
    also.summary_md
        .get_or_insert_with(|| out.join("summary.md"));
    let files = Artifacts {
        report: Some(out.join("report.html")),
        also,
    };
    let written =
        artifacts::write(&results, None, &files).map_err(|e| Failure::Output(e.to_string()))?;
    for (what, p) in written {
        crate::outln!("  {what}: {}", p.display());
    }
    if results.status == "incomplete" {
        return Ok(Outcome::Incomplete);
    }
    if results.thresholds.iter().any(|t| !t.ok) {
        return Ok(Outcome::ThresholdsCrossed);
    }
    Ok(Outcome::Success)
}

/// Runs a merge writing its `latency.hlog` into `out`, created when missing.
fn with_hlog(
    out: &Path,
    merge: impl FnOnce(BufWriter<File>) -> Result<Results, MergeError>,
) -> Result<Results, Failure> {
    std::fs::create_dir_all(out).map_err(|e| {
        Failure::Output(format!(
            "cannot create output directory {}: {e}",
            out.display()
        ))
    })?;
    let hlog_path = out.join("latency.hlog");
    let hlog = File::create(&hlog_path)
        .map_err(|e| Failure::Output(format!("cannot write {}: {e}", hlog_path.display())))?;
    merge(BufWriter::new(hlog)).map_err(|e| {
        // No half-merged log left behind for inputs that are not one run.
        let _ = std::fs::remove_file(&hlog_path);
        Failure::Invalid(e.to_string())
    })
}

/// A part of a two-level merge: results.json and latency.hlog, the per-shard table printed.
/// Exit 0 even with shards of its range missing or failed: the final merge judges the run.
fn write_part(inputs: Vec<ShardInput>, range: ShardRange, out: &Path) -> Result<Outcome, Failure> {
    let results = with_hlog(out, |hlog| merge_part(inputs, range, hlog))?;
    let path = out.join("results.json");
    results
        .save(&path)
        .map_err(|e| Failure::Output(e.to_string()))?;
    crate::out!("{}", crate::output::shards::text(&results));
    crate::outln!(
        "\n  part written (thresholds, diagnosis and report come with the final merge of the \
         parts): {}",
        path.display()
    );
    Ok(Outcome::Success)
}

/// `results.json` files named by one input: the file itself, a shard directory, or a
/// directory of shard directories (where `out`, a merge written there before, is left out).
fn results_files(input: &Path, out: &Path) -> Result<Vec<PathBuf>, Failure> {
    if input.is_file() {
        return Ok(vec![input.to_owned()]);
    }
    if !input.is_dir() {
        return Err(Failure::Invalid(format!(
            "{}: no such file or directory",
            input.display()
        )));
    }
    let own = input.join("results.json");
    if own.is_file() {
        return Ok(vec![own]);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(input)
        .map_err(|e| Failure::Invalid(format!("cannot read {}: {e}", input.display())))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| !same_dir(p, out))
        .map(|p| p.join("results.json"))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    Ok(found)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
