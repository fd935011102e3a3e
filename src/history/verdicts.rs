//! A recorded run judged against the comparable runs recorded before it: one
//! [`MetricVerdict`] per scope and gated metric, from `gate::change::judge` with the metric's
//! default policy.

use crate::gate::change::{judge, Judgement, Method, Policy, Verdict};

use super::policy::{policy_for, PolicyOverride};

use super::{HistoryError, Series, SeriesPoint, Store, StoredRun};
use crate::record::regression::{GatedMetric, RegressionGate, TrendPoint};
use crate::record::results::decode_histogram;

/// One metric of one scope of the judged run.
#[derive(Debug, Clone)]
pub struct MetricVerdict {
    pub scope: String,
    pub metric: String,
    /// The judged run's value.
    pub value: f64,
    /// The series judged (oldest first, the judged run last).
    pub points: Vec<SeriesPoint>,
    pub judgement: Judgement,
    /// The policy it was judged with.
    pub policy: Policy,
    /// Set when a change was not counted because the percentile sits on an edge.
    pub knife_edge: Option<KnifeEdge>,
}

/// A percentile of the judged run that sits between two groups of requests: one request to
/// either side of its rank gives values from `lo` to `hi` (ms), at least twice apart, and that
/// span holds the baseline's median. A single request then decides the value (half the
/// requests near 1 ms and half near 60 ms: the p50 is the slowest fast one or the fastest slow
/// one), so a change there is not the system's and is not counted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KnifeEdge {
    pub lo: f64,
    pub hi: f64,
}

/// The knife edge of `metric` (a percentile) in `histogram` (microseconds), if the baseline's
/// median (ms) lies on it.
pub fn knife_edge(
    metric: &str,
    histogram: &hdrhistogram::Histogram<u64>,
    baseline: f64,
) -> Option<KnifeEdge> {
    let q = crate::gate::change::percentile(metric)? / 100.0;
    if histogram.is_empty() {
        return None;
    }
    let one = 1.0 / histogram.len() as f64;
    let ms = |q: f64| histogram.value_at_quantile(q.clamp(0.0, 1.0)) as f64 / 1000.0;
    let (lo, hi) = (ms(q - one), ms(q + one));
    (hi >= 2.0 * lo && (lo..=hi).contains(&baseline)).then_some(KnifeEdge { lo, hi })
}

impl MetricVerdict {
    pub fn regressed(&self) -> bool {
        self.judgement.verdict == Verdict::Regressed
    }
}

/// Judges run `id` against its history. Metrics without a gate policy are skipped.
pub async fn judge_run(
    store: &Store,
    id: i64,
    overrides: &[PolicyOverride],
) -> Result<(StoredRun, Vec<MetricVerdict>), HistoryError> {
    let run = store.run(id).await?;
    let series = store.series_until(&run).await?;
    let histograms: Vec<(String, String)> = store
        .histograms(id)
        .await?
        .into_iter()
        .map(|(scope, _, _, h)| (scope, h))
        .collect();
    let verdicts = judge_series(&run, &series, overrides, &histograms)?;
    Ok((run, verdicts))
}

/// The verdicts for `run` over `series` (each ending, where the run has the metric, with
/// the run's own value). `histograms` are the run's own, by scope (encoded as stored): a
/// percentile's change is not counted where it sits on a [`KnifeEdge`].
pub fn judge_series(
    run: &StoredRun,
    series: &[Series],
    overrides: &[PolicyOverride],
    histograms: &[(String, String)],
) -> Result<Vec<MetricVerdict>, HistoryError> {
    let mut out = Vec::new();
    for s in series {
        let Some(policy) = policy_for(&s.metric, overrides) else {
            continue;
        };
        if s.points.last().map(|p| p.run_id) != Some(run.id) {
            continue;
        }
        let values: Vec<f64> = s.points.iter().map(|p| p.value).collect();
        let accepted: Vec<usize> = s
            .points
            .iter()
            .enumerate()
            .filter(|(_, p)| p.accepted)
            .map(|(i, _)| i)
            .collect();
        let mut judgement = judge(&values, &accepted, &policy).map_err(|e| {
            HistoryError::Invalid(format!("{} {} of run {}: {e}", s.scope, s.metric, run.id))
        })?;
        let edge = match (&judgement.verdict, &judgement.baseline) {
            (Verdict::Regressed | Verdict::Improved, Some(base)) => histograms
                .iter()
                .find(|(scope, _)| *scope == s.scope)
                .and_then(|(_, h)| decode_histogram(h).ok())
                .and_then(|h| knife_edge(&s.metric, &h, base.median)),
            _ => None,
        };
        if edge.is_some() {
            judgement.verdict = Verdict::Unchanged;
        }
        out.push(MetricVerdict {
            scope: s.scope.clone(),
            metric: s.metric.clone(),
            value: *values.last().expect("the run's own value"),
            points: s.points.clone(),
            judgement,
            policy,
            knife_edge: edge,
        });
    }
    // The whole run first, then steps; within a scope, the metrics in a fixed order.
    let rank = |m: &str| {
        super::RECORDED_METRICS
            .iter()
            .position(|r| *r == m)
            .unwrap_or(usize::MAX)
    };
    out.sort_by(|a, b| {
        (
            a.scope != super::HTTP_SCOPE,
            &a.scope,
            rank(&a.metric),
            &a.metric,
        )
            .cmp(&(
                b.scope != super::HTTP_SCOPE,
                &b.scope,
                rank(&b.metric),
                &b.metric,
            ))
    });
    Ok(out)
}

