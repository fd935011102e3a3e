//! `[observe]`: scrape targets, Prometheus and the AWS sections.

use std::time::Duration;

use super::*;

#[test]
fn observe_table_compiles() {
    let s = parse(
        r#"name = "x"
base_url = "http://h"
[observe]
scrape = ["stack", "http://127.0.0.1:9100/metrics"]
scrape_interval = "500ms"
[observe.prometheus]
url = "http://prom:9090/"
queries = { cpu = "rate(process_cpu_seconds_total[10s])", wait = "x" }
[[journey]]
name = "j"
  [[journey.step]]
  path = "/"
"#,
    )
    .unwrap();
    assert_eq!(
        s.observe.scrape,
        vec![
            ScrapeTarget::Stack,
            ScrapeTarget::Url("http://127.0.0.1:9100/metrics".into())
        ]
    );
    assert_eq!(s.observe.scrape_interval, Duration::from_millis(500));
    let p = s.observe.prometheus.unwrap();
    assert_eq!(p.url, "http://prom:9090");
    assert_eq!(p.step, Duration::from_secs(1));
    assert_eq!(
        p.queries,
        vec![
            (
                "cpu".to_string(),
                "rate(process_cpu_seconds_total[10s])".to_string()
            ),
            ("wait".to_string(), "x".to_string())
        ]
    );
    let plain = parse("name = \"x\"\nbase_url = \"http://h\"\n[[journey]]\nname = \"j\"\n  [[journey.step]]\n  path = \"/\"\n").unwrap();
    assert!(plain.observe.is_empty());
}

#[test]
fn observe_mistakes_are_reported_with_positions() {
    let base = "name = \"x\"\nbase_url = \"http://h\"\n[[journey]]\nname = \"j\"\n  [[journey.step]]\n  path = \"/\"\n";
    let e = errors(&format!(
        "{base}[observe]\nscrape = [\"stak\", 3]\nscrap_interval = \"1s\"\n[observe.prometheus]\nstep = \"0s\"\nqueries = {{}}\n"
    ));
    assert_eq!(
        e,
        vec![
            "s.toml:8:11: \"scrape\" entry \"stak\": URL must start with http:// or https:// (or \"stack\")".to_string(),
            "s.toml:8:19: \"scrape\" must be a string, found integer 3".to_string(),
            "s.toml:9:1: unknown key \"scrap_interval\" in [observe]; expected one of: scrape, scrape_interval, settle, source_timeout, prometheus, cloudwatch, logs, scaling (did you mean \"scrape_interval\"?)".to_string(),
            "s.toml:10:1: [observe.prometheus] needs url = \"http://host:9090\"".to_string(),
            "s.toml:11:8: \"step\" must be longer than zero, found \"0s\"".to_string(),
            "s.toml:12:11: \"queries\" needs at least one name = \"promql\"".to_string(),
        ]
    );
    let e = one_error(&format!("{base}[observe]\nscrape = \"stack\"\n"));
    assert!(
        e.starts_with("s.toml:8:10: \"scrape\" must be an array"),
        "{e}"
    );
}

const OBSERVE_BASE: &str =
    "name = \"x\"\nbase_url = \"http://h\"\n[[journey]]\nname = \"j\"\n  [[journey.step]]\n  path = \"/\"\n";

