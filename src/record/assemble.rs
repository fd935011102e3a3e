//! Results of a finished run: the run totals the aggregator kept, put together with what the
//! scenario asked for into the [`Results`] that `results.json` carries.

use std::time::{Duration, SystemTime};

use super::aggregate::{kind_totals, RunTotals};
use super::results::{
    encode_histogram, kinds_map, round3, GeneratorHealth, JourneyResult, LagStats, LatencyStats,
    Results, ScenarioInfo, StageInfo, StepResult, Summary, Tool, SCHEMA_VERSION,
};
use crate::scenario::{Load, Scenario};
use crate::url::{redact_message, redact_path, redact_url};

#[allow(clippy::too_many_arguments)]
pub fn build_results(
    scenario: &Scenario,
    base_url: &str,
    totals: &RunTotals,
    started: SystemTime,
    duration: Duration,
    interrupted: bool,
    threads: usize,
    cpu_s: f64,
) -> Results {
    let secs = duration.as_secs_f64().max(1e-9);
    let mut steps = Vec::new();
    let mut flat = 0;
    for j in &scenario.journeys {
        for s in &j.steps {
            let c = &totals.steps[flat];
            flat += 1;
            steps.push(StepResult {
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
            });
        }
    }
    let journeys = scenario
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
        .collect();
    let iterations: u64 = totals.journeys.iter().map(|c| c.requests).sum();
    let failed_iterations: u64 = totals.journeys.iter().map(|c| c.errors).sum();
    let o = &totals.overall;
    let (model, stages) = stage_infos(&scenario.load);
    let lag = &totals.schedule_lag;
    let schedule_lag_ms = if lag.is_empty() {
        LagStats::default()
    } else {
        LagStats {
            p50: round3(lag.value_at_quantile(0.5) as f64 / 1000.0),
            p99: round3(lag.value_at_quantile(0.99) as f64 / 1000.0),
            max: round3(lag.max() as f64 / 1000.0),
        }
    };
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
    let lag_p99 = schedule_lag_ms.p99;
    // Late starts with VUs to spare are the generator's (or its machine's) doing; late starts
    // behind a full `max_vus` are the target's slowness, already counted in latency.
    let generator_late = model == "open"
        && lag_p99 > 10.0
        && totals.counters.arrivals_queued * 10 < totals.counters.late_iterations;
    if generator_late {
        notes.push(format!(
            "arrivals started up to {lag_p99:.1} ms late (p99) with VUs to spare: the machine running peakload was short of CPU (the generator itself used {cpu_pct:.0}% of a core); latencies include that wait"
        ));
    }
    if totals.counters.arrivals_queued > 0 {
        let max_vus = match &scenario.load {
            Load::Open(o) => o.max_vus,
            Load::Closed(_) => 0,
        };
        notes.push(format!(
            "{} arrivals found all {max_vus} VUs busy and waited for one: the target slowed down; the wait counts in their latency (raise max_vus to keep the arrival rate)",
            totals.counters.arrivals_queued
        ));
    }
    if totals.counters.dropped_iterations > 0 {
        notes.push(format!(
            "{} arrivals were dropped after waiting longer than max_lag for a free VU: the target was too slow for max_vus (raise max_vus to keep the rate)",
            totals.counters.dropped_iterations
        ));
    }
    let kept_up = busy_seconds * 5 <= totals.timeline.len().max(1) && !generator_late;
    let ended = started + duration;
    let checks: u64 = totals.steps.iter().map(|c| c.checks).sum();
    let checks_failed: u64 = totals.steps.iter().map(|c| c.checks_failed).sum();
    let mut samples = totals.samples.clone();
    samples.sort_by_key(|s| s.kind);
    samples.dedup_by(|a, b| a.kind == b.kind && a.message == b.message);
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
        ended_at: humantime::format_rfc3339_millis(ended).to_string(),
        duration_s: round3(secs),
        status: if interrupted {
            "interrupted"
        } else {
            "completed"
        }
        .into(),
        summary: Summary {
            requests: o.requests,
            errors: o.errors,
            error_rate: rate(o.errors, o.requests),
            rps: round3(o.requests as f64 / secs),
            iterations,
            failed_iterations,
            checks,
            checks_failed,
            data_received_bytes: totals.counters.bytes_in,
            data_sent_bytes: totals.counters.bytes_out,
            latency_ms: LatencyStats::from_histogram(&o.latency),
            histogram: encode_histogram(&o.latency),
        },
        steps,
        journeys,
        timeline: totals.timeline.clone(),
        stages,
        dropped_iterations: totals.counters.dropped_iterations,
        late_iterations: totals.counters.late_iterations,
        arrivals_queued: totals.counters.arrivals_queued,
        feeder_exhausted: totals.counters.feeder_exhausted,
        interrupted_iterations: totals.counters.interrupted_iterations,
        schedule_lag_ms,
        thresholds: Vec::new(),
        errors: kind_totals(o),
        error_samples: samples
            .into_iter()
            .map(|mut s| {
                s.message = redact_message(&s.message);
                s
            })
            .collect(),
        generator: GeneratorHealth {
            threads,
            cpu_s: round3(cpu_s),
            cpu_pct: (cpu_pct * 10.0).round() / 10.0,
            kept_up,
            notes,
        },
        infra: None,
        capacity: None,
        findings: Vec::new(),
    }
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
