//! Load plans: when each open-model iteration is due, and how many VUs a closed model wants.
//!
//! Both are pure functions of time since the start, computed from the scenario's stages, so
//! every worker thread (and every shard of a distributed run) derives the same schedule.

pub mod shard;

use std::time::Duration;

use crate::scenario::{ArrivalProcess, ClosedLoad, Load, OpenLoad};
pub use shard::ShardSpec;

/// A piecewise-linear rate (arrivals per second) and its inverse cumulative function.
#[derive(Debug, Clone)]
pub struct ArrivalSchedule {
    /// (start time s, start rate, end rate, duration s, arrivals before this segment)
    segments: Vec<Segment>,
    total: f64,
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    start: f64,
    from: f64,
    to: f64,
    len: f64,
    before: f64,
}

impl Segment {
    fn count(&self) -> f64 {
        (self.from + self.to) / 2.0 * self.len
    }
}

impl ArrivalSchedule {
    pub fn new(load: &OpenLoad) -> Self {
        let mut segments = Vec::with_capacity(load.stages.len());
        let mut t = 0.0;
        let mut rate = load.start_rps;
        let mut before = 0.0;
        for stage in &load.stages {
            let seg = Segment {
                start: t,
                from: rate,
                to: stage.target_rps,
                len: stage.duration.as_secs_f64(),
                before,
            };
            before += seg.count();
            t += seg.len;
            rate = stage.target_rps;
            segments.push(seg);
        }
        ArrivalSchedule {
            segments,
            total: before,
        }
    }

    /// Arrivals in the whole plan (a fraction counts as one more only once reached).
    pub fn total_arrivals(&self) -> u64 {
        (self.total + 0.5).floor() as u64
    }

    /// When arrival `k` (0-based) is due: where the cumulative count reaches `k + 0.5`, so that
    /// a steady rate spreads arrivals evenly with none at the very start or end.
    pub fn due(&self, k: u64) -> Option<Duration> {
        let target = k as f64 + 0.5;
        if target > self.total {
            return None;
        }
        self.when_cumulative(target)
    }

    /// When the planned cumulative count reaches `target` (within `0..=total`).
    fn when_cumulative(&self, target: f64) -> Option<Duration> {
        let seg = self.segments.iter().rev().find(|s| s.before < target)?;
        let m = target - seg.before;
        let slope = if seg.len > 0.0 {
            (seg.to - seg.from) / seg.len
        } else {
            0.0
        };
        // Solve from*τ + slope*τ²/2 = m in the numerically stable form.
        let disc = (seg.from * seg.from + 2.0 * slope * m).max(0.0);
        let denom = seg.from + disc.sqrt();
        let tau = if denom > 0.0 { 2.0 * m / denom } else { 0.0 };
        Some(Duration::from_secs_f64(seg.start + tau.min(seg.len)))
    }

    /// How many arrivals are due before `t` seconds: arrival `k` is due where the cumulative
    /// count reaches `k + 0.5`.
    pub fn due_before(&self, t: f64) -> u64 {
        let c = self.cumulative(t) - 0.5;
        if c <= 0.0 {
            return 0;
        }
        (c.ceil() as u64).min(self.total_arrivals())
    }

    /// The planned rate at `t` seconds.
    pub fn rate_at(&self, t: f64) -> f64 {
        for s in &self.segments {
            if t < s.start + s.len {
                let f = if s.len > 0.0 {
                    (t - s.start) / s.len
                } else {
                    1.0
                };
                return s.from + (s.to - s.from) * f.clamp(0.0, 1.0);
            }
        }
        self.segments.last().map(|s| s.to).unwrap_or(0.0)
    }

    /// Planned arrivals in `[a, b)` seconds.
    pub fn arrivals_between(&self, a: f64, b: f64) -> f64 {
        self.cumulative(b) - self.cumulative(a)
    }

    fn cumulative(&self, t: f64) -> f64 {
        let mut acc = 0.0;
        for s in &self.segments {
            if t <= s.start {
                break;
            }
            let tau = (t - s.start).min(s.len);
            let slope = if s.len > 0.0 {
                (s.to - s.from) / s.len
            } else {
                0.0
            };
            acc = s.before + s.from * tau + slope * tau * tau / 2.0;
        }
        acc
    }
}

