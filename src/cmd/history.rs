//! `peakload history add|import|list|show|accept` and the history half of `peakload gate` and
//! `peakload run --history`: open the store, do one thing, print it.

use std::path::Path;

use crate::cli::{GatePolicyCli, HistoryCommand, RunLabelsCli};
use crate::history::policy::{parse_override, PolicyOverride};
use crate::history::shape::{commit_from_ci, from_results, RunLabels};
use crate::history::verdicts::{describe, judge_run, regression_gate, MetricVerdict};
use crate::history::{import, HistoryError, Store};
use crate::record::results::Results;

use super::{Failure, Outcome};

pub(crate) fn failure(e: HistoryError) -> Failure {
    match e {
        HistoryError::Database { .. } => Failure::Output(e.to_string()),
        HistoryError::Layout { .. } | HistoryError::NoSuchRun(_) | HistoryError::Invalid(_) => {
            Failure::Invalid(e.to_string())
        }
    }
}

/// The labels given, the commit falling back to the CI's variables.
pub(crate) fn labels(cli: &RunLabelsCli) -> RunLabels {
    RunLabels {
        environment: cli.environment.clone().filter(|e| !e.trim().is_empty()),
        commit: cli
            .commit
            .clone()
            .or_else(|| commit_from_ci(|name| std::env::var(name).ok())),
    }
}

/// The `--gate-policy` values, validated.
pub(crate) fn overrides(cli: &GatePolicyCli) -> Result<Vec<PolicyOverride>, Failure> {
    cli.overrides
        .iter()
        .map(|o| parse_override(o).map_err(|e| Failure::Invalid(format!("--gate-policy {e}"))))
        .collect()
}

/// Runs `f` on a runtime of its own with the store open, closing it afterwards.
pub(crate) fn with_store<T>(
    db: &str,
    f: impl AsyncFnOnce(&Store) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Aborted(format!("cannot start the runtime: {e}")))?;
    rt.block_on(async {
        let store = Store::open(db).await.map_err(failure)?;
        let out = f(&store).await;
        store.close().await;
        out
    })
}

pub fn command(cmd: HistoryCommand) -> Result<Outcome, Failure> {
    match cmd {
        HistoryCommand::Add {
            results,
            labels: l,
            db,
        } => {
            let r = load(&results)?;
            let run = from_results(&r, &labels(&l)).map_err(failure)?;
            with_store(&db.db, async |store| {
                if let Some(id) = store
                    .find_recorded(&run.scenario, &run.environment, &run.started_at)
                    .await
                    .map_err(failure)?
                {
                    crate::outln!(
                        "already recorded as run #{id} (same scenario, environment and start \
                         time); nothing added"
                    );
                    return Ok(Outcome::Success);
                }
                let id = store.add(&run).await.map_err(failure)?;
                crate::outln!(
                    "recorded run #{id}: {} ({}) in {}",
                    run.scenario,
                    run.environment,
                    store.target()
                );
                Ok(Outcome::Success)
            })
        }
        HistoryCommand::Import {
            file,
            environment,
            db,
        } => {
            let runs = import::read_csv(&file, environment.as_deref())
                .map_err(|e| Failure::Invalid(format!("{e}\nnothing was imported")))?;
            with_store(&db.db, async |store| {
                let (mut added, mut skipped) = (0, 0);
                for run in &runs {
                    let external = run.external_id.as_deref().unwrap_or_default();
                    if store
                        .find_imported(&run.scenario, &run.environment, external)
                        .await
                        .map_err(failure)?
                        .is_some()
                    {
                        skipped += 1;
                        continue;
                    }
                    store.add(run).await.map_err(failure)?;
                    added += 1;
                }
                crate::outln!(
                    "imported {added} run(s) from {} into {}{}",
                    file.display(),
                    store.target(),
                    if skipped > 0 {
                        format!("; {skipped} already there (same scenario, environment, run_id)")
                    } else {
                        String::new()
                    }
                );
                Ok(Outcome::Success)
            })
        }
        HistoryCommand::List {
            scenario,
            environment,
            limit,
            db,
        } => with_store(&db.db, async |store| {
            let runs = store
                .list(scenario.as_deref(), environment.as_deref(), limit.max(1))
                .await
                .map_err(failure)?;
            if runs.is_empty() {
                crate::outln!("no runs recorded in {}", store.target());
            }
            crate::outln!(
                "{:>6}  {:<24}  {:<20}  {:<12}  {:<12}  {:<8}",
                "run",
                "started",
                "scenario",
                "environment",
                "commit",
                "accepted"
            );
            for r in runs {
                crate::outln!(
                    "{:>6}  {:<24}  {:<20}  {:<12}  {:<12}  {}",
                    format!("#{}", r.id),
                    r.started_at,
                    r.scenario,
                    r.environment,
                    r.commit.as_deref().map_or("-", |c| &c[..c.len().min(12)]),
                    if r.accepted {
                        "baseline starts here"
                    } else {
                        ""
                    }
                );
            }
            Ok(Outcome::Success)
        }),
        HistoryCommand::Show { run, last, db } => with_store(&db.db, async |store| {
            show(store, run, last.max(1)).await.map_err(failure)?;
            Ok(Outcome::Success)
        }),
        HistoryCommand::Accept { run, undo, db } => with_store(&db.db, async |store| {
            store.set_accepted(run, !undo).await.map_err(failure)?;
            let r = store.run(run).await.map_err(failure)?;
            if undo {
                crate::outln!("run #{run} no longer starts an accepted level");
            } else {
                crate::outln!(
                    "accepted run #{run} ({}, {}): the gate's baseline for {} in {} starts \
                     there; earlier runs are no longer compared with",
                    r.started_at,
                    r.scenario,
                    r.scenario,
                    r.environment
                );
            }
            Ok(Outcome::Success)
        }),
    }
}

