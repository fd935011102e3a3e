//! Threshold expressions resolved against the scenario's journeys and steps.

use super::*;

fn threshold_scenario() -> Scenario {
    parse(
        r#"name = "x"
base_url = "http://h"
[[journey]]
name = "shop"
  [[journey.step]]
  name = "login"
  path = "/l"
  [[journey.step]]
  name = "checkout"
  path = "/c"
[[journey]]
name = "admin"
  [[journey.step]]
  name = "login"
  path = "/l"
  [[journey.step]]
  name = "v1.2"
  path = "/v"
"#,
    )
    .unwrap()
}

#[test]
fn thresholds_resolve() {
    let s = threshold_scenario();
    let t =
        |e: &str| parse_threshold(e, &s).map(|t| (t.metric.scope, t.metric.stat, t.op, t.limit));
    let step = |journey, step| Scope::Step { journey, step };
    assert_eq!(
        t("checkout.p99 < 300ms"),
        Ok((step(0, 1), Stat::Percentile(99.0), CmpOp::Lt, 300.0))
    );
    assert_eq!(
        t("shop.login.p999<=1s"),
        Ok((step(0, 0), Stat::Percentile(99.9), CmpOp::Le, 1000.0))
    );
    assert_eq!(
        t("admin.login.p75 > 2"),
        Ok((step(1, 0), Stat::Percentile(75.0), CmpOp::Gt, 2.0))
    );
    assert_eq!(
        t("v1.2.p99.9 >= 500us"),
        Ok((step(1, 1), Stat::Percentile(99.9), CmpOp::Ge, 0.5))
    );
    assert_eq!(
        t("shop.max != 1.5s"),
        Ok((Scope::Journey(0), Stat::Max, CmpOp::Ne, 1500.0))
    );
    assert_eq!(
        t("shop.min == 0"),
        Ok((Scope::Journey(0), Stat::Min, CmpOp::Eq, 0.0))
    );
    assert_eq!(
        t("http.p50 < 1m"),
        Ok((Scope::Http, Stat::Percentile(50.0), CmpOp::Lt, 60_000.0))
    );
    assert_eq!(
        t("http.error_rate < 1%"),
        Ok((Scope::Http, Stat::ErrorRate, CmpOp::Lt, 0.01))
    );
    assert_eq!(
        t("http.error_rate < 0.05"),
        Ok((Scope::Http, Stat::ErrorRate, CmpOp::Lt, 0.05))
    );
    assert_eq!(
        t("http.rps > 200"),
        Ok((Scope::Http, Stat::Rps, CmpOp::Gt, 200.0))
    );
    assert_eq!(
        t("checkout.requests >= 1_000"),
        Ok((step(0, 1), Stat::Requests, CmpOp::Ge, 1000.0))
    );
    assert_eq!(
        t("checkout.errors == 0"),
        Ok((step(0, 1), Stat::Errors, CmpOp::Eq, 0.0))
    );
    assert_eq!(
        t("dropped_iterations == 0"),
        Ok((Scope::Run, Stat::DroppedIterations, CmpOp::Eq, 0.0))
    );
    assert_eq!(
        t("iterations > 10"),
        Ok((Scope::Run, Stat::Iterations, CmpOp::Gt, 10.0))
    );
    assert_eq!(
        t("feeder_exhausted == 0"),
        Ok((Scope::Run, Stat::FeederExhausted, CmpOp::Eq, 0.0))
    );
    assert_eq!(
        t("checks.failed < 5"),
        Ok((Scope::Run, Stat::ChecksFailed, CmpOp::Lt, 5.0))
    );
    assert_eq!(
        t("checks.rate > 99.5%"),
        Ok((Scope::Run, Stat::ChecksPassRate, CmpOp::Gt, 0.995))
    );
    assert_eq!(t("http.p100 <= 5s").unwrap().1, Stat::Percentile(100.0));
    assert_eq!(t("http.p9999 <= 5s").unwrap().1, Stat::Percentile(99.99));
    assert_eq!(
        parse_threshold("  http.rps > 1 ", &s).unwrap().expr,
        "http.rps > 1"
    );
}

#[test]
fn threshold_errors() {
    let s = threshold_scenario();
    let e = |x: &str| parse_threshold(x, &s).unwrap_err();
    assert_eq!(
        e("login.p99 < 1s"),
        "metric \"login.p99\" is ambiguous; write one of: shop.login.p99, admin.login.p99"
    );
    assert_eq!(
        e("checkout.p101 < 1s"),
        "unknown statistic \"p101\" in metric \"checkout.p101\"; expected one of: p50, p90, p95, p99, p999, p<N> (e.g. p75, p99.9), mean, min, max, error_rate, rps, requests, errors"
    );
    assert_eq!(
        e("shop.average < 1s"),
        "unknown statistic \"average\" in metric \"shop.average\"; expected one of: p50, p90, p95, p99, p999, p<N> (e.g. p75, p99.9), mean, min, max, error_rate, rps, requests, errors"
    );
    assert_eq!(
        e("dropped < 1"),
        "unknown metric \"dropped\"; expected http.<stat>, <journey>.<stat>, <step>.<stat>, <journey>.<step>.<stat>, dropped_iterations, iterations, feeder_exhausted, checks.failed or checks.rate; journeys: shop, admin; steps: login, checkout, v1.2"
    );
    assert!(e("htp.p99 < 1s").ends_with("(did you mean \"http.p99\"?)"));
    assert!(e("iteration > 1").ends_with("(did you mean \"iterations\"?)"));
    assert!(
        e("http.p99 300ms").starts_with("threshold \"http.p99 300ms\" has no comparison operator")
    );
    assert!(e("http.p99 <").starts_with("threshold \"http.p99 <\" is incomplete"));
    assert!(e("http.p99 = 3").starts_with("threshold \"http.p99 = 3\" has an invalid operator"));
    assert!(e("http.error_rate < 5").starts_with("invalid rate \"5\" for http.error_rate"));
    assert!(e("http.error_rate < 150%").starts_with("invalid rate"));
    assert!(e("http.rps > 2k")
        .starts_with("invalid value \"2k\" for http.rps; expected a plain number"));
    assert!(e("http.p99 < -1ms").starts_with("invalid latency \"-1ms\""));
}