/// Open-model arrival times in order: evenly spread (`arrivals = "even"`) or a Poisson
/// process following the planned rate (`arrivals = "poisson"`).
///
/// The Poisson arrivals are the planned count, placed as a Poisson process conditioned on
/// that count: sorted uniform points on the cumulative plan, drawn as normalized sums of
/// exponential gaps (S_k / S_{n+1}) and mapped through the plan's inverse cumulative count.
/// Interarrival gaps are then exponential with mean 1/rate while the total is exactly what the
/// plan says, so a Poisson run and an even run of the same plan send the same number of
/// iterations. A seed makes the sequence reproducible: every worker thread, and every shard of
/// a distributed run, derives the same one and takes its own slice of it.
#[derive(Debug, Clone)]
pub struct Arrivals {
    schedule: ArrivalSchedule,
    poisson: Option<Poisson>,
}

#[derive(Debug, Clone)]
struct Poisson {
    rng: fastrand::Rng,
    /// Index of the next arrival `sum` is for, and the sum of its gaps (S_{next+1}).
    next: u64,
    sum: f64,
    /// total planned arrivals / S_{n+1}.
    scale: f64,
    count: u64,
}

fn exponential(rng: &mut fastrand::Rng) -> f64 {
    // 1 - U is in (0, 1]: its logarithm is finite.
    -(1.0 - rng.f64()).ln()
}

impl Arrivals {
    pub fn new(load: &OpenLoad) -> Self {
        let schedule = ArrivalSchedule::new(load);
        let poisson = match load.arrivals {
            ArrivalProcess::Even => None,
            ArrivalProcess::Poisson { seed } => {
                let count = schedule.total_arrivals();
                // A first pass over the same draws gives S_{n+1}, to normalize by.
                let mut rng = fastrand::Rng::with_seed(seed);
                let total_gaps: f64 = (0..=count).map(|_| exponential(&mut rng)).sum();
                Some(Poisson {
                    rng: fastrand::Rng::with_seed(seed),
                    next: 0,
                    sum: 0.0,
                    scale: schedule.total / total_gaps,
                    count,
                })
            }
        };
        Arrivals { schedule, poisson }
    }

    /// When arrival `k` is due; `k` must not go backwards between calls (Poisson arrivals are
    /// drawn in order).
    pub fn due(&mut self, k: u64) -> Option<Duration> {
        let Some(p) = &mut self.poisson else {
            return self.schedule.due(k);
        };
        if k >= p.count {
            return None;
        }
        debug_assert!(k + 1 >= p.next, "arrivals are drawn in order");
        while p.next <= k {
            p.sum += exponential(&mut p.rng);
            p.next += 1;
        }
        let target = (p.sum * p.scale).clamp(1e-12, self.schedule.total);
        self.schedule.when_cumulative(target)
    }

    pub fn total_arrivals(&self) -> u64 {
        self.schedule.total_arrivals()
    }
}

/// Closed model: VUs wanted over time, ramping linearly between stage targets.
#[derive(Debug, Clone)]
pub struct VuSchedule {
    start_vus: u32,
    stages: Vec<(f64, u32)>,
}

impl VuSchedule {
    pub fn new(load: &ClosedLoad) -> Self {
        VuSchedule {
            start_vus: load.start_vus,
            stages: load
                .stages
                .iter()
                .map(|s| (s.duration.as_secs_f64(), s.target_vus))
                .collect(),
        }
    }

    /// VUs wanted at `t` seconds (rounded to the nearest whole VU).
    pub fn vus_at(&self, t: f64) -> u32 {
        let mut start = 0.0;
        let mut from = self.start_vus as f64;
        for &(len, to) in &self.stages {
            if t < start + len {
                let f = if len > 0.0 { (t - start) / len } else { 1.0 };
                return (from + (to as f64 - from) * f).round() as u32;
            }
            start += len;
            from = to as f64;
        }
        from.round() as u32
    }

    pub fn max_vus(&self) -> u32 {
        self.stages
            .iter()
            .map(|s| s.1)
            .chain(std::iter::once(self.start_vus))
            .max()
            .unwrap_or(0)
    }
}

