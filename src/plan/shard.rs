//! Shards: slice `index` of `count` of one plan, so that N generators together run exactly the
//! plan one generator would.
//!
//! Everything that is numbered globally is dealt round-robin: arrival `k` of the open model, VU
//! `i` of the closed model and the `n`-th row taken from a feeder belong to the shard with
//! `k mod count == index`. A shard numbers its own items `0, 1, 2, ...` ("local") and
//! [`ShardSpec::global`] turns a local number into the plan's number, so `{{vu}}`,
//! `{{iteration}}` and `unique` rows never repeat across shards.

use std::fmt;

use super::{ArrivalSchedule, Arrivals, VuSchedule};

/// Which slice of the plan this generator runs. `0/1` is the whole plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSpec {
    pub index: u32,
    pub count: u32,
}

/// The Kubernetes Indexed Job's index of this pod.
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// How many shards the job has (Kubernetes does not tell a pod its `completions`).
pub const COUNT_ENV: &str = "PEAKLOAD_SHARD_COUNT";

impl Default for ShardSpec {
    fn default() -> Self {
        ShardSpec::WHOLE
    }
}

impl fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl ShardSpec {
    pub const WHOLE: ShardSpec = ShardSpec { index: 0, count: 1 };

    pub fn new(index: u32, count: u32) -> Result<Self, String> {
        if count == 0 {
            return Err("the shard count must be at least 1".into());
        }
        if index >= count {
            return Err(format!(
                "shard index {index} is not below the shard count {count} (indices are 0..{})",
                count - 1
            ));
        }
        Ok(ShardSpec { index, count })
    }

    /// `I/N`, e.g. `0/4`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not I/N (e.g. 0/4)"))?;
        let num = |x: &str, what: &str| {
            x.trim()
                .parse::<u32>()
                .map_err(|e| format!("{s:?}: the {what} {x:?} is not a whole number: {e}"))
        };
        ShardSpec::new(num(i, "index")?, num(n, "count")?)
    }

    /// From [`INDEX_ENV`] and [`COUNT_ENV`] as read from the environment. `Ok(None)` when
    /// neither is set. One without the other is refused: a pod of an Indexed Job that ran the
    /// whole plan would multiply the load by the number of pods.
    pub fn from_env(index: Option<&str>, count: Option<&str>) -> Result<Option<Self>, String> {
        match (index, count) {
            (None, None) => Ok(None),
            (Some(i), Some(n)) => {
                let num = |x: &str, var: &str| {
                    x.trim()
                        .parse::<u32>()
                        .map_err(|e| format!("{var}={x:?} is not a whole number: {e}"))
                };
                ShardSpec::new(num(i, INDEX_ENV)?, num(n, COUNT_ENV)?)
                    .map(Some)
                    .map_err(|e| format!("{INDEX_ENV}/{COUNT_ENV}: {e}"))
            }
            (Some(_), None) => Err(format!(
                "{INDEX_ENV} is set (a Kubernetes Indexed Job) but {COUNT_ENV} is not: set it to \
                 the job's completions, or pass --shard I/N (--shard 0/1 runs the whole plan)"
            )),
            (None, Some(_)) => Err(format!(
                "{COUNT_ENV} is set but {INDEX_ENV} is not: pass --shard I/N"
            )),
        }
    }

    pub fn is_whole(&self) -> bool {
        self.count == 1
    }

    /// Whether plan item `k` (an arrival, a VU, a feeder row) belongs to this shard.
    pub fn owns(&self, k: u64) -> bool {
        k % self.count as u64 == self.index as u64
    }

    /// The plan's number of this shard's `local`-th item.
    pub fn global(&self, local: u64) -> u64 {
        local * self.count as u64 + self.index as u64
    }

    /// How many of the plan's items `0..n` belong to this shard.
    pub fn share(&self, n: u64) -> u64 {
        let (i, c) = (self.index as u64, self.count as u64);
        if n > i {
            (n - i - 1) / c + 1
        } else {
            0
        }
    }

    /// The arrivals this shard runs in the whole plan.
    pub fn arrivals(&self, schedule: &ArrivalSchedule) -> u64 {
        self.share(schedule.total_arrivals())
    }

    /// The most VUs this shard runs at once.
    pub fn max_vus(&self, schedule: &VuSchedule) -> u32 {
        self.share(schedule.max_vus() as u64) as u32
    }
}

