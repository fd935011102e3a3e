//! Results of a finished run: the run totals the aggregator kept, put together with what the
//! scenario asked for into the [`Results`] that `results.json` carries.

use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;

use super::aggregate::{kind_totals, RunTotals};
use super::results::{
    encode_histogram, kinds_map, round3, GeneratorHealth, JourneyResult, LagStats, LatencyStats,
    Results, ScenarioInfo, StageInfo, StepResult, Summary, Tool, SCHEMA_VERSION,
};
use super::ErrorSample;
use crate::scenario::{Load, Scenario};
use crate::url::{redact_message, redact_path, redact_url};

/// A finished run, as the command saw it.
pub struct FinishedRun<'a> {
    pub scenario: &'a Scenario,
    /// The target as used (redacted on the way into the results).
    pub base_url: &'a str,
    pub totals: &'a RunTotals,
    pub started: SystemTime,
    pub duration: Duration,
    /// Stopped by a signal or a key before the plan's end.
    pub interrupted: bool,
    pub threads: usize,
    /// The generator's own CPU seconds over the run.
    pub cpu_s: f64,
}

/// The results of a finished run; thresholds, infrastructure and findings are added after.
pub fn build_results(run: &FinishedRun<'_>) -> Results {
    let FinishedRun {
        scenario,
        base_url,
        totals,
        started,
        duration,
        interrupted,
        ..
    } = *run;
    let secs = duration.as_secs_f64().max(1e-9);
    let (model, stages) = stage_infos(&scenario.load);
    let schedule_lag_ms = lag_stats(&totals.schedule_lag);
    let c = &totals.counters;
    Results {
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: "peakload".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        scenario: ScenarioInfo {
            name: scenario.name.clone(),
            file: scenario.source_path.display().to_string(),
            target: redact_url(base_url),
            model: model.into(),
        },
        started_at: humantime::format_rfc3339_millis(started).to_string(),
        ended_at: humantime::format_rfc3339_millis(started + duration).to_string(),
        duration_s: round3(secs),
        status: if interrupted {
            "interrupted"
        } else {
            "completed"
        }
        .into(),
        summary: summary(totals, secs),
        steps: steps(scenario, totals, secs),
        journeys: journeys(scenario, totals),
        timeline: totals.timeline.clone(),
        stages,
        dropped_iterations: c.dropped_iterations,
        late_iterations: c.late_iterations,
        arrivals_queued: c.arrivals_queued,
        feeder_exhausted: c.feeder_exhausted,
        interrupted_iterations: c.interrupted_iterations,
        retried_requests: c.retried_requests,
        generator: generator_health(run, model, schedule_lag_ms.p99),
        schedule_lag_ms,
        thresholds: Vec::new(),
        errors: kind_totals(&totals.overall),
        error_samples: error_samples(totals),
        infra: None,
        capacity: None,
        findings: Vec::new(),
        diagnosis_notes: Vec::new(),
        regression: None,
        shard: None,
        merged: None,
        part: None,
    }
}

fn summary(totals: &RunTotals, secs: f64) -> Summary {
    let o = &totals.overall;
    Summary {
        requests: o.requests,
        errors: o.errors,
        error_rate: rate(o.errors, o.requests),
        rps: round3(o.requests as f64 / secs),
        iterations: totals.journeys.iter().map(|c| c.requests).sum(),
        failed_iterations: totals.journeys.iter().map(|c| c.errors).sum(),
        checks: totals.steps.iter().map(|c| c.checks).sum(),
        checks_failed: totals.steps.iter().map(|c| c.checks_failed).sum(),
        data_received_bytes: totals.counters.bytes_in,
        data_received_decoded_bytes: totals.counters.bytes_in_decoded,
        data_sent_bytes: totals.counters.bytes_out,
        latency_ms: LatencyStats::from_histogram(&o.latency),
        histogram: encode_histogram(&o.latency),
    }
}

/// Per step, in the scenario's order (journey by journey, as the recorder flattens them).
fn steps(scenario: &Scenario, totals: &RunTotals, secs: f64) -> Vec<StepResult> {
    scenario
        .journeys
        .iter()
        .flat_map(|j| j.steps.iter().map(move |s| (j, s)))
        .zip(&totals.steps)
        .enumerate()
        .map(|(i, ((j, s), c))| StepResult {
            journey: j.name.clone(),
            name: s.name.clone(),
            method: s.method.clone(),
            path: redact_path(&s.url.describe(&j.vars)),
            requests: c.requests,
            errors: c.errors,
            error_rate: rate(c.errors, c.requests),
            rps: round3(c.requests as f64 / secs),
            checks: c.checks,
            checks_failed: c.checks_failed,
            errors_by_kind: kinds_map(&c.by_kind, false),
            latency_ms: LatencyStats::from_histogram(&c.latency),
            histogram: encode_histogram(&c.latency),
            traces: totals.traces.get(i).cloned().unwrap_or_default(),
            timing: super::results::StepTiming::from_phases(&c.phases),
        })
        .collect()
}