fn unit(metric: &str) -> &'static str {
    match metric {
        "error_rate" | "checks" => "",
        "rps" => " req/s",
        _ => " ms",
    }
}

/// The policy's minimum effect in words: "5 % and 0.5 ms".
fn minimum_effect(v: &MetricVerdict) -> String {
    let p = &v.policy;
    let relative = (p.min_relative > 0.0).then(|| format!("{} %", trim(p.min_relative * 100.0)));
    let absolute = (p.min_absolute > 0.0).then(|| figure(&v.metric, p.min_absolute));
    match (relative, absolute) {
        (Some(r), Some(a)) => format!("{r} and {a}"),
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => "none".to_string(),
    }
}

fn figure(metric: &str, v: f64) -> String {
    match metric {
        "error_rate" | "checks" => format!("{:.2} %", v * 100.0),
        _ => format!("{}{}", trim(v), unit(metric)),
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// The verdict in words, one line: what was compared with what, the change, and how sure.
pub fn describe(v: &MetricVerdict) -> String {
    let j = &v.judgement;
    let what = format!("{} {}", v.scope, v.metric);
    let now = figure(&v.metric, v.value);
    let Some(base) = &j.baseline else {
        return format!(
            "{what}: insufficient history (no earlier comparable run; {} run(s) to record, \
             this one included, before the gate judges); now {now}",
            v.policy.min_history
        );
    };
    let base_ids: Vec<i64> = v.points[base.first_run..base.first_run + base.runs]
        .iter()
        .map(|p| p.run_id)
        .collect();
    let base_words = format!(
        "baseline median {} over {} run(s) (#{}..#{})",
        figure(&v.metric, base.median),
        base.runs,
        base_ids.first().copied().unwrap_or_default(),
        base_ids.last().copied().unwrap_or_default(),
    );
    let Some(change) = &j.change else {
        // After an accepted change the baseline starts at the accepted run: say so, and when
        // the gate will judge this level again.
        let first = &v.points[base.first_run];
        let since = if first.accepted {
            format!("since the accepted run #{}", first.run_id)
        } else {
            "so far".to_string()
        };
        return format!(
            "{what}: insufficient history ({} comparable run(s) {since}, {} needed: {} more \
             to record, this one included, before the gate judges again); now {now}, \
             {base_words}",
            base.runs,
            v.policy.min_history,
            v.policy.min_history.saturating_sub(base.runs)
        );
    };
    let verdict = match j.verdict {
        Verdict::Regressed => "REGRESSED",
        Verdict::Improved => "improved",
        Verdict::Unchanged => "unchanged",
        Verdict::InsufficientHistory => "insufficient history",
    };
    let size = match change.relative {
        Some(r) => format!("{:+.1} %", r * 100.0),
        None => format!("{:+}{}", trim(change.absolute), unit(&v.metric)),
    };
    let method = match change.method {
        Method::ChangePoint => "change-point scan",
        Method::NewestRuns => "newest-runs test",
    };
    let since = if j.compared.runs > 1 {
        let first = v.points[j.compared.first_run].run_id;
        format!(
            " (runs #{first}.. at median {})",
            figure(&v.metric, j.compared.median)
        )
    } else {
        String::new()
    };
    let p = if change.p_value < 0.0001 {
        "p < 0.0001".to_string()
    } else {
        format!("p = {:.4}", change.p_value)
    };
    let edge = match v.knife_edge {
        Some(e) => format!(
            "; not counted: one request either way of this percentile gives {}–{} ms, which \
             holds the baseline's median (it sits between two groups of requests; judge the \
             steps)",
            trim(e.lo),
            trim(e.hi)
        ),
        None if j.verdict == Verdict::Unchanged
            && change.p_value <= v.policy.alpha
            && (change.absolute.abs() < v.policy.min_absolute
                || change
                    .relative
                    .is_some_and(|r| r.abs() < v.policy.min_relative)) =>
        {
            format!("; smaller than the minimum effect ({})", minimum_effect(v))
        }
        None => String::new(),
    };
    format!(
        "{what}: {verdict}: now {now} vs {base_words}; change {size}{since}, {p} ({method}){edge}"
    )
}

/// Judges a run not recorded (a results file) against the comparable recorded runs that
/// started before it, as if it were recorded next. Runs recorded at the very same start time
/// are left out: that is this run itself, when its results were recorded already.
pub async fn judge_new(
    store: &Store,
    run: &super::NewRun,
    overrides: &[PolicyOverride],
) -> Result<Vec<MetricVerdict>, HistoryError> {
    let pseudo = StoredRun {
        // No stored id is below 1: only runs that started strictly earlier compare.
        id: 0,
        scenario: run.scenario.clone(),
        load_hash: run.load_hash.clone(),
        environment: run.environment.clone(),
        commit: run.commit.clone(),
        started_at: run.started_at.clone(),
        started_ms: run.started_ms,
        status: run.status.clone(),
        source: run.source.clone(),
        external_id: run.external_id.clone(),
        accepted: false,
        recorded_at: String::new(),
    };
    let mut series = store.series_until(&pseudo).await?;
    for v in &run.values {
        let point = SeriesPoint {
            run_id: pseudo.id,
            started_at: run.started_at.clone(),
            value: v.value,
            accepted: false,
        };
        match series
            .iter_mut()
            .find(|s| s.scope == v.scope && s.metric == v.metric)
        {
            Some(s) => s.points.push(point),
            None => series.push(Series {
                scope: v.scope.clone(),
                metric: v.metric.clone(),
                points: vec![point],
            }),
        }
    }
    let histograms: Vec<(String, String)> = run
        .histograms
        .iter()
        .map(|h| (h.scope.clone(), h.histogram.clone()))
        .collect();
    judge_series(&pseudo, &series, overrides, &histograms)
}

/// The verdicts as results.json keeps them, each with its latest `trend_runs` runs.
pub fn regression_gate(
    database: &str,
    run: &StoredRun,
    verdicts: &[MetricVerdict],
    trend_runs: usize,
) -> RegressionGate {
    let metrics = verdicts
        .iter()
        .map(|v| {
            let j = &v.judgement;
            let from = v.points.len().saturating_sub(trend_runs);
            let changed = matches!(j.verdict, Verdict::Regressed | Verdict::Improved);
            GatedMetric {
                scope: v.scope.clone(),
                metric: v.metric.clone(),
                verdict: match j.verdict {
                    Verdict::Regressed => "regressed",
                    Verdict::Improved => "improved",
                    Verdict::Unchanged => "unchanged",
                    Verdict::InsufficientHistory => "insufficient_history",
                }
                .to_string(),
                value: v.value,
                baseline_median: j.baseline.as_ref().map(|b| b.median),
                baseline_runs: j.baseline.as_ref().map_or(0, |b| b.runs),
                relative_change: j.change.as_ref().and_then(|c| c.relative),
                p_value: j.change.as_ref().map(|c| c.p_value),
                description: describe(v),
                trend: v.points[from..]
                    .iter()
                    .map(|p| TrendPoint {
                        run_id: p.run_id,
                        started_at: p.started_at.clone(),
                        value: p.value,
                        accepted: p.accepted,
                    })
                    .collect(),
                baseline_from_run: j.baseline.as_ref().map(|b| v.points[b.first_run].run_id),
                changed_from_run: changed.then(|| v.points[j.compared.first_run].run_id),
            }
        })
        .collect();
    RegressionGate {
        database: database.to_string(),
        run_id: run.id,
        environment: run.environment.clone(),
        metrics,
    }
}
