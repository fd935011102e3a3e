//! Writes the seeded synthetic cases of `bench/diagnose` as CSV files, so that methods outside
//! peakload can be run on exactly the same cases (`bench/rca/`).
//!
//! `cargo run --example rca_export -- --out DIR [--cases N] [--seed N]`
//!
//! Each case `i` is `synthetic::case(seed + i, …)` with the shapes `diagnose_bench` uses (300,
//! 600 or 1200 s; 60 signals; a ramp on odd cases) and becomes `DIR/case_NNNN.csv`: a `time`
//! column (Unix seconds, one row per second), `latency_ms` (the users' p99) and one column per
//! signal. `DIR/labels.json` lists, per case, the file, the cause signal, when it changed, and
//! what the in-process diagnosis (which also sees the planned and achieved load, which the CSV
//! does not carry) ranked first.

use std::fmt::Write as _;
use std::path::PathBuf;

use peakload::diagnose::analyze;
use peakload::diagnose::synthetic::{case, Spec};

const DEFAULT_SEED: u64 = 20_241_129;
const T0: u64 = 1_700_000_000;

fn main() {
    let (out, cases, seed) = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}\nusage: rca_export --out DIR [--cases N] [--seed N]");
            std::process::exit(2);
        }
    };
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("error: cannot create {}: {e}", out.display());
        std::process::exit(1);
    }
    let mut labels = Vec::new();
    for i in 0..cases {
        let spec = Spec {
            seconds: [300, 600, 1200][(i % 3) as usize],
            signals: 60,
            ramp: i % 2 == 1,
            faulty: true,
        };
        let c = case(seed + i, spec);
        let latency = c.input.latency_ms.clone().unwrap_or_default();
        let mut csv = String::from("time,latency_ms");
        for s in &c.input.signals {
            csv.push(',');
            csv.push_str(&s.name);
        }
        csv.push('\n');
        for (t, l) in latency.iter().enumerate() {
            let _ = write!(csv, "{},{l}", T0 + t as u64);
            for s in &c.input.signals {
                let _ = write!(csv, ",{}", s.values[t]);
            }
            csv.push('\n');
        }
        let file = format!("case_{i:04}.csv");
        let path = out.join(&file);
        if let Err(e) = std::fs::write(&path, csv) {
            eprintln!("error: cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
        let d = analyze(&c.input);
        let top: Vec<&str> = d
            .ranking
            .iter()
            .take(5)
            .map(|r| r.signal.as_str())
            .collect();
        labels.push(serde_json::json!({
            "file": file,
            "cause": c.cause,
            "changed_at": c.changed_at,
            "lag": c.lag,
            "seconds": spec.seconds,
            "ramp": spec.ramp,
            "inprocess_top5": top,
            "inprocess_degraded": !d.healthy,
        }));
    }
    let path = out.join("labels.json");
    let text = serde_json::to_string_pretty(&labels).expect("labels serialize");
    if let Err(e) = std::fs::write(&path, text) {
        eprintln!("error: cannot write {}: {e}", path.display());
        std::process::exit(1);
    }
    println!("{cases} cases (seed {seed}) written to {}", out.display());
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<(PathBuf, u64, u64), String> {
    let number = |v: Option<String>, what: &str| -> Result<u64, String> {
        let v = v.ok_or_else(|| format!("{what} needs a value"))?;
        v.parse()
            .map_err(|_| format!("{what}: not a whole number: {v:?}"))
    };
    let (mut out, mut cases, mut seed) = (None, 100, DEFAULT_SEED);
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out = Some(PathBuf::from(args.next().ok_or("--out needs a value")?)),
            "--cases" => cases = number(args.next(), "--cases")?,
            "--seed" => seed = number(args.next(), "--seed")?,
            _ => return Err(format!("unexpected argument {a:?}")),
        }
    }
    if cases == 0 {
        return Err("--cases must be at least 1".into());
    }
    Ok((out.ok_or("--out DIR is required")?, cases, seed))
}