fn journeys(scenario: &Scenario, totals: &RunTotals) -> Vec<JourneyResult> {
    scenario
        .journeys
        .iter()
        .zip(&totals.journeys)
        .map(|(j, c)| JourneyResult {
            name: j.name.clone(),
            weight: j.weight,
            iterations: c.requests,
            failed_iterations: c.errors,
            latency_ms: LatencyStats::from_histogram(&c.latency),
            histogram: encode_histogram(&c.latency),
        })
        .collect()
}

fn lag_stats(lag: &Histogram<u64>) -> LagStats {
    if lag.is_empty() {
        return LagStats::default();
    }
    LagStats {
        p50: round3(lag.value_at_quantile(0.5) as f64 / 1000.0),
        p99: round3(lag.value_at_quantile(0.99) as f64 / 1000.0),
        max: round3(lag.max() as f64 / 1000.0),
    }
}

/// Whether the generator kept up with the plan, and why not.
fn generator_health(run: &FinishedRun<'_>, model: &str, lag_p99: f64) -> GeneratorHealth {
    let (totals, threads, cpu_s) = (run.totals, run.threads, run.cpu_s);
    let secs = run.duration.as_secs_f64().max(1e-9);
    let c = &totals.counters;
    let cpu_pct = cpu_s / secs * 100.0;
    let mut notes = Vec::new();
    let busy_seconds = totals
        .timeline
        .iter()
        .filter(|p| p.generator_cpu_pct >= 90.0 * threads as f64)
        .count();
    if busy_seconds * 5 > totals.timeline.len().max(1) {
        notes.push(format!(
            "the generator used ≥90% of its {threads} core(s) for {busy_seconds}s of the run: it may have limited the load; add cores or run distributed"
        ));
    }
    // Late starts with VUs to spare are the generator's (or its machine's) doing; late starts
    // behind a full `max_vus` are the target's slowness, already counted in latency.
    let generator_late =
        model == "open" && lag_p99 > 10.0 && c.arrivals_queued * 10 < c.late_iterations;
    if generator_late {
        notes.push(format!(
            "arrivals started up to {lag_p99:.1} ms late (p99) with VUs to spare: the machine running peakload was short of CPU (the generator itself used {cpu_pct:.0}% of a core); latencies include that wait"
        ));
    }
    if c.arrivals_queued > 0 {
        let max_vus = match &run.scenario.load {
            Load::Open(o) => o.max_vus,
            Load::Closed(_) => 0,
        };
        notes.push(format!(
            "{} arrivals found all {max_vus} VUs busy and waited for one: the target slowed down; the wait counts in their latency (raise max_vus to keep the arrival rate)",
            c.arrivals_queued
        ));
    }
    if c.dropped_iterations > 0 {
        notes.push(format!(
            "{} arrivals were dropped after waiting longer than max_lag for a free VU: the target was too slow for max_vus (raise max_vus to keep the rate)",
            c.dropped_iterations
        ));
    }
    GeneratorHealth {
        threads,
        cpu_s: round3(cpu_s),
        cpu_pct: (cpu_pct * 10.0).round() / 10.0,
        kept_up: busy_seconds * 5 <= totals.timeline.len().max(1) && !generator_late,
        notes,
    }
}

/// A few messages per kind, once each, with URLs redacted.
fn error_samples(totals: &RunTotals) -> Vec<ErrorSample> {
    let mut samples = totals.samples.clone();
    samples.sort_by_key(|s| s.kind);
    samples.dedup_by(|a, b| a.kind == b.kind && a.message == b.message);
    samples
        .into_iter()
        .map(|mut s| {
            s.message = redact_message(&s.message);
            s
        })
        .collect()
}

fn rate(errors: u64, requests: u64) -> f64 {
    if requests == 0 {
        0.0
    } else {
        (errors as f64 / requests as f64 * 1e6).round() / 1e6
    }
}

fn stage_infos(load: &Load) -> (&'static str, Vec<StageInfo>) {
    // (duration, target at its end, name) whichever the model.
    let (model, stages): (_, Vec<_>) = match load {
        Load::Open(o) => (
            "open",
            o.stages
                .iter()
                .map(|s| (s.duration, s.target_rps, &s.name))
                .collect(),
        ),
        Load::Closed(c) => (
            "closed",
            c.stages
                .iter()
                .map(|s| (s.duration, s.target_vus as f64, &s.name))
                .collect(),
        ),
    };
    let mut t = 0.0;
    let infos = stages
        .into_iter()
        .enumerate()
        .map(|(i, (duration, target, name))| {
            let start = t;
            t += duration.as_secs_f64();
            StageInfo {
                name: name.clone().unwrap_or_else(|| format!("stage {}", i + 1)),
                start_s: start,
                end_s: t,
                target,
            }
        })
        .collect();
    (model, infos)
}