fn load(path: &Path) -> Result<Results, Failure> {
    Results::load(path).map_err(|e| Failure::Invalid(e.to_string()))
}

async fn show(store: &Store, id: i64, last: usize) -> Result<(), HistoryError> {
    let run = store.run(id).await?;
    crate::outln!("run #{}: {}", run.id, run.scenario);
    crate::outln!("  started      {}", run.started_at);
    crate::outln!("  environment  {}", run.environment);
    crate::outln!("  commit       {}", run.commit.as_deref().unwrap_or("-"));
    crate::outln!(
        "  load shape   {}",
        run.load_hash.as_deref().unwrap_or("unknown (imported)")
    );
    crate::outln!(
        "  source       {}{}",
        run.source,
        run.external_id
            .as_deref()
            .map(|e| format!(" (run_id {e})"))
            .unwrap_or_default()
    );
    if run.accepted {
        crate::outln!("  accepted     the gate's baseline starts at this run");
    }
    let mut series = store.series_until(&run).await?;
    // The whole run first, then the steps; each scope's metrics in the recorded order.
    let rank = |m: &str| {
        crate::history::RECORDED_METRICS
            .iter()
            .position(|r| *r == m)
            .unwrap_or(usize::MAX)
    };
    series.sort_by(|a, b| {
        (
            a.scope != crate::history::HTTP_SCOPE,
            &a.scope,
            rank(&a.metric),
            &a.metric,
        )
            .cmp(&(
                b.scope != crate::history::HTTP_SCOPE,
                &b.scope,
                rank(&b.metric),
                &b.metric,
            ))
    });
    crate::outln!("\n  series up to this run (oldest first; * = accepted level starts):");
    let mut scope = "";
    for s in &series {
        if s.points.last().map(|p| p.run_id) != Some(run.id) {
            continue;
        }
        if s.scope != scope {
            crate::outln!("  {}", s.scope);
            scope = &s.scope;
        }
        let from = s.points.len().saturating_sub(last);
        let values: Vec<String> = s.points[from..]
            .iter()
            .map(|p| {
                format!(
                    "{}{}",
                    fmt_value(&s.metric, p.value),
                    if p.accepted { "*" } else { "" }
                )
            })
            .collect();
        crate::outln!("    {:<10} {}", s.metric, values.join("  "));
    }
    Ok(())
}

