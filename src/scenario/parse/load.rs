//! `[load]`: the open model (arrival rate) or the closed model (virtual users), by stages or
//! by the `rps`/`vus` + `duration` shorthand.

use std::time::Duration;

use toml::de::DeValue;

use super::fields::Fields;
use super::{Compiler, Value};
use crate::scenario::diag::did_you_mean;
use crate::scenario::duration::MAX_DURATION;
use crate::scenario::model::*;

const OPEN_KEYS: &[&str] = &[
    "model",
    "start_rps",
    "max_vus",
    "pre_allocated_vus",
    "max_lag",
    "stages",
    "rps",
    "duration",
    "arrivals",
    "seed",
];
/// The most VUs one process runs (`vus`, `max_vus`, `target_vus`, ...).
pub const MAX_VUS: u32 = 100_000;
/// The highest arrival rate one process is asked for, per second.
pub const MAX_RPS: f64 = 10_000_000.0;

const CLOSED_KEYS: &[&str] = &["model", "start_vus", "stages", "vus", "duration"];

impl<'s> Compiler<'s> {
    pub(super) fn load(&mut self, v: &Value<'_>) -> Load {
        let all: Vec<&str> =
            OPEN_KEYS
                .iter()
                .chain(CLOSED_KEYS)
                .copied()
                .fold(Vec::new(), |mut acc, k| {
                    if !acc.contains(&k) {
                        acc.push(k);
                    }
                    acc
                });
        let Some(f) = self.fields(v, "[load]", &all, &[]) else {
            return default_load();
        };
        let closed = match f.get("model") {
            None => f.get("vus").is_some(),
            Some(m) => match self.string(m, "model") {
                Some("open") => false,
                Some("closed") => true,
                Some(other) => {
                    self.error(
                        m.span().start,
                        format!(
                            "unknown load model \"{other}\"; expected \"open\" (arrival rate) \
                             or \"closed\" (virtual users){}",
                            did_you_mean(other, ["open", "closed"])
                        ),
                    );
                    false
                }
                None => false,
            },
        };
        let (own, other_model, other_name) = if closed {
            (CLOSED_KEYS, "open", "closed")
        } else {
            (OPEN_KEYS, "closed", "open")
        };
        for (k, _) in &f.entries {
            let key = k.get_ref().as_ref();
            if !own.contains(&key) {
                let fix = if closed {
                    "remove it or set model = \"open\""
                } else {
                    "set model = \"closed\" in [load] to use virtual users"
                };
                self.error(
                    k.span().start,
                    format!(
                        "\"{key}\" belongs to the {other_model} model, but this [load] uses the \
                         {other_name} model; {fix}"
                    ),
                );
            }
        }

        let shorthand_key = if closed { "vus" } else { "rps" };
        let shorthand = f.get(shorthand_key);
        let duration = f.get("duration");
        let stages = f.get("stages");
        if let (Some(_), Some(_)) = (shorthand.or(duration), stages) {
            let k = if shorthand.is_some() {
                shorthand_key
            } else {
                "duration"
            };
            self.error(
                f.key_at(k),
                format!(
                    "use either the shorthand \"{shorthand_key} = ..., duration = ...\" or \
                     \"stages\", not both"
                ),
            );
        }
        if shorthand.is_some() != duration.is_some() && stages.is_none() {
            let (present, missing) = if shorthand.is_some() {
                (shorthand_key, "duration")
            } else {
                ("duration", shorthand_key)
            };
            self.error(
                f.key_at(present),
                format!(
                    "\"{present}\" needs \"{missing}\" beside it (e.g. {shorthand_key} = 10, \
                     duration = \"30s\"), or use stages"
                ),
            );
        }
        if shorthand.is_none() && duration.is_none() && stages.is_none() {
            self.error(
                f.at,
                format!(
                    "[load] needs stages, e.g. stages = [{{ duration = \"30s\", target_{} = 10 }}], \
                     or the shorthand {shorthand_key} = 10, duration = \"30s\"",
                    if closed { "vus" } else { "rps" }
                ),
            );
        }
        let shorthand_stage = |c: &mut Self| duration.and_then(|d| c.duration(d, "duration", true));
        let plan_at = stages.map_or(f.at, |s| s.span().start);

        if closed {
            let mut start_vus = f
                .get("start_vus")
                .and_then(|v| self.vus_in(v, "start_vus", 0))
                .unwrap_or(0);
            let stages = if let (Some(vus), None) = (shorthand, stages) {
                let n = self.vus_in(vus, "vus", 1).unwrap_or(1);
                if f.get("start_vus").is_some() {
                    self.error(
                        f.key_at("start_vus"),
                        "with the shorthand vus = N, start_vus is N already; remove start_vus",
                    );
                }
                start_vus = n;
                let d = shorthand_stage(self).unwrap_or(Duration::from_secs(1));
                vec![VuStage {
                    duration: d,
                    target_vus: n,
                    name: None,
                }]
            } else {
                stages.map(|s| self.vu_stages(s)).unwrap_or_default()
            };
            self.plan_length(stages.iter().map(|s| s.duration), plan_at);
            Load::Closed(ClosedLoad { start_vus, stages })
        } else {
            let mut start_rps = f
                .get("start_rps")
                .and_then(|v| self.rate(v, "start_rps"))
                .unwrap_or(0.0);
            let stages = if let (Some(rps), None) = (shorthand, stages) {
                let r = self.rate(rps, "rps").unwrap_or(1.0);
                if f.get("start_rps").is_some() {
                    self.error(
                        f.key_at("start_rps"),
                        "with the shorthand rps = N, start_rps is N already; remove start_rps",
                    );
                }
                start_rps = r;
                let d = shorthand_stage(self).unwrap_or(Duration::from_secs(1));
                vec![RateStage {
                    duration: d,
                    target_rps: r,
                    name: None,
                }]
            } else {
                stages.map(|s| self.rate_stages(s)).unwrap_or_default()
            };
            self.plan_length(stages.iter().map(|s| s.duration), plan_at);
            let max_vus = f
                .get("max_vus")
                .and_then(|v| self.vus_in(v, "max_vus", 1))
                .unwrap_or(1000);
            let first_target = stages.first().map_or(1.0, |s| s.target_rps);
            let default_pre =
                (first_target.ceil().max(1.0).min(f64::from(u32::MAX)) as u32).min(max_vus);
            let pre_allocated_vus = match f.get("pre_allocated_vus") {
                Some(v) => match self.vus_in(v, "pre_allocated_vus", 0) {
                    Some(n) if n > max_vus => {
                        self.error(
                            v.span().start,
                            format!(
                                "pre_allocated_vus ({n}) is above max_vus ({max_vus}); \
                                 lower it or raise max_vus"
                            ),
                        );
                        max_vus
                    }
                    Some(n) => n,
                    None => default_pre,
                },
                None => default_pre,
            };
            let max_lag = f
                .get("max_lag")
                .and_then(|v| self.duration(v, "max_lag", false))
                .unwrap_or(Duration::from_secs(5));
            let arrivals = self.arrivals(&f);
            Load::Open(OpenLoad {
                start_rps,
                stages,
                pre_allocated_vus,
                max_vus,
                max_lag,
                arrivals,
            })
        }
    }

