//! What the dashboard shows: the scenario's fixed shape ([`DashboardSpec`]) plus the latest
//! [`LiveView`] snapshot and what is derived from it (stage, progress, live thresholds).
//!
//! Data enters through [`DashboardState::update`] (a snapshot the recorder published) and
//! [`DashboardState::tick`] (wall time, so the gauge moves between snapshots); the drawing code
//! only reads this state. Nothing here touches the terminal, so it is tested directly.

use std::time::Duration;

use crate::gate::{metric_value, Latency, Measured, RunCounts, ScopeCounts};
use crate::record::aggregate::LiveView;
use crate::scenario::{Load, Scenario, Scope, Stat, Threshold};

/// The parts of a scenario the dashboard needs, fixed for the whole run.
#[derive(Debug, Clone)]
pub struct DashboardSpec {
    pub scenario: String,
    pub model: Model,
    pub planned: Duration,
    pub stages: Vec<StageSpan>,
    /// Every step, in the flat order the recorder uses (journey by journey).
    pub steps: Vec<StepLabel>,
    /// Index in `steps` of each journey's first step.
    pub journey_offsets: Vec<usize>,
    pub thresholds: Vec<Threshold>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// Arrival rate: the target is iterations per second.
    Open,
    /// Virtual users: the target is a number of VUs.
    Closed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StageSpan {
    pub name: String,
    pub start_s: f64,
    pub end_s: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepLabel {
    pub journey: String,
    pub name: String,
    pub method: String,
}

impl StepLabel {
    pub fn label(&self) -> String {
        format!("{}/{}", self.journey, self.name)
    }
}

impl DashboardSpec {
    pub fn from_scenario(scenario: &Scenario) -> Self {
        let (model, spans): (Model, Vec<(Option<&String>, Duration)>) = match &scenario.load {
            Load::Open(o) => (
                Model::Open,
                o.stages
                    .iter()
                    .map(|s| (s.name.as_ref(), s.duration))
                    .collect(),
            ),
            Load::Closed(c) => (
                Model::Closed,
                c.stages
                    .iter()
                    .map(|s| (s.name.as_ref(), s.duration))
                    .collect(),
            ),
        };
        let mut t = 0.0;
        let stages = spans
            .into_iter()
            .enumerate()
            .map(|(i, (name, d))| {
                let start_s = t;
                t += d.as_secs_f64();
                StageSpan {
                    name: name.cloned().unwrap_or_else(|| format!("stage {}", i + 1)),
                    start_s,
                    end_s: t,
                }
            })
            .collect();
        let mut steps = Vec::new();
        let mut journey_offsets = Vec::new();
        for j in &scenario.journeys {
            journey_offsets.push(steps.len());
            steps.extend(j.steps.iter().map(|s| StepLabel {
                journey: j.name.clone(),
                name: s.name.clone(),
                method: s.method.clone(),
            }));
        }
        DashboardSpec {
            scenario: scenario.name.clone(),
            model,
            planned: scenario.load.duration(),
            stages,
            steps,
            journey_offsets,
            thresholds: scenario.thresholds.clone(),
        }
    }
}

/// Which screen the dashboard shows; Tab switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    #[default]
    Overview,
    Steps,
}

impl View {
    pub fn toggled(self) -> Self {
        match self {
            View::Overview => View::Steps,
            View::Steps => View::Overview,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThresholdStatus {
    /// Nothing to measure yet (no requests in its scope).
    Waiting,
    Holding,
    Crossed,
}

/// How a threshold's value reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    LatencyMs,
    Fraction,
    PerSecond,
    Count,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LiveThreshold {
    pub expr: String,
    pub value: Option<f64>,
    pub kind: ValueKind,
    pub status: ThresholdStatus,
}

/// One infrastructure signal being collected (CloudWatch, Prometheus, …), newest value last.
///
/// The hook for the observe sources: when the run has any, it hands the dashboard a shared
/// `Vec<SignalSeries>` and a panel of sparklines appears; without sources the panel is hidden.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SignalSeries {
    pub name: String,
    pub unit: String,
    pub values: Vec<f64>,
}

/// Everything one frame is drawn from.
#[derive(Debug, Clone)]
pub struct DashboardState {
    pub spec: DashboardSpec,
    pub view: View,
    pub live: LiveView,
    /// Wall time since the run started, so the gauge moves between one-second snapshots.
    pub elapsed: Duration,
    /// A stop was requested (key or signal): in-flight requests drain, then results are written.
    pub stopping: bool,
    pub thresholds: Vec<LiveThreshold>,
    /// Requests per second of each step over the last snapshot interval.
    pub step_rps_now: Vec<f64>,
    /// Infrastructure signals; `None` when no source is configured (the panel is hidden).
    pub signals: Option<Vec<SignalSeries>>,
}

impl DashboardState {
    pub fn new(spec: DashboardSpec) -> Self {
        let live = LiveView::default();
        let thresholds = evaluate_live(&spec, &live);
        DashboardState {
            step_rps_now: vec![0.0; spec.steps.len()],
            spec,
            view: View::Overview,
            live,
            elapsed: Duration::ZERO,
            stopping: false,
            thresholds,
            signals: None,
        }
    }

    /// Takes a newer snapshot; returns false (and keeps the old one) when it is not newer.
    pub fn update(&mut self, live: LiveView) -> bool {
        if live.seconds <= self.live.seconds && self.live.seconds > 0 {
            return false;
        }
        let span = f64::from(live.seconds.saturating_sub(self.live.seconds).max(1));
        self.step_rps_now = live
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let before = self.live.steps.get(i).map_or(0, |b| b.requests);
                s.requests.saturating_sub(before) as f64 / span
            })
            .collect();
        self.live = live;
        self.thresholds = evaluate_live(&self.spec, &self.live);
        true
    }