fn fmt_value(metric: &str, v: f64) -> String {
    match metric {
        "error_rate" | "checks" => format!("{:.2}%", v * 100.0),
        _ if v >= 100.0 => format!("{v:.0}"),
        _ => format!("{v:.1}"),
    }
}

/// Prints verdicts, one line each, regressions first; returns whether any regressed.
pub(crate) fn print_verdicts(verdicts: &[MetricVerdict]) -> bool {
    let regressed: Vec<&MetricVerdict> = verdicts.iter().filter(|v| v.regressed()).collect();
    for v in regressed
        .iter()
        .copied()
        .chain(verdicts.iter().filter(|v| !v.regressed()))
    {
        crate::outln!("  {}", describe(v));
    }
    if regressed.is_empty() {
        crate::outln!("  gate: no regression against the history");
    } else {
        crate::outln!(
            "  gate: {} metric(s) regressed: {}",
            regressed.len(),
            regressed
                .iter()
                .map(|v| format!("{} {}", v.scope, v.metric))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    !regressed.is_empty()
}

/// `peakload gate`: a recorded run (`--run`) or a results file, judged against the history.
pub fn gate(args: crate::cli::GateCli) -> Result<Outcome, Failure> {
    let mut overrides = overrides(&args.policy)?;
    if let Some(path) = &args.scenario {
        let scenario = crate::scenario::load_scenario(path).map_err(Failure::Scenario)?;
        // The file's [gate] first, so the command line wins.
        overrides = crate::history::policy::from_scenario(&scenario.gate)
            .into_iter()
            .chain(overrides)
            .collect();
    }
    let new = match (&args.results, args.run) {
        (Some(path), None) => {
            Some(from_results(&load(path)?, &labels(&args.labels)).map_err(failure)?)
        }
        (None, Some(_)) => None,
        _ => {
            return Err(Failure::Invalid(
                "gate needs a results.json or --run ID (a run recorded in --history)".into(),
            ))
        }
    };
    with_store(&args.db.db, async |store| {
        let verdicts = match (&new, args.run) {
            (Some(run), _) => crate::history::verdicts::judge_new(store, run, &overrides)
                .await
                .map_err(failure)?,
            (None, Some(id)) => {
                let (run, verdicts) = judge_run(store, id, &overrides).await.map_err(failure)?;
                crate::outln!(
                    "run #{} ({}, {}, {}) against the runs recorded before it:",
                    run.id,
                    run.scenario,
                    run.environment,
                    run.started_at
                );
                verdicts
            }
            (None, None) => unreachable!("checked above"),
        };
        Ok(if print_verdicts(&verdicts) {
            Outcome::Regressed
        } else {
            Outcome::Success
        })
    })
}

/// How many runs of each series the report's trend charts show.
pub const TREND_RUNS: usize = 30;

/// `run --history`: records the finished run, judges it and keeps the verdicts in its
/// results file; `Regressed` when a metric regressed.
pub(crate) fn record_and_gate(
    results_path: &Path,
    db: &str,
    labels_cli: &RunLabelsCli,
    overrides: &[PolicyOverride],
) -> Result<Outcome, Failure> {
    let mut r = load(results_path)?;
    let run = from_results(&r, &labels(labels_cli)).map_err(failure)?;
    let (outcome, gate) = with_store(db, async |store| {
        let id = store.add(&run).await.map_err(failure)?;
        crate::outln!(
            "\n  history: recorded run #{id} in {} ({}); judged against the runs before it:",
            store.target(),
            run.environment
        );
        let (stored, verdicts) = judge_run(store, id, overrides).await.map_err(failure)?;
        let outcome = if print_verdicts(&verdicts) {
            Outcome::Regressed
        } else {
            Outcome::Success
        };
        Ok((
            outcome,
            regression_gate(store.target(), &stored, &verdicts, TREND_RUNS),
        ))
    })?;
    r.regression = Some(gate);
    r.save(results_path)
        .map_err(|e| Failure::Output(e.to_string()))?;
    Ok(outcome)
}