    /// A number of VUs: each is a task with its own connection, so the count is bounded.
    fn vus_in(&mut self, v: &Value<'_>, key: &str, min: u32) -> Option<u32> {
        self.int_in(v, key, i64::from(min), i64::from(MAX_VUS))
            .map(|n| n as u32)
    }

    /// An arrival rate, per second, from 0 to [`MAX_RPS`].
    fn rate(&mut self, v: &Value<'_>, key: &str) -> Option<f64> {
        let r = self.non_negative(v, key)?;
        if r > MAX_RPS {
            self.error(
                v.span().start,
                format!(
                    "\"{key}\" must be at most {MAX_RPS} per second (one process), found {r:e}; \
                     split a larger load into shards"
                ),
            );
            return None;
        }
        Some(r)
    }

    /// The whole plan must fit in [`MAX_DURATION`], like each of its stages.
    fn plan_length(&mut self, mut stages: impl Iterator<Item = Duration>, at: usize) {
        let total = stages.try_fold(Duration::ZERO, |a, d| a.checked_add(d));
        if total.is_none_or(|t| t > MAX_DURATION) {
            self.error(
                at,
                "the stages add up to more than 366 days, the longest plan peakload runs; \
                 shorten them",
            );
        }
    }

    /// `arrivals` and its `seed`.
    fn arrivals(&mut self, f: &Fields<'_, '_>) -> ArrivalProcess {
        let poisson = match f.get("arrivals") {
            None => false,
            Some(a) => match self.string(a, "arrivals") {
                Some("even") | None => false,
                Some("poisson") => true,
                Some(other) => {
                    self.error(
                        a.span().start,
                        format!(
                            "unknown arrivals \"{other}\"; expected \"even\" (evenly spaced, \
                             the default) or \"poisson\" (independent arrivals at the planned \
                             rate){}",
                            did_you_mean(other, ["even", "poisson"])
                        ),
                    );
                    false
                }
            },
        };
        let seed = f
            .get("seed")
            .and_then(|s| self.int_in(s, "seed", 0, i64::MAX))
            .map_or(DEFAULT_ARRIVAL_SEED, |s| s as u64);
        if f.get("seed").is_some() && !poisson {
            self.error(
                f.key_at("seed"),
                "\"seed\" only shapes arrivals = \"poisson\"; add arrivals = \"poisson\" or \
                 remove the seed",
            );
        }
        if poisson {
            ArrivalProcess::Poisson { seed }
        } else {
            ArrivalProcess::Even
        }
    }

