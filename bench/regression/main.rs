//! The regression gate's verdicts over seeded synthetic run histories, for `compare.py`.
//!
//! `cargo run --release --example regression_bench -- SERIES.json [--replay] > peakload.json`
//!
//! SERIES.json comes from `bench/regression/gen.py` (one metric's values per run, oldest
//! first, the judged run last, and the metric's name). Each series is judged with the
//! metric's default policy (`Policy::for_metric`), at a range of significance levels (so
//! `compare.py` can match false-alarm rates across methods), and with the tail-percentile
//! rules switched off (every metric judged like p50) to show what they are for. `--replay`
//! also judges every prefix of each series, as a CI gate would run after each run, and
//! reports the first run called regressed. `--defaults-only` judges at the default policy
//! alone (a quick check, e.g. with a debug build; `compare.py` needs every setting).
//!
//! Output: {"method": "peakload", "settings": [{"name", "param", "default"}],
//! "verdicts": {setting: [{"verdict", "change_at", "relative", "p_value", "min_relative"}]},
//! "seconds": {setting: s}, "replay": [first regressed run or null per series]}.

use std::time::Instant;

use peakload::gate::change::{judge, Judgement, Policy, Verdict, DEFAULT_ALPHA};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
struct File {
    series: Vec<Series>,
}

#[derive(Deserialize)]
struct Series {
    metric: String,
    values: Vec<f64>,
}

const ALPHAS: [f64; 11] = [
    1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2, 1.5e-2, 2e-2, 3e-2, 1e-1,
];

fn main() {
    let mut path = None;
    let mut replay = false;
    let mut defaults_only = false;
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--replay" => replay = true,
            "--defaults-only" => defaults_only = true,
            s if !s.starts_with('-') && path.is_none() => path = Some(s.to_string()),
            other => fail(&format!("unexpected argument {other:?}")),
        }
    }
    let Some(path) = path else {
        fail("the series file is missing");
    };
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| fail(&format!("cannot read {path}: {e}")));
    let file: File = serde_json::from_str(&text)
        .unwrap_or_else(|e| fail(&format!("{path} is not a series file from gen.py: {e}")));
    let policies: Vec<Policy> = file
        .series
        .iter()
        .map(|s| {
            Policy::for_metric(&s.metric)
                .unwrap_or_else(|| fail(&format!("no default policy for metric {:?}", s.metric)))
        })
        .collect();

    let mut settings = Vec::new();
    let mut verdicts = serde_json::Map::new();
    let mut seconds = serde_json::Map::new();
    let mut run = |name: String, param: f64, default: bool, adjust: &dyn Fn(&Policy) -> Policy| {
        let t = Instant::now();
        let out: Vec<Value> = file
            .series
            .iter()
            .zip(&policies)
            .map(|(s, p)| {
                let p = adjust(p);
                let j = judge(&s.values, &[], &p)
                    .unwrap_or_else(|e| fail(&format!("series rejected: {e}")));
                row(&j, &p)
            })
            .collect();
        seconds.insert(name.clone(), json!(t.elapsed().as_secs_f64()));
        verdicts.insert(name.clone(), Value::Array(out));
        settings.push(json!({"name": name, "param": param, "default": default}));
    };
    for alpha in ALPHAS {
        let default = alpha == DEFAULT_ALPHA;
        if defaults_only && !default {
            continue;
        }
        let name = if default {
            "defaults".to_string()
        } else {
            format!("alpha={alpha}")
        };
        run(name, alpha, default, &|p| Policy { alpha, ..p.clone() });
    }
    let p50 = Policy::for_metric("p50").expect("p50 has a policy");
    if !defaults_only {
        run(
            "every metric judged like p50".to_string(),
            DEFAULT_ALPHA,
            false,
            &|p| Policy {
                direction: p.direction,
                ..p50.clone()
            },
        );
    }

    let mut report = json!({
        "method": "peakload",
        "settings": settings,
        "verdicts": verdicts,
        "seconds": seconds,
    });
    if replay {
        let t = Instant::now();
        let first: Vec<Value> = file
            .series
            .iter()
            .zip(&policies)
            .map(|(s, p)| {
                (p.min_history + 1..=s.values.len())
                    .find(|&end| {
                        judge(&s.values[..end], &[], p)
                            .is_ok_and(|j| j.verdict == Verdict::Regressed)
                    })
                    .map_or(Value::Null, |end| json!(end - 1))
            })
            .collect();
        report["replay"] = Value::Array(first);
        report["replay_seconds"] = json!(t.elapsed().as_secs_f64());
    }
    println!("{report}");
}

fn row(j: &Judgement, p: &Policy) -> Value {
    let verdict = serde_json::to_value(j.verdict).expect("a verdict serializes");
    json!({
        "verdict": verdict,
        "change_at": j.compared.first_run,
        "relative": j.change.as_ref().and_then(|c| c.relative),
        "p_value": j.change.as_ref().map(|c| c.p_value),
        "min_relative": p.min_relative,
    })
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}\nusage: regression_bench SERIES.json [--replay] [--defaults-only]");
    std::process::exit(2);
}