/// The plan for the timeline: planned rate (open) or VUs (closed) per second.
#[derive(Debug, Clone)]
pub enum Plan {
    Open(ArrivalSchedule),
    Closed(VuSchedule),
    /// One shard's slice of a plan: its own arrivals or VUs only.
    Shard(Box<Plan>, ShardSpec),
}

impl Plan {
    pub fn new(load: &Load) -> Self {
        match load {
            Load::Open(o) => Plan::Open(ArrivalSchedule::new(o)),
            Load::Closed(c) => Plan::Closed(VuSchedule::new(c)),
        }
    }

    /// The slice `shard` of the plan (the plan itself for the whole).
    pub fn sharded(load: &Load, shard: ShardSpec) -> Self {
        if shard.is_whole() {
            Plan::new(load)
        } else {
            Plan::Shard(Box::new(Plan::new(load)), shard)
        }
    }

    /// Open: planned arrivals in second `s`; closed: planned VUs in its middle.
    pub fn target_in_second(&self, s: u32) -> f64 {
        match self {
            Plan::Open(a) => a.arrivals_between(s as f64, s as f64 + 1.0),
            Plan::Closed(v) => v.vus_at(s as f64 + 0.5) as f64,
            Plan::Shard(plan, shard) => match &**plan {
                Plan::Open(a) => {
                    let (from, to) = (a.due_before(s as f64), a.due_before(s as f64 + 1.0));
                    (shard.share(to) - shard.share(from)) as f64
                }
                Plan::Closed(v) => shard.share(v.vus_at(s as f64 + 0.5) as u64) as f64,
                Plan::Shard(..) => plan.target_in_second(s),
            },
        }
    }
}

/// Weights (after dividing by their common factor) that add up to at most this get the exact
/// smooth round-robin table; larger ones are spread without a table.
const ORDER_TABLE_MAX: u64 = 1 << 16;

/// Which journey each iteration (open) or VU (closed) runs, by its index: spread over journeys
/// by weight, deterministically and evenly. Memory grows with the number of journeys, never
/// with the weights (a weight of 4,294,967,295 costs what a weight of 1 does).
#[derive(Debug, Clone)]
pub struct JourneyOrder {
    /// Smooth weighted round-robin, one period, when the weights are small.
    table: Vec<usize>,
    /// Otherwise: each journey's end in one period of `total` slots...
    ends: Vec<u64>,
    total: u64,
    /// ...visited `stride` slots apart (coprime with `total`, so every slot once a period).
    stride: u64,
}

impl JourneyOrder {
    pub fn new(weights: &[u32]) -> Self {
        let common = weights
            .iter()
            .fold(0u64, |g, &w| gcd(g, u64::from(w)))
            .max(1);
        let reduced: Vec<u64> = weights.iter().map(|&w| u64::from(w) / common).collect();
        let total: u64 = reduced.iter().sum();
        if total <= ORDER_TABLE_MAX {
            let small: Vec<u32> = reduced.iter().map(|&w| w as u32).collect();
            return JourneyOrder {
                table: weighted_order(&small),
                ends: Vec::new(),
                total,
                stride: 1,
            };
        }
        let ends = reduced
            .iter()
            .scan(0u64, |acc, &w| {
                *acc += w;
                Some(*acc)
            })
            .collect();
        // Near the golden section of the period, so neighbouring indices land far apart.
        let mut stride = ((total as f64) * 0.618_033_988_7) as u64;
        while gcd(stride, total) != 1 {
            stride += 1;
        }
        JourneyOrder {
            table: Vec::new(),
            ends,
            total,
            stride,
        }
    }