#[test]
fn aws_sections_compile() {
    let s = parse(&format!(
        r#"{OBSERVE_BASE}[observe]
settle = "90s"
[observe.cloudwatch]
region = "eu-west-1"
endpoint_url = "http://127.0.0.1:5055"
period = "1s"
metrics = [{{ namespace = "PeakloadStack", metric = "DbPoolWaitTime", stat = "p99",
             dimensions = {{ Service = "api" }}, unit = "Seconds" }}]
presets = [{{ kind = "sqs_queue", queue = "emails" }}]
[observe.logs]
log_groups = ["/ecs/api"]
patterns = ["ERROR", {{ name = "timeouts", filter = "?timeout" }}]
interval = 10
[observe.scaling]
ecs = [{{ cluster = "shop", service = "api" }}]
lookback = "15m"
"#
    ))
    .unwrap();
    let o = &s.observe;
    assert_eq!(o.settle, Duration::from_secs(90));
    assert!(o.reads_aws() && !o.is_empty());
    let cw = o.cloudwatch.as_ref().unwrap();
    assert_eq!(cw.period, Some(1));
    assert_eq!(cw.region.as_deref(), Some("eu-west-1"));
    let names: Vec<String> = cw.queries().iter().map(|q| q.series_name()).collect();
    assert!(names.contains(&"PeakloadStack/DbPoolWaitTime:p99".to_string()));
    assert!(names.iter().any(|n| n.starts_with("AWS/SQS/")), "{names:?}");
    let logs = o.logs.as_ref().unwrap();
    assert_eq!(logs.interval, Some(10));
    assert_eq!(logs.patterns().len(), 2);
    let scaling = o.scaling.as_ref().unwrap();
    assert_eq!(scaling.lookback(), Duration::from_secs(900));
    assert_eq!(scaling.ecs[0].resource_id(), "service/shop/api");
}

#[test]
fn aws_section_mistakes_say_where() {
    let e = errors(&format!(
        "{OBSERVE_BASE}[observe.cloudwatch]\nperiod = \"45s\"\nregoin = \"x\"\nmetrics = [\n  {{ namespace = \"N\", metric = \"M\" }},\n  {{ namespace = \"N\", metrc = \"M\" }},\n]\n[observe.logs]\nlog_groups = []\n[observe.scaling]\necs = [{{ cluster = \"c\" }}]\n"
    ));
    assert_eq!(
        e,
        vec![
            "s.toml:9:1: unknown key \"regoin\" in [observe.cloudwatch]; expected one of: region, endpoint_url, period, metrics, presets (did you mean \"region\"?)",
            "s.toml:12:22: [observe.cloudwatch] metrics[1].metrc: unknown field `metrc`, expected one of `namespace`, `metric`, `dimensions`, `stat`, `unit`",
            "s.toml:15:14: [observe.logs] log_groups must name at least one log group",
            "s.toml:17:8: [observe.scaling] ecs[0]: missing field `service`",
        ]
    );
    // What CloudWatch would refuse, once the shape is right.
    let e = one_error(&format!(
        "{OBSERVE_BASE}[observe.cloudwatch]\nperiod = \"45s\"\n"
    ));
    assert!(
        e.starts_with(
            "s.toml:8:10: [observe.cloudwatch] period = 45: CloudWatch accepts 1, 5, 10, 30"
        ),
        "at the value: {e}"
    );
    let e = one_error(&format!(
        "{OBSERVE_BASE}[observe.cloudwatch]\nmetrics = [{{ namespace = \"N\", metric = \"M\", stat = \"p999x\" }}]\n"
    ));
    assert!(
        e.starts_with(
            "s.toml:8:52: [observe.cloudwatch] metrics[0].stat: unknown statistic \"p999x\""
        ),
        "at the value: {e}"
    );

    let e = one_error(&format!(
        "{OBSERVE_BASE}[observe.cloudwatch]\nmetrics = [\n  {{ namespace = \"N\", metric = \"M\" }},\n  {{ namespace = \"N\", metrc = \"M\" }},\n]\n"
    ));
    assert!(
        e.starts_with("s.toml:10:22: [observe.cloudwatch] metrics[1].metrc"),
        "{e}"
    );
    let e = one_error(&format!(
        "{OBSERVE_BASE}[observe.cloudwatch]\npresets = [{{ kind = \"ecs\", cluster = \"c\" }}]\n"
    ));
    assert!(
        e.starts_with("s.toml:8:") && e.contains("ecs_service"),
        "names the kinds it knows: {e}"
    );
    let e = one_error(&format!(
        "{OBSERVE_BASE}[observe.cloudwatch]\npresets = [{{ kind = \"ecs_servic\", cluster = \"c\", service = \"s\" }}]\n"
    ));
    assert!(
        e.starts_with("s.toml:8:21: [observe.cloudwatch] presets[0].kind: unknown variant")
            && e.ends_with("(did you mean \"ecs_service\"?)"),
        "at the value, with a suggestion: {e}"
    );
    let e = one_error(&format!(
        "{OBSERVE_BASE}[observe.logs]\nlog_groups = \"/x\"\n"
    ));
    assert_eq!(
        e,
        "s.toml:8:14: [observe.logs] log_groups: string \"/x\", expected an array such as [\"a\", \"b\"]"
    );
    let e = one_error(&format!(
        "{OBSERVE_BASE}[observe.cloudwatch]\nperiod = \"1500ms\"\n"
    ));
    assert!(
        e.starts_with("s.toml:8:10:") && e.contains("whole seconds"),
        "{e}"
    );
    // A period's mistakes suggest periods, not "250ms" or "1.5s" (which it refuses).
    for bad in ["-1s", "5", "1.5s", "soon"] {
        let e = one_error(&format!(
            "{OBSERVE_BASE}[observe.cloudwatch]\nperiod = \"{bad}\"\n"
        ));
        assert!(
            e.starts_with("s.toml:8:10:")
                && e.contains("write \"1s\", \"5s\", \"10s\", \"30s\" or whole minutes")
                && !e.contains("250ms")
                && !e.contains("1.5s\",")
                && !e.contains("\"5ms\""),
            "{bad}: {e}"
        );
    }
    let e = one_error(&format!(
        "{OBSERVE_BASE}[observe.logs]\nlog_groups = [\"/x\"]\ninterval = \"-5s\"\n"
    ));
    assert!(
        e.contains("\"interval\"")
            && e.contains("whole seconds, such as \"10s\"")
            && !e.contains("250ms"),
        "{e}"
    );
    // Said outright, the default.
    let s = parse(&format!(
        "{OBSERVE_BASE}[observe.cloudwatch]\nperiod = \"auto\"\n"
    ))
    .unwrap();
    assert_eq!(s.observe.cloudwatch.unwrap().period, None);
}