    fn stage_tables<'t, 'i>(&mut self, v: &'t Value<'i>) -> Vec<&'t Value<'i>> {
        match v.get_ref() {
            DeValue::Array(a) if a.is_empty() => {
                self.error(
                    v.span().start,
                    "\"stages\" is empty; add at least one stage",
                );
                Vec::new()
            }
            DeValue::Array(a) => a.iter().collect(),
            _ => {
                self.type_error(v, "stages", "an array of stage tables");
                Vec::new()
            }
        }
    }

    /// A stage's `duration` and optional `name`.
    fn stage_common(&mut self, f: &Fields<'_, '_>) -> (Duration, Option<String>) {
        let duration = match f.get("duration") {
            Some(d) => self.duration(d, "duration", true),
            None if !f.missing("duration") => None,
            None => {
                self.error(
                    f.at,
                    "this stage has no \"duration\"; add e.g. duration = \"30s\"",
                );
                None
            }
        };
        let name = f.get("name").and_then(|n| self.name_value(n, "name"));
        (duration.unwrap_or(Duration::from_secs(1)), name)
    }

    fn rate_stages(&mut self, v: &Value<'_>) -> Vec<RateStage> {
        let mut out = Vec::new();
        for s in self.stage_tables(v) {
            let Some(f) = self.fields(
                s,
                "load stage",
                &["duration", "target_rps", "name"],
                &["target_vus"],
            ) else {
                continue;
            };
            if f.get("target_vus").is_some() {
                self.error(
                    f.key_at("target_vus"),
                    "\"target_vus\" is for the closed model; set model = \"closed\" in [load] \
                     to run virtual users, or use target_rps for an arrival rate",
                );
            }
            let (duration, name) = self.stage_common(&f);
            let target_rps = match f.get("target_rps") {
                Some(t) => self.rate(t, "target_rps").unwrap_or(0.0),
                None => {
                    if f.get("target_vus").is_none() && f.missing("target_rps") {
                        self.error(
                            f.at,
                            "this stage has no \"target_rps\"; add e.g. target_rps = 50",
                        );
                    }
                    0.0
                }
            };
            out.push(RateStage {
                duration,
                target_rps,
                name,
            });
        }
        out
    }

    fn vu_stages(&mut self, v: &Value<'_>) -> Vec<VuStage> {
        let mut out = Vec::new();
        for s in self.stage_tables(v) {
            let Some(f) = self.fields(
                s,
                "load stage",
                &["duration", "target_vus", "name"],
                &["target_rps"],
            ) else {
                continue;
            };
            if f.get("target_rps").is_some() {
                self.error(
                    f.key_at("target_rps"),
                    "\"target_rps\" is for the open model, but this [load] has model = \"closed\"; \
                     use target_vus, or set model = \"open\" for an arrival rate",
                );
            }
            let (duration, name) = self.stage_common(&f);
            let target_vus = match f.get("target_vus") {
                Some(t) => self.vus_in(t, "target_vus", 0).unwrap_or(0),
                None => {
                    if f.get("target_rps").is_none() && f.missing("target_vus") {
                        self.error(
                            f.at,
                            "this stage has no \"target_vus\"; add e.g. target_vus = 10",
                        );
                    }
                    0
                }
            };
            out.push(VuStage {
                duration,
                target_vus,
                name,
            });
        }
        out
    }
}

pub(super) fn default_load() -> Load {
    Load::Open(OpenLoad {
        start_rps: 0.0,
        stages: vec![RateStage {
            duration: Duration::from_secs(10),
            target_rps: 1.0,
            name: None,
        }],
        pre_allocated_vus: 1,
        max_vus: 1000,
        max_lag: Duration::from_secs(5),
        arrivals: ArrivalProcess::Even,
    })
}