    /// The journey (its index in the weights) that index `k` runs.
    pub fn pick(&self, k: u64) -> usize {
        if !self.table.is_empty() {
            return self.table[(k % self.table.len() as u64) as usize];
        }
        if self.total == 0 {
            return 0;
        }
        let slot =
            (u128::from(k % self.total) * u128::from(self.stride) % u128::from(self.total)) as u64;
        self.ends.partition_point(|&end| end <= slot)
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Spreads iterations over journeys by weight, deterministically and evenly
/// (smooth weighted round-robin): weights 2:1 give A, B, A, A, B, A, ...
/// One entry per unit of weight: [`JourneyOrder`] calls it only for small totals.
pub fn weighted_order(weights: &[u32]) -> Vec<usize> {
    let total: i64 = weights.iter().map(|&w| w as i64).sum();
    let mut current = vec![0i64; weights.len()];
    let mut order = Vec::with_capacity(total as usize);
    for _ in 0..total {
        for (c, &w) in current.iter_mut().zip(weights) {
            *c += w as i64;
        }
        let (best, _) = current
            .iter()
            .enumerate()
            .max_by_key(|&(i, &c)| (c, -(i as i64)))
            .expect("at least one journey");
        current[best] -= total;
        order.push(best);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::RateStage;

    /// An open plan from `(seconds, target rate)` stages, arrivals evenly spaced.
    pub(super) fn open(start: f64, stages: &[(u64, f64)]) -> OpenLoad {
        OpenLoad {
            start_rps: start,
            stages: stages
                .iter()
                .map(|&(d, r)| RateStage {
                    duration: Duration::from_secs(d),
                    target_rps: r,
                    name: None,
                })
                .collect(),
            pre_allocated_vus: 1,
            max_vus: 10,
            max_lag: Duration::from_secs(1),
            arrivals: ArrivalProcess::Even,
        }
    }

    #[test]
    fn constant_rate_is_evenly_spaced() {
        let s = ArrivalSchedule::new(&open(100.0, &[(10, 100.0)]));
        assert_eq!(s.total_arrivals(), 1000);
        assert_eq!(s.due(0).unwrap(), Duration::from_micros(5000));
        assert_eq!(s.due(1).unwrap(), Duration::from_micros(15000));
        assert!(s.due(999).unwrap() < Duration::from_secs(10));
        assert!(s.due(1000).is_none());
    }

    #[test]
    fn ramp_follows_the_integral() {
        // 0 → 100 rps over 10 s: 500 arrivals, half of them in the last ~2.93 s.
        let s = ArrivalSchedule::new(&open(0.0, &[(10, 100.0)]));
        assert_eq!(s.total_arrivals(), 500);
        let mid = s.due(249).unwrap().as_secs_f64();
        assert!(
            (mid - (10.0f64 * (249.5f64 / 500.0).sqrt())).abs() < 1e-6,
            "{mid}"
        );
        let mut last = Duration::ZERO;
        for k in 0..500 {
            let t = s.due(k).unwrap();
            assert!(t >= last);
            last = t;
        }
        assert!((s.rate_at(5.0) - 50.0).abs() < 1e-9);
        assert!((s.arrivals_between(0.0, 10.0) - 500.0).abs() < 1e-9);
    }

    #[test]
    fn ramp_down_and_spike() {
        let s = ArrivalSchedule::new(&open(50.0, &[(2, 10.0), (1, 200.0), (2, 0.0)]));
        let total = (50.0 + 10.0) + (10.0 + 200.0) / 2.0 + 200.0;
        assert_eq!(s.total_arrivals(), (total + 0.5f64).floor() as u64);
        let mut last = Duration::ZERO;
        for k in 0..s.total_arrivals() {
            let t = s.due(k).unwrap();
            assert!(t >= last && t <= Duration::from_secs(5));
            last = t;
        }
    }

    fn poisson(start: f64, stages: &[(u64, f64)], seed: u64) -> Vec<f64> {
        let mut load = open(start, stages);
        load.arrivals = ArrivalProcess::Poisson { seed };
        let mut a = Arrivals::new(&load);
        let mut out = Vec::new();
        let mut k = 0;
        while let Some(t) = a.due(k) {
            out.push(t.as_secs_f64());
            k += 1;
        }
        out
    }

    #[test]
    fn poisson_arrivals_keep_the_planned_count_and_mean_gap() {
        // 200 rps for 300 s: 60 000 arrivals.
        let times = poisson(200.0, &[(300, 200.0)], 7);
        assert_eq!(times.len(), 60_000);
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        assert!(*times.last().unwrap() <= 300.0);
        let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        assert!((mean - 0.005).abs() < 0.005 * 0.01, "mean gap {mean}");
        // Exponential gaps: the standard deviation equals the mean, and about e^-1 of the gaps
        // are longer than the mean (an even schedule has none shorter or longer).
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        assert!(
            (var.sqrt() / mean - 1.0).abs() < 0.03,
            "cv {}",
            var.sqrt() / mean
        );
        let longer = gaps.iter().filter(|&&g| g > mean).count() as f64 / gaps.len() as f64;
        assert!((longer - (-1.0f64).exp()).abs() < 0.01, "{longer}");
        // Each 10 s window holds about its 2000 (Poisson: sd ~45), never the even schedule's
        // exact count every time.
        let mut windows = [0u32; 30];
        for t in &times {
            windows[((t / 10.0) as usize).min(29)] += 1;
        }
        assert!(
            windows.iter().all(|&n| (1750..2250).contains(&n)),
            "{windows:?}"
        );
        assert!(windows.iter().any(|&n| n != 2000), "{windows:?}");
    }

    #[test]
    fn poisson_arrivals_follow_a_ramp_and_are_reproducible() {
        // 0 → 100 rps over 100 s: 5000 arrivals, a quarter of them in the first half.
        let times = poisson(0.0, &[(100, 100.0)], 3);
        assert_eq!(times.len(), 5000);
        let first_half = times.iter().filter(|&&t| t < 50.0).count();
        assert!((1150..1350).contains(&first_half), "{first_half}");
        assert_eq!(times, poisson(0.0, &[(100, 100.0)], 3));
        assert_ne!(times, poisson(0.0, &[(100, 100.0)], 4));
    }

    #[test]
    fn every_thread_takes_its_slice_of_one_poisson_sequence() {
        let mut load = open(50.0, &[(20, 50.0)]);
        load.arrivals = ArrivalProcess::Poisson { seed: 9 };
        let all = poisson(50.0, &[(20, 50.0)], 9);
        for thread in 0..3u64 {
            let mut a = Arrivals::new(&load);
            let mut k = thread;
            while let Some(t) = a.due(k) {
                assert_eq!(t.as_secs_f64(), all[k as usize]);
                k += 3;
            }
            assert!(k as usize >= all.len());
        }
    }

    #[test]
    fn vu_schedule_ramps() {
        let v = VuSchedule::new(&ClosedLoad {
            start_vus: 0,
            stages: vec![
                crate::scenario::VuStage {
                    duration: Duration::from_secs(10),
                    target_vus: 10,
                    name: None,
                },
                crate::scenario::VuStage {
                    duration: Duration::from_secs(5),
                    target_vus: 10,
                    name: None,
                },
            ],
        });
        assert_eq!(v.vus_at(0.0), 0);
        assert_eq!(v.vus_at(5.0), 5);
        assert_eq!(v.vus_at(12.0), 10);
        assert_eq!(v.max_vus(), 10);
    }

    #[test]
    fn weights_interleave() {
        assert_eq!(weighted_order(&[2, 1]), vec![0, 1, 0]);
        let o = weighted_order(&[70, 30]);
        assert_eq!(o.iter().filter(|&&j| j == 0).count(), 70);
        assert_eq!(o.len(), 100);
    }

    #[test]
    fn huge_weights_cost_no_memory_and_keep_their_proportions() {
        // The same order as the table for weights with a common factor.
        let o = JourneyOrder::new(&[2_000_000_000, 1_000_000_000]);
        assert_eq!(
            (0..6).map(|k| o.pick(k)).collect::<Vec<_>>(),
            [0, 1, 0, 0, 1, 0]
        );
        // Coprime and huge: no table, every index picks a journey, in proportion.
        let o = JourneyOrder::new(&[u32::MAX, 1, 3_000_000_000]);
        assert!(o.table.is_empty() && o.ends.len() == 3);
        let n = 1_000_000u64;
        let mut count = [0u64; 3];
        for k in 0..n {
            count[o.pick(k)] += 1;
        }
        let total = f64::from(u32::MAX) + 1.0 + 3e9;
        let share0 = count[0] as f64 / n as f64;
        assert!(
            (share0 - f64::from(u32::MAX) / total).abs() < 0.01,
            "{count:?}"
        );
        assert!(count[1] <= 1, "{count:?}");
        // Deterministic, and the same index always picks the same journey.
        assert_eq!(o.pick(123_456_789), o.pick(123_456_789));
        assert_eq!(JourneyOrder::new(&[3]).pick(7), 0);
    }
}
