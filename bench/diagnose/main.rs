//! Accuracy and speed of the diagnosis ranking on seeded synthetic cases.
//!
//! `cargo run --release --example diagnose_bench [-- [--cases N] [--seed N]]` (positional
//! `CASES [SEED]` also work)
//!
//! Each case (see `peakload::diagnose::synthetic`) plants one cause signal among distractors
//! (noise, random walks, seasonal waves, spikes, load followers, latency followers); the users'
//! latency follows the cause after a lag. Reported: how often the cause ranks first and in the
//! top three, how often a healthy case is called healthy, and the time to diagnose one hour of
//! 200 signals at one-second resolution.

use std::time::Instant;

use peakload::diagnose::synthetic::{case, Spec};
use peakload::diagnose::{analyze, Input};
use peakload::record::infra::{Infra, Series};

/// The seed the published figures use; run another (`--seed`) to check they do not depend on it.
const DEFAULT_SEED: u64 = 20_241_129;

fn main() {
    let (cases, seed) = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "error: {e}\nusage: diagnose_bench [--cases N] [--seed N]  (or: CASES [SEED])"
            );
            std::process::exit(2);
        }
    };

    let mut top1 = 0;
    let mut top3 = 0;
    let mut named = 0;
    // Cases whose latency rose less than the SLI's floor are rightly called healthy; the
    // ranking's own accuracy is clearer over the others.
    let mut top1_named = 0;
    let mut by_shape = [[0u32; 2]; 2];
    for i in 0..cases {
        let ramp = i % 2 == 1;
        let spec = Spec {
            seconds: [300, 600, 1200][(i % 3) as usize],
            signals: 60,
            ramp,
            faulty: true,
        };
        let c = case(seed + i, spec);
        let d = analyze(&c.input);
        let cause = c.cause.as_deref().unwrap_or_default();
        let pos = d.ranking.iter().position(|r| r.signal == cause);
        if pos == Some(0) {
            top1 += 1;
        }
        if pos.is_some_and(|p| p < 3) {
            top3 += 1;
        }
        if !d.healthy {
            named += 1;
            top1_named += u64::from(pos == Some(0));
        }
        by_shape[usize::from(ramp)][0] += 1;
        by_shape[usize::from(ramp)][1] += u32::from(pos == Some(0));
    }
    let mut healthy_ok = 0;
    let healthy_cases = cases / 2;
    for i in 0..healthy_cases {
        let spec = Spec {
            seconds: 600,
            signals: 60,
            ramp: i % 2 == 1,
            faulty: false,
        };
        let d = analyze(&case(seed + 1_000_000 + i, spec).input);
        if d.healthy && d.findings.is_empty() {
            healthy_ok += 1;
        }
    }
    let pct = |a: u64, b: u64| 100.0 * a as f64 / b.max(1) as f64;
    println!("diagnose bench: {cases} faulty cases (60 signals, 300–1200 s), seed {seed}");
    println!(
        "  top-1 accuracy: {:.1}%   top-3 accuracy: {:.1}%   degradation detected: {:.1}%",
        pct(top1, cases),
        pct(top3, cases),
        pct(named, cases)
    );
    println!(
        "  top-1 among the {named} called degraded: {:.1}%",
        pct(top1_named, named)
    );
    println!(
        "  top-1 with steady load: {:.1}%   with a ramp: {:.1}%",
        pct(u64::from(by_shape[0][1]), u64::from(by_shape[0][0])),
        pct(u64::from(by_shape[1][1]), u64::from(by_shape[1][0]))
    );
    println!(
        "  healthy cases called healthy: {healthy_ok}/{healthy_cases} ({:.1}%)",
        pct(healthy_ok, healthy_cases)
    );

    // One hour × 200 signals at 1 s, timed from raw series (resampling included).
    let big = case(
        seed,
        Spec {
            seconds: 3600,
            signals: 200,
            ramp: false,
            faulty: true,
        },
    );
    let infra = Infra {
        series: big
            .input
            .signals
            .iter()
            .map(|s| Series {
                source: "bench".into(),
                name: s.name.clone(),
                unit: String::new(),
                dimensions: Default::default(),
                span_s: None,
                points: s
                    .values
                    .iter()
                    .enumerate()
                    .map(|(t, v)| (t as f64 + 0.5, *v))
                    .collect(),
            })
            .collect(),
        ..Default::default()
    };
    let mut runs = Vec::new();
    let mut found = false;
    for _ in 0..5 {
        let started = Instant::now();
        let mut input = Input {
            signals: Vec::new(),
            ..big.input.clone()
        };
        input.add_infra(&infra);
        let d = analyze(&input);
        runs.push(started.elapsed().as_secs_f64());
        found = d.ranking.first().map(|r| r.signal.as_str()) == big.cause.as_deref();
    }
    runs.sort_by(f64::total_cmp);
    println!(
        "  1 h × 200 signals: median {:.0} ms, worst {:.0} ms over 5 runs (cause ranked first: {found})",
        runs[2] * 1000.0,
        runs[4] * 1000.0
    );
}

/// `--cases N`, `--seed N`, or positional `CASES [SEED]`.
fn parse_args(args: impl Iterator<Item = String>) -> Result<(u64, u64), String> {
    let number = |v: Option<String>, what: &str| -> Result<u64, String> {
        let v = v.ok_or_else(|| format!("{what} needs a value"))?;
        v.parse()
            .map_err(|_| format!("{what}: not a whole number: {v:?}"))
    };
    let (mut cases, mut seed) = (300, DEFAULT_SEED);
    let mut positional = 0;
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--cases" => cases = number(args.next(), "--cases")?,
            "--seed" => seed = number(args.next(), "--seed")?,
            _ if !a.starts_with('-') && positional == 0 => {
                cases = number(Some(a), "CASES")?;
                positional += 1;
            }
            _ if !a.starts_with('-') && positional == 1 => {
                seed = number(Some(a), "SEED")?;
                positional += 1;
            }
            _ => return Err(format!("unexpected argument {a:?}")),
        }
    }
    if cases == 0 {
        return Err("--cases must be at least 1".into());
    }
    Ok((cases, seed))
}