    pub fn tick(&mut self, elapsed: Duration) {
        self.elapsed = elapsed;
    }

    /// The stage running now (index, span); the last one once the plan is over.
    pub fn current_stage(&self) -> Option<(usize, &StageSpan)> {
        let t = self.elapsed.as_secs_f64();
        self.spec
            .stages
            .iter()
            .enumerate()
            .find(|(_, s)| t < s.end_s)
            .or_else(|| self.spec.stages.iter().enumerate().next_back())
    }

    /// Fraction of the planned duration elapsed, 0..=1.
    pub fn progress(&self) -> f64 {
        let planned = self.spec.planned.as_secs_f64();
        if planned <= 0.0 {
            return 1.0;
        }
        (self.elapsed.as_secs_f64() / planned).clamp(0.0, 1.0)
    }

    pub fn time_left(&self) -> Duration {
        self.spec.planned.saturating_sub(self.elapsed)
    }

    pub fn error_rate(&self) -> f64 {
        fraction(self.live.errors, self.live.requests).unwrap_or(0.0)
    }
}

fn fraction(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Evaluates the scenario's thresholds on a snapshot, as `gate::evaluate` does on results.
///
/// Latency statistics are exact (the snapshot carries the whole-run HDR histograms), and so
/// are counts and rates. `rps` divides by the seconds finalized so far instead of the run's
/// wall duration, and counters that only grow (`iterations > N`) read as crossed until they
/// get there: the live verdict is the verdict *if the run ended now*. A scope with no
/// requests yet is [`ThresholdStatus::Waiting`], where the final gate would fail it.
pub fn evaluate_live(spec: &DashboardSpec, live: &LiveView) -> Vec<LiveThreshold> {
    spec.thresholds
        .iter()
        .map(|t| {
            let value = metric_value(&t.metric, &LiveMeasure { spec, live });
            let kind = ValueKind::of(&t.metric.stat);
            let status = match value {
                None => ThresholdStatus::Waiting,
                Some(v) if t.op.holds(v, t.limit) => ThresholdStatus::Holding,
                Some(_) => ThresholdStatus::Crossed,
            };
            LiveThreshold {
                expr: t.expr.clone(),
                value,
                kind,
                status,
            }
        })
        .collect()
}

/// The snapshot as thresholds read it: steps are found through the scenario's journey offsets.
struct LiveMeasure<'a> {
    spec: &'a DashboardSpec,
    live: &'a LiveView,
}

impl Measured for LiveMeasure<'_> {
    fn scope(&self, scope: &Scope) -> Option<ScopeCounts<'_>> {
        let (live, h) = (self.live, &self.live.histograms);
        Some(match scope {
            Scope::Http => ScopeCounts {
                requests: live.requests,
                errors: live.errors,
                latency: Latency::Histogram(&h.overall),
            },
            Scope::Step { journey, step } => {
                let flat = self.spec.journey_offsets.get(*journey)? + step;
                let s = live.steps.get(flat)?;
                ScopeCounts {
                    requests: s.requests,
                    errors: s.errors,
                    latency: Latency::Histogram(h.steps.get(flat)?),
                }
            }
            Scope::Journey(j) => {
                let c = live.journeys.get(*j)?;
                ScopeCounts {
                    requests: c.iterations,
                    errors: c.failed_iterations,
                    latency: Latency::Histogram(h.journeys.get(*j)?),
                }
            }
            Scope::Run => return None,
        })
    }

    fn run_counts(&self) -> RunCounts {
        let live = self.live;
        RunCounts {
            dropped_iterations: live.counters.dropped_iterations,
            iterations: live.iterations,
            feeder_exhausted: live.counters.feeder_exhausted,
            checks: live.checks,
            checks_failed: live.checks_failed,
        }
    }

    fn elapsed_s(&self) -> Option<f64> {
        (self.live.seconds > 0).then(|| f64::from(self.live.seconds))
    }
}

