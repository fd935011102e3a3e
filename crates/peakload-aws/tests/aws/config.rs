//! The proposed `[observe.*]` TOML shape, and what presets expand to.

use std::collections::BTreeMap;

use peakload_aws::{
    CloudWatchConfig, EcsService, LogPattern, LogsConfig, MetricQuery, Preset, ScalingConfig,
};
use serde::Deserialize;

/// How the core's scenario parser would embed the sections.
#[derive(Deserialize)]
struct Scenario {
    observe: Observe,
}

#[derive(Deserialize)]
struct Observe {
    cloudwatch: CloudWatchConfig,
    logs: LogsConfig,
    scaling: ScalingConfig,
}

const SCENARIO: &str = r#"
[observe.cloudwatch]
region = "eu-west-1"
endpoint_url = "http://127.0.0.1:5055"
period = 10
metrics = [
  { namespace = "PeakloadStack", metric = "RequestCount", stat = "Sum",
    dimensions = { Service = "peakload-stack-api" }, unit = "Count" },
  { namespace = "PeakloadStack", metric = "Latency", stat = "p99" },
]
presets = [
  { kind = "ecs_service", cluster = "peakload-stack", service = "peakload-stack-api" },
  { kind = "alb_target_group", load_balancer = "app/peakload-stack/50dc6c495c0c9188",
    target_group = "targetgroup/peakload-stack-api/73e2d6bc24d8a067" },
  { kind = "sqs_queue", queue = "peakload-stack-notifications" },
  { kind = "rds_instance", instance = "peakload-stack-mysql" },
  { kind = "dynamodb_table", table = "peakload-stack-carts", operations = ["GetItem"] },
  { kind = "lambda_function", function = "resize-images" },
]

[observe.logs]
log_groups = ["/peakload/peakload-stack/api"]
patterns = ["ERROR", { name = "timeouts", filter = "?timeout ?\"timed out\"" }]
interval = 5

[observe.scaling]
ecs = [{ cluster = "peakload-stack", service = "peakload-stack-api" }]
asg = ["peakload-stack-nodes"]
"#;

#[test]
fn the_documented_toml_shape_parses() {
    let s: Scenario = toml::from_str(SCENARIO).expect("parses");
    let cw = &s.observe.cloudwatch;
    cw.validate().unwrap();
    assert_eq!(cw.region.as_deref(), Some("eu-west-1"));
    assert_eq!(cw.period, Some(10));
    assert_eq!(cw.metrics[0].dimensions["Service"], "peakload-stack-api");
    assert_eq!(cw.metrics[1].stat, "p99");
    assert_eq!(cw.presets.len(), 6);
    assert_eq!(
        cw.presets[0],
        Preset::EcsService {
            cluster: "peakload-stack".into(),
            service: "peakload-stack-api".into()
        }
    );
    // 2 explicit + 6 ECS + 6 ALB + 4 SQS + 5 RDS + (4 + 2×1) DynamoDB + 5 Lambda
    assert_eq!(cw.queries().len(), 2 + 6 + 6 + 4 + 5 + 6 + 5);

    let logs = &s.observe.logs;
    logs.validate().unwrap();
    assert_eq!(
        logs.patterns(),
        vec![
            LogPattern::Plain("ERROR".into()),
            LogPattern::named("timeouts", "?timeout ?\"timed out\"")
        ]
    );
    assert_eq!(logs.samples, 3);
    assert_eq!(logs.interval, Some(5));

    let scaling = &s.observe.scaling;
    assert_eq!(
        scaling.ecs,
        vec![EcsService {
            cluster: "peakload-stack".into(),
            service: "peakload-stack-api".into()
        }]
    );
    assert_eq!(
        scaling.ecs[0].resource_id(),
        "service/peakload-stack/peakload-stack-api"
    );
    assert_eq!(scaling.asg, vec!["peakload-stack-nodes".to_owned()]);
    assert_eq!(scaling.lookback().as_secs(), 900);
}

#[test]
fn typos_and_impossible_periods_are_errors() {
    let typo = toml::from_str::<CloudWatchConfig>("perod = 60");
    assert!(typo.unwrap_err().to_string().contains("perod"));
    let bad_kind = toml::from_str::<CloudWatchConfig>(
        "presets = [{ kind = \"ecs\", cluster = \"c\", service = \"s\" }]",
    );
    assert!(bad_kind.is_err());
    let missing = toml::from_str::<CloudWatchConfig>(
        "presets = [{ kind = \"ecs_service\", cluster = \"c\" }]",
    );
    assert!(missing.unwrap_err().to_string().contains("service"));
    let cw: CloudWatchConfig =
        toml::from_str("period = 45\nmetrics = [{ namespace = \"\", metric = \"X\" }]").unwrap();
    let err = cw.validate().unwrap_err().to_string();
    assert!(
        err.contains("period = 45") && err.contains("metrics[0]"),
        "{err}"
    );
    let defaults: CloudWatchConfig = toml::from_str("").unwrap();
    assert_eq!(defaults.period, None, "chosen per run and metric");
    assert!(LogsConfig::new(vec![], vec![]).validate().is_err());
    assert_eq!(
        LogsConfig::new(vec!["g".into()], vec![])
            .patterns()
            .iter()
            .map(LogPattern::name)
            .collect::<Vec<_>>(),
        ["errors", "timeouts", "oom"]
    );
}

/// (namespace, metric, stat, unit) of an expanded query.
type Row = (String, String, String, String);