/// The Terraform deployment prints an `[observe]` block for peakload
/// (`terraform output -raw peakload_scenario_observe`): rendered with sample values, it must
/// compile.
#[test]
fn the_terraform_observe_output_compiles() {
    let tf = include_str!("../../../target-stack/deploy/terraform/outputs.tf");
    let start = tf
        .find("output \"peakload_scenario_observe\"")
        .expect("the output exists");
    let body = &tf[start..];
    let from = body.find("<<-EOT\n").unwrap() + "<<-EOT\n".len();
    let to = body.find("\n  EOT").unwrap();
    let mut rendered = String::new();
    let mut in_loop = false;
    let mut loop_body = String::new();
    for line in body[from..to].lines() {
        let line = line.strip_prefix("    ").unwrap_or(line);
        let trimmed = line.trim();
        if trimmed.starts_with("%{~for") {
            in_loop = true;
            continue;
        }
        if trimmed.starts_with("%{~endfor") {
            for table in ["shop-carts", "shop-sessions"] {
                rendered.push_str(&loop_body.replace("${t}", table));
            }
            in_loop = false;
            continue;
        }
        if trimmed.starts_with("%{~if") || trimmed.starts_with("%{~endif") {
            continue;
        }
        if in_loop {
            loop_body.push_str(line);
            loop_body.push('\n');
        } else {
            rendered.push_str(line);
            rendered.push('\n');
        }
    }
    let interpolation = regex::Regex::new(r"\$\{[^}]+\}").unwrap();
    let rendered = interpolation.replace_all(&rendered, "shop-x").into_owned();
    let s = parse(&format!("{OBSERVE_BASE}{rendered}"))
        .unwrap_or_else(|e| panic!("{e}\n---\n{rendered}"));
    let o = s.observe;
    assert_eq!(o.settle, Duration::from_secs(120));
    let cw = o.cloudwatch.unwrap();
    assert_eq!(cw.period, None, "the finest each metric has");
    assert!(cw.presets.len() >= 8, "{:?}", cw.presets);
    assert_eq!(cw.metrics.len(), 2);
    assert_eq!(o.logs.unwrap().log_groups.len(), 2);
    assert_eq!(o.scaling.unwrap().ecs.len(), 2);
}
