//! Seeded, labelled synthetic runs for the tests and the benchmark (`bench/diagnose/`).
//!
//! A case has a planned load (a level, a slow seasonal swing and optionally a ramp), a cause
//! signal that changes at a random time (a step up or down, or a climb), a users' latency that
//! follows the cause after a lag, and distractors: white noise, random walks, seasonal waves,
//! spikes, signals that follow the load, and signals that follow the latency (consequences,
//! which change *after* it). Levels span nine orders of magnitude so nothing can rely on scale.

use super::{Input, Signal};

/// What a case is, for reporting accuracy.
#[derive(Debug, Clone)]
pub struct Case {
    pub input: Input,
    /// Name of the signal that caused the degradation, `None` for a healthy case.
    pub cause: Option<String>,
    /// When the cause changed, and by how many seconds the latency followed.
    pub changed_at: usize,
    pub lag: usize,
}

#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub seconds: usize,
    pub signals: usize,
    /// Whether the load ramps up over the run (else a level with a seasonal swing).
    pub ramp: bool,
    /// Plant a cause (else a healthy run).
    pub faulty: bool,
}

struct Gen(fastrand::Rng);

impl Gen {
    fn normal(&mut self) -> f64 {
        let u1 = self.0.f64().max(1e-12);
        let u2 = self.0.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.0.f64()
    }
}

pub fn case(seed: u64, spec: Spec) -> Case {
    let mut g = Gen(fastrand::Rng::with_seed(seed));
    let n = spec.seconds.max(20);
    let season = g.range(n as f64 / 4.0, n as f64 * 1.5);
    let phase = g.range(0.0, std::f64::consts::TAU);
    let level = g.range(50.0, 500.0);
    let target: Vec<f64> = (0..n)
        .map(|t| {
            let tt = t as f64;
            let ramp = if spec.ramp { 0.5 + tt / n as f64 } else { 1.0 };
            level * ramp * (1.0 + 0.15 * (std::f64::consts::TAU * tt / season + phase).sin())
        })
        .collect();
    let rps: Vec<f64> = target
        .iter()
        .map(|t| (t + g.normal() * t.sqrt()).max(0.0))
        .collect();
    let lag_cap = (n / 10).clamp(2, 30);
    let changed_at = (g.range(0.35, 0.65) * n as f64) as usize;
    let lag = g.0.usize(0..=lag_cap.min(10));
    let shape = g.0.u8(0..3);
    // The cause's effect on latency, 0 before the change, ~1 when fully developed.
    let effect: Vec<f64> = (0..n)
        .map(|t| {
            if !spec.faulty || t < changed_at + lag {
                0.0
            } else if shape == 2 {
                ((t - changed_at - lag) as f64 / 10.0 + 0.3).min(1.0)
            } else {
                1.0
            }
        })
        .collect();
    let base_ms = g.range(5.0, 100.0);
    let load_mean = target.iter().sum::<f64>() / n as f64;
    let severity = g.range(1.0, 4.0);
    let latency: Vec<f64> = (0..n)
        .map(|t| {
            let load = target[t] / load_mean;
            let spike = if g.0.f64() < 0.01 {
                g.range(1.0, 3.0)
            } else {
                1.0
            };
            base_ms
                * (0.8 + 0.2 * load)
                * (1.0 + severity * effect[t])
                * (1.0 + 0.08 * g.normal()).max(0.5)
                * spike
        })
        .collect();
    let cause_index = g.0.usize(0..spec.signals.max(1));
    let mut signals = Vec::with_capacity(spec.signals);
    for i in 0..spec.signals {
        let scale = 10f64.powf(g.range(-3.0, 6.0));
        let noise = g.range(0.02, 0.2);
        let values: Vec<f64> = if i == cause_index && spec.faulty {
            let up = shape != 1;
            let size = g.range(1.0, 5.0);
            (0..n)
                .map(|t| {
                    let change = if t < changed_at {
                        0.0
                    } else if shape == 2 {
                        ((t - changed_at) as f64 / 10.0 + 0.3).min(1.0) * size
                    } else {
                        size
                    };
                    let level = if up {
                        1.0 + change
                    } else {
                        1.0 / (1.0 + change)
                    };
                    scale * level * (1.0 + noise * g.normal())
                })
                .collect()
        } else {
            match i % 7 {
                0 | 1 => (0..n).map(|_| scale * (1.0 + noise * g.normal())).collect(),
                2 => {
                    let mut x = 0.0;
                    (0..n)
                        .map(|_| {
                            x += g.normal() * noise;
                            scale * (3.0 + x)
                        })
                        .collect()
                }
                3 => {
                    let period = g.range(30.0, n as f64);
                    let ph = g.range(0.0, std::f64::consts::TAU);
                    (0..n)
                        .map(|t| {
                            scale
                                * (2.0
                                    + (std::f64::consts::TAU * t as f64 / period + ph).sin()
                                    + noise * g.normal())
                        })
                        .collect()
                }
                4 => (0..n)
                    .map(|t| scale * (target[t] / load_mean) * (1.0 + noise * g.normal()))
                    .collect(),
                5 => (0..n)
                    .map(|_| {
                        let burst = if g.0.f64() < 0.02 {
                            g.range(2.0, 6.0)
                        } else {
                            1.0
                        };
                        scale * burst * (1.0 + noise * g.normal())
                    })
                    .collect(),
                _ => {
                    // A consequence: follows the latency, some seconds later.
                    let delay = g.0.usize(3..=8);
                    (0..n)
                        .map(|t| {
                            let src = latency[t.saturating_sub(delay)] / base_ms;
                            scale * src * (1.0 + noise * g.normal())
                        })
                        .collect()
                }
            }
        };
        signals.push(Signal {
            name: format!("s{i:03}"),
            unit: String::new(),
            held: Vec::new(),
            span_s: None,
            starts: Vec::new(),
            values,
        });
    }
    Case {
        input: Input {
            latency_stat: "p99",
            latency_ms: Some(latency),
            error_rate: Some(vec![0.0; n]),
            rps,
            target,
            generator_busy: vec![false; n],
            generator_kept_up: true,
            signals,
            latency_floor_ms: super::sli::LATENCY_FLOOR_MS,
            ..Default::default()
        },
        cause: spec.faulty.then(|| format!("s{cause_index:03}")),
        changed_at,
        lag,
    }
}