impl ValueKind {
    fn of(stat: &Stat) -> ValueKind {
        match stat {
            Stat::Percentile(_) | Stat::Mean | Stat::Min | Stat::Max => ValueKind::LatencyMs,
            Stat::ErrorRate | Stat::ChecksPassRate => ValueKind::Fraction,
            Stat::Rps => ValueKind::PerSecond,
            Stat::Requests
            | Stat::Errors
            | Stat::DroppedIterations
            | Stat::Iterations
            | Stat::FeederExhausted
            | Stat::ChecksFailed => ValueKind::Count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::aggregate::{JourneyLive, LiveHistograms, StepLive};
    use crate::record::new_histogram;
    use crate::scenario::{CmpOp, MetricRef};
    use std::sync::Arc;

    fn threshold(expr: &str, scope: Scope, stat: Stat, op: CmpOp, limit: f64) -> Threshold {
        Threshold {
            expr: expr.into(),
            metric: MetricRef { scope, stat },
            op,
            limit,
        }
    }

    fn spec() -> DashboardSpec {
        DashboardSpec {
            scenario: "shop".into(),
            model: Model::Open,
            planned: Duration::from_secs(60),
            stages: vec![
                StageSpan {
                    name: "ramp".into(),
                    start_s: 0.0,
                    end_s: 20.0,
                },
                StageSpan {
                    name: "steady".into(),
                    start_s: 20.0,
                    end_s: 60.0,
                },
            ],
            steps: vec![
                StepLabel {
                    journey: "browse".into(),
                    name: "home".into(),
                    method: "GET".into(),
                },
                StepLabel {
                    journey: "buy".into(),
                    name: "checkout".into(),
                    method: "POST".into(),
                },
            ],
            journey_offsets: vec![0, 1],
            thresholds: vec![
                threshold(
                    "http.p99 < 300ms",
                    Scope::Http,
                    Stat::Percentile(99.0),
                    CmpOp::Lt,
                    300.0,
                ),
                threshold(
                    "checkout.error_rate < 1%",
                    Scope::Step {
                        journey: 1,
                        step: 0,
                    },
                    Stat::ErrorRate,
                    CmpOp::Lt,
                    0.01,
                ),
                threshold(
                    "dropped_iterations == 0",
                    Scope::Run,
                    Stat::DroppedIterations,
                    CmpOp::Eq,
                    0.0,
                ),
            ],
        }
    }

    fn snapshot(seconds: u32, latencies_ms: &[u64], checkout: (u64, u64)) -> LiveView {
        let mut overall = new_histogram();
        for ms in latencies_ms {
            overall.record(ms * 1000).unwrap();
        }
        LiveView {
            seconds,
            requests: latencies_ms.len() as u64,
            errors: checkout.1,
            steps: vec![
                StepLive {
                    requests: latencies_ms.len() as u64 - checkout.0,
                    ..StepLive::default()
                },
                StepLive {
                    requests: checkout.0,
                    errors: checkout.1,
                    ..StepLive::default()
                },
            ],
            journeys: vec![JourneyLive::default(); 2],
            histograms: Arc::new(LiveHistograms {
                steps: vec![new_histogram(), new_histogram()],
                journeys: vec![new_histogram(), new_histogram()],
                overall,
            }),
            ..LiveView::default()
        }
    }

    #[test]
    fn thresholds_wait_for_data_then_hold_or_cross() {
        let mut state = DashboardState::new(spec());
        let statuses = |s: &DashboardState| -> Vec<ThresholdStatus> {
            s.thresholds.iter().map(|t| t.status).collect()
        };
        use ThresholdStatus::*;
        assert_eq!(statuses(&state), [Waiting, Waiting, Holding]);

        state.update(snapshot(1, &[10, 20, 30, 40], (2, 0)));
        assert_eq!(statuses(&state), [Holding, Holding, Holding]);
        assert_eq!(state.thresholds[0].value.map(f64::round), Some(40.0));

        state.update(snapshot(2, &[10, 20, 30, 900], (2, 1)));
        assert_eq!(statuses(&state), [Crossed, Crossed, Holding]);
        assert_eq!(state.thresholds[1].value, Some(0.5));
    }

    #[test]
    fn step_rps_now_is_the_difference_between_snapshots() {
        let mut state = DashboardState::new(spec());
        state.update(snapshot(1, &[1; 10], (4, 0)));
        assert_eq!(state.step_rps_now, [6.0, 4.0]);
        state.update(snapshot(3, &[1; 30], (10, 0)));
        assert_eq!(state.step_rps_now, [7.0, 3.0]);
        assert!(!state.update(snapshot(3, &[1; 30], (10, 0))), "not newer");
    }

    #[test]
    fn stage_progress_and_time_left_follow_wall_time() {
        let mut state = DashboardState::new(spec());
        state.tick(Duration::from_secs(5));
        assert_eq!(
            state.current_stage().map(|(i, s)| (i, s.name.as_str())),
            Some((0, "ramp"))
        );
        state.tick(Duration::from_secs(30));
        assert_eq!(state.current_stage().map(|(i, _)| i), Some(1));
        assert_eq!(state.progress(), 0.5);
        assert_eq!(state.time_left(), Duration::from_secs(30));
        state.tick(Duration::from_secs(75));
        assert_eq!(state.current_stage().map(|(i, _)| i), Some(1));
        assert_eq!(state.progress(), 1.0);
        assert_eq!(state.time_left(), Duration::ZERO);
    }
}