/// The arrivals one worker thread of one shard dispatches, in order: `(k, due)` with `k` the
/// plan's arrival number. Thread `thread` of `threads` takes every `threads`-th of the shard's
/// arrivals.
pub fn thread_arrivals(
    mut arrivals: Arrivals,
    shard: ShardSpec,
    threads: usize,
    thread: usize,
) -> impl Iterator<Item = (u64, std::time::Duration)> {
    // Global indices rise with the local ones, as Poisson arrivals must be drawn in order.
    (thread as u64..)
        .step_by(threads.max(1))
        .map(move |local| shard.global(local))
        .map_while(move |k| arrivals.due(k).map(|due| (k, due)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::tests::open;
    use super::*;
    use crate::scenario::{ArrivalProcess, ClosedLoad, OpenLoad, RateStage, VuStage};

    fn poisson(load: OpenLoad, seed: u64) -> OpenLoad {
        OpenLoad {
            arrivals: ArrivalProcess::Poisson { seed },
            ..load
        }
    }

    /// Every (arrival, instant) of the whole plan as one generator with one thread runs it.
    fn unsharded(load: &OpenLoad) -> Vec<(u64, Duration)> {
        thread_arrivals(Arrivals::new(load), ShardSpec::WHOLE, 1, 0).collect()
    }

    #[test]
    fn the_union_of_shards_is_the_plan() {
        let plans = [
            open(100.0, &[(10, 100.0)]),
            open(0.0, &[(3, 40.0), (2, 40.0), (1, 0.0)]),
            open(50.0, &[(2, 10.0), (1, 200.0), (2, 0.0)]),
            // Fewer arrivals (3) than most shard counts below.
            open(1.0, &[(3, 1.0)]),
            poisson(open(100.0, &[(10, 100.0)]), 7),
            poisson(open(50.0, &[(2, 10.0), (1, 200.0), (2, 0.0)]), 1),
        ];
        for load in &plans {
            let s = &ArrivalSchedule::new(load);
            let whole = unsharded(load);
            assert_eq!(whole.len() as u64, s.total_arrivals());
            for n in [1u32, 2, 3, 4, 7, 16, 1000] {
                for threads in [1usize, 3] {
                    let mut union = Vec::new();
                    let mut planned = 0;
                    for i in 0..n {
                        let shard = ShardSpec::new(i, n).unwrap();
                        let mine: Vec<_> = (0..threads)
                            .flat_map(|t| thread_arrivals(Arrivals::new(load), shard, threads, t))
                            .collect();
                        assert_eq!(mine.len() as u64, shard.arrivals(s), "{shard}");
                        assert!(mine.iter().all(|&(k, _)| shard.owns(k)));
                        planned += shard.arrivals(s);
                        union.extend(mine);
                    }
                    union.sort();
                    assert_eq!(planned, s.total_arrivals(), "N={n}");
                    // Same count, same arrivals, same instants (to the nanosecond).
                    assert_eq!(union, whole, "N={n} threads={threads}");
                }
            }
        }
    }

    #[test]
    fn each_shards_timeline_target_counts_its_own_arrivals() {
        let load = crate::scenario::Load::Open(OpenLoad {
            start_rps: 0.0,
            stages: vec![RateStage {
                duration: Duration::from_secs(6),
                target_rps: 33.0,
                name: None,
            }],
            pre_allocated_vus: 1,
            max_vus: 10,
            max_lag: Duration::from_secs(1),
            arrivals: ArrivalProcess::Even,
        });
        let crate::scenario::Load::Open(o) = &load else {
            unreachable!()
        };
        let whole = unsharded(o);
        for n in [2u32, 5] {
            for sec in 0..7u32 {
                let in_second = whole
                    .iter()
                    .filter(|(_, d)| d.as_secs() == sec as u64)
                    .count() as f64;
                let sum: f64 = (0..n)
                    .map(|i| {
                        super::super::Plan::sharded(&load, ShardSpec::new(i, n).unwrap())
                            .target_in_second(sec)
                    })
                    .sum();
                assert_eq!(sum, in_second, "N={n} second {sec}");
            }
        }
    }

    #[test]
    fn closed_vus_split_with_the_remainder_spread() {
        let v = VuSchedule::new(&ClosedLoad {
            start_vus: 0,
            stages: vec![VuStage {
                duration: Duration::from_secs(10),
                target_vus: 10,
                name: None,
            }],
        });
        for n in [1u32, 3, 4, 10, 11, 50] {
            for t in [0.0, 2.5, 5.0, 9.9, 10.0] {
                let want = v.vus_at(t) as u64;
                let mut ids: Vec<u64> = (0..n)
                    .flat_map(|i| {
                        let s = ShardSpec::new(i, n).unwrap();
                        (0..s.share(want)).map(move |l| s.global(l))
                    })
                    .collect();
                ids.sort();
                assert_eq!(ids, (0..want).collect::<Vec<_>>(), "N={n} t={t}");
                // No shard has more than one VU above another.
                let shares: Vec<u64> = (0..n)
                    .map(|i| ShardSpec::new(i, n).unwrap().share(want))
                    .collect();
                assert!(shares.iter().max().unwrap() - shares.iter().min().unwrap() <= 1);
            }
            let max: u32 = (0..n)
                .map(|i| ShardSpec::new(i, n).unwrap().max_vus(&v))
                .sum();
            assert_eq!(max, 10);
        }
    }

    #[test]
    fn shards_parse_and_refuse_clearly() {
        assert_eq!(
            ShardSpec::parse("2/4").unwrap(),
            ShardSpec { index: 2, count: 4 }
        );
        assert!(ShardSpec::parse("4/4").unwrap_err().contains("not below"));
        assert!(ShardSpec::parse("0/0").unwrap_err().contains("at least 1"));
        assert!(ShardSpec::parse("1").unwrap_err().contains("I/N"));
        assert!(ShardSpec::parse("a/2").unwrap_err().contains("index"));
        assert_eq!(ShardSpec::from_env(None, None).unwrap(), None);
        assert_eq!(
            ShardSpec::from_env(Some("3"), Some("8")).unwrap(),
            Some(ShardSpec { index: 3, count: 8 })
        );
        assert!(ShardSpec::from_env(Some("3"), None)
            .unwrap_err()
            .contains(COUNT_ENV));
        assert!(ShardSpec::from_env(Some("8"), Some("8"))
            .unwrap_err()
            .contains("not below"));
    }
}
