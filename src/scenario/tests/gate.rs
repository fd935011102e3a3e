//! `[gate]`: the regression gate's policy per metric, and its mistakes with their places.

use super::*;

const BASE: &str = "name = \"g\"\nbase_url = \"http://h\"\n[[journey]]\nname = \"j\"\n  [[journey.step]]\n  path = \"/\"\n";

#[test]
fn gate_rules_are_read_every_metric_first() {
    let s = parse(&format!(
        "{BASE}[gate]\nrps = \"off\"\np99 = {{ min_effect = \"15%\", confirm_runs = 3, alpha = 0.0005 }}\n\"*\" = {{ min_history = 10 }}\np50 = {{ min_absolute = 2, gated = true, min_effect = 0.08 }}\nerror_rate = false\n"
    ))
    .unwrap();
    let metrics: Vec<&str> = s.gate.iter().map(|r| r.metric.as_str()).collect();
    assert_eq!(metrics, ["*", "rps", "p99", "p50", "error_rate"]);
    assert_eq!(s.gate[0].min_history, Some(10));
    assert_eq!(s.gate[1].gated, Some(false));
    let p99 = &s.gate[2];
    assert!((p99.min_effect.unwrap() - 0.15).abs() < 1e-12);
    assert_eq!(p99.confirm_runs, Some(3));
    assert_eq!(p99.alpha, Some(0.0005));
    assert_eq!(p99.gated, None);
    let p50 = &s.gate[3];
    assert_eq!(
        (p50.min_absolute, p50.gated, p50.min_effect),
        (Some(2.0), Some(true), Some(0.08))
    );
    assert_eq!(s.gate[4].gated, Some(false));
    // No [gate]: the defaults.
    assert!(parse(BASE).unwrap().gate.is_empty());
}

#[test]
fn gate_mistakes_are_located() {
    let e = errors(&format!(
        "{BASE}[gate]\nlatency = \"off\"\nrps = \"of\"\np99 = {{ min_efect = \"15%\", alpha = 1.5 }}\np95 = {{ confirm_runs = 4, min_history = 2, min_effect = \"lots\" }}\nmax = {{ gated = \"no\", min_absolute = -1 }}\n"
    ));
    assert_eq!(
        e,
        vec![
            "s.toml:8:1: \"latency\" in [gate] is not a gated metric; expected p50, p90, p95, p99 (any pNN from p0 to p100), mean, median, min, max, error_rate, rps, checks, or \"*\" for every metric",
            "s.toml:9:7: \"rps\" must be \"off\", \"on\" or a table such as { min_effect = \"15%\", confirm_runs = 2 }, found string \"of\"",
            "s.toml:10:9: unknown key \"min_efect\" in [gate] p99; expected one of: gated, alpha, min_effect, min_absolute, min_history, confirm_runs (did you mean \"min_effect\"?)",
            "s.toml:10:36: \"alpha\" must be between 0 and 1 (exclusive), e.g. 0.001, found 1.5",
            "s.toml:11:24: \"confirm_runs\" must be an integer from 1 to 3, found 4",
            "s.toml:11:41: \"min_history\" must be an integer from 3 to 59, found 2",
            "s.toml:11:57: \"min_effect\" must be a number ≥ 0 or a percentage such as \"15%\", found string \"lots\"",
            "s.toml:12:17: \"gated\" must be true or false, found string \"no\"",
            "s.toml:12:38: \"min_absolute\" must be a number ≥ 0, found -1",
        ]
    );
    let e = one_error(&format!("gate = 3\n{BASE}"));
    assert!(
        e.starts_with("s.toml:1:8: \"gate\" must be a table of metrics"),
        "{e}"
    );
}