/// Each expanded query's [`Row`], and the dimensions of each.
fn shape(p: &Preset) -> (Vec<Row>, Vec<BTreeMap<String, String>>) {
    let queries: Vec<MetricQuery> = p.expand();
    (
        queries
            .iter()
            .map(|q| {
                (
                    q.namespace.clone(),
                    q.metric.clone(),
                    q.stat.clone(),
                    q.unit.clone(),
                )
            })
            .collect(),
        queries.iter().map(|q| q.dimensions.clone()).collect(),
    )
}

fn row(ns: &str, metric: &str, stat: &str, unit: &str) -> Row {
    (ns.into(), metric.into(), stat.into(), unit.into())
}

fn dims(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn presets_expand_to_the_documented_metrics() {
    let (q, d) = shape(&Preset::EcsService {
        cluster: "c".into(),
        service: "s".into(),
    });
    assert_eq!(
        q,
        [
            row("AWS/ECS", "CPUUtilization", "Average", "Percent"),
            row("AWS/ECS", "CPUUtilization", "Maximum", "Percent"),
            row("AWS/ECS", "MemoryUtilization", "Average", "Percent"),
            row("AWS/ECS", "MemoryUtilization", "Maximum", "Percent"),
            row(
                "ECS/ContainerInsights",
                "RunningTaskCount",
                "Average",
                "Count"
            ),
            row(
                "ECS/ContainerInsights",
                "DesiredTaskCount",
                "Average",
                "Count"
            ),
        ]
    );
    assert!(d
        .iter()
        .all(|d| *d == dims(&[("ClusterName", "c"), ("ServiceName", "s")])));

    let (q, d) = shape(&Preset::AlbTargetGroup {
        load_balancer: "app/lb/1".into(),
        target_group: "targetgroup/tg/2".into(),
    });
    assert_eq!(
        q,
        [
            row("AWS/ApplicationELB", "TargetResponseTime", "p99", "Seconds"),
            row(
                "AWS/ApplicationELB",
                "TargetResponseTime",
                "Average",
                "Seconds"
            ),
            row("AWS/ApplicationELB", "RequestCount", "Sum", "Count"),
            row(
                "AWS/ApplicationELB",
                "HTTPCode_Target_5XX_Count",
                "Sum",
                "Count"
            ),
            row("AWS/ApplicationELB", "HealthyHostCount", "Minimum", "Count"),
            row(
                "AWS/ApplicationELB",
                "UnHealthyHostCount",
                "Maximum",
                "Count"
            ),
        ]
    );
    assert!(d.iter().all(|d| *d
        == dims(&[
            ("LoadBalancer", "app/lb/1"),
            ("TargetGroup", "targetgroup/tg/2")
        ])));

    let (q, d) = shape(&Preset::SqsQueue { queue: "q".into() });
    assert_eq!(
        q,
        [
            row(
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                "Maximum",
                "Count"
            ),
            row(
                "AWS/SQS",
                "ApproximateAgeOfOldestMessage",
                "Maximum",
                "Seconds"
            ),
            row("AWS/SQS", "NumberOfMessagesSent", "Sum", "Count"),
            row("AWS/SQS", "NumberOfMessagesDeleted", "Sum", "Count"),
        ]
    );
    assert!(d.iter().all(|d| *d == dims(&[("QueueName", "q")])));

    let (q, d) = shape(&Preset::RdsInstance {
        instance: "db".into(),
    });
    assert_eq!(
        q,
        [
            row("AWS/RDS", "CPUUtilization", "Average", "Percent"),
            row("AWS/RDS", "DatabaseConnections", "Maximum", "Count"),
            row("AWS/RDS", "ReadLatency", "Average", "Seconds"),
            row("AWS/RDS", "WriteLatency", "Average", "Seconds"),
            row("AWS/RDS", "FreeableMemory", "Minimum", "Bytes"),
        ]
    );
    assert!(d
        .iter()
        .all(|d| *d == dims(&[("DBInstanceIdentifier", "db")])));

    let (q, d) = shape(&Preset::DynamodbTable {
        table: "t".into(),
        operations: None,
    });
    let mut expected = vec![
        row("AWS/DynamoDB", "ConsumedReadCapacityUnits", "Sum", "Count"),
        row("AWS/DynamoDB", "ConsumedWriteCapacityUnits", "Sum", "Count"),
        row("AWS/DynamoDB", "ReadThrottleEvents", "Sum", "Count"),
        row("AWS/DynamoDB", "WriteThrottleEvents", "Sum", "Count"),
    ];
    expected.extend((0..4).map(|_| row("AWS/DynamoDB", "ThrottledRequests", "Sum", "Count")));
    expected.extend((0..4).map(|_| {
        row(
            "AWS/DynamoDB",
            "SuccessfulRequestLatency",
            "Average",
            "Milliseconds",
        )
    }));
    assert_eq!(q, expected);
    assert!(d[..4].iter().all(|d| *d == dims(&[("TableName", "t")])));
    let ops: Vec<&str> = d[4..8].iter().map(|d| d["Operation"].as_str()).collect();
    assert_eq!(ops, ["GetItem", "PutItem", "UpdateItem", "Query"]);

    let (q, d) = shape(&Preset::LambdaFunction {
        function: "f".into(),
    });
    assert_eq!(
        q,
        [
            row("AWS/Lambda", "Duration", "p99", "Milliseconds"),
            row("AWS/Lambda", "Errors", "Sum", "Count"),
            row("AWS/Lambda", "Throttles", "Sum", "Count"),
            row("AWS/Lambda", "ConcurrentExecutions", "Maximum", "Count"),
            row("AWS/Lambda", "Invocations", "Sum", "Count"),
        ]
    );
    assert!(d.iter().all(|d| *d == dims(&[("FunctionName", "f")])));
}
