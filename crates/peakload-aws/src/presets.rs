//! Presets: one line of configuration that expands to the metrics worth reading for a kind
//! of AWS resource, with the statistic that makes each meaningful (sums for counts, p99 and
//! average for latency, maximum for backlogs) and its unit.
//!
//! | kind | namespace | metrics (stat) |
//! |---|---|---|
//! | `ecs_service` | `AWS/ECS` | CPUUtilization (Average, Maximum), MemoryUtilization (Average, Maximum) |
//! |  | `ECS/ContainerInsights` | RunningTaskCount (Average), DesiredTaskCount (Average) |
//! | `alb_target_group` | `AWS/ApplicationELB` | TargetResponseTime (p99, Average), RequestCount (Sum), HTTPCode_Target_5XX_Count (Sum), HealthyHostCount (Minimum), UnHealthyHostCount (Maximum) |
//! | `sqs_queue` | `AWS/SQS` | ApproximateNumberOfMessagesVisible (Maximum), ApproximateAgeOfOldestMessage (Maximum), NumberOfMessagesSent (Sum), NumberOfMessagesDeleted (Sum) |
//! | `rds_instance` | `AWS/RDS` | CPUUtilization (Average), DatabaseConnections (Maximum), ReadLatency (Average), WriteLatency (Average), FreeableMemory (Minimum) |
//! | `dynamodb_table` | `AWS/DynamoDB` | ConsumedReadCapacityUnits (Sum), ConsumedWriteCapacityUnits (Sum), ReadThrottleEvents (Sum), WriteThrottleEvents (Sum); per operation: ThrottledRequests (Sum), SuccessfulRequestLatency (Average) |
//! | `lambda_function` | `AWS/Lambda` | Duration (p99), Errors (Sum), Throttles (Sum), ConcurrentExecutions (Maximum), Invocations (Sum) |
//!
//! DesiredTaskCount next to RunningTaskCount is what shows a scaling lag (desired rose,
//! running followed late).

use serde::{Deserialize, Serialize};

use crate::config::MetricQuery;

/// A resource whose standard metrics to read. In TOML: `{ kind = "ecs_service", … }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Preset {
    EcsService {
        cluster: String,
        service: String,
    },
    /// Dimension values as CloudWatch spells them: `app/<name>/<id>` and
    /// `targetgroup/<name>/<id>` (the ends of the ARNs).
    AlbTargetGroup {
        load_balancer: String,
        target_group: String,
    },
    SqsQueue {
        queue: String,
    },
    RdsInstance {
        instance: String,
    },
    DynamodbTable {
        table: String,
        /// Operations for the per-operation metrics; default GetItem, PutItem, UpdateItem,
        /// Query.
        #[serde(default)]
        operations: Option<Vec<String>>,
    },
    LambdaFunction {
        function: String,
    },
}

const DYNAMODB_OPERATIONS: [&str; 4] = ["GetItem", "PutItem", "UpdateItem", "Query"];

impl Preset {
    /// The preset's kind, as written in TOML.
    pub fn kind(&self) -> &'static str {
        match self {
            Preset::EcsService { .. } => "ecs_service",
            Preset::AlbTargetGroup { .. } => "alb_target_group",
            Preset::SqsQueue { .. } => "sqs_queue",
            Preset::RdsInstance { .. } => "rds_instance",
            Preset::DynamodbTable { .. } => "dynamodb_table",
            Preset::LambdaFunction { .. } => "lambda_function",
        }
    }

    /// The queries this preset stands for.
    pub fn expand(&self) -> Vec<MetricQuery> {
        let q = MetricQuery::new;
        match self {
            Preset::EcsService { cluster, service } => [
                q("AWS/ECS", "CPUUtilization", "Average", "Percent"),
                q("AWS/ECS", "CPUUtilization", "Maximum", "Percent"),
                q("AWS/ECS", "MemoryUtilization", "Average", "Percent"),
                q("AWS/ECS", "MemoryUtilization", "Maximum", "Percent"),
                q(
                    "ECS/ContainerInsights",
                    "RunningTaskCount",
                    "Average",
                    "Count",
                ),
                q(
                    "ECS/ContainerInsights",
                    "DesiredTaskCount",
                    "Average",
                    "Count",
                ),
            ]
            .map(|m| {
                m.dimension("ClusterName", cluster)
                    .dimension("ServiceName", service)
            })
            .into(),
            Preset::AlbTargetGroup {
                load_balancer,
                target_group,
            } => [
                q("AWS/ApplicationELB", "TargetResponseTime", "p99", "Seconds"),
                q(
                    "AWS/ApplicationELB",
                    "TargetResponseTime",
                    "Average",
                    "Seconds",
                ),
                q("AWS/ApplicationELB", "RequestCount", "Sum", "Count"),
                q(
                    "AWS/ApplicationELB",
                    "HTTPCode_Target_5XX_Count",
                    "Sum",
                    "Count",
                ),
                q("AWS/ApplicationELB", "HealthyHostCount", "Minimum", "Count"),
                q(
                    "AWS/ApplicationELB",
                    "UnHealthyHostCount",
                    "Maximum",
                    "Count",
                ),
            ]
            .map(|m| {
                m.dimension("LoadBalancer", load_balancer)
                    .dimension("TargetGroup", target_group)
            })
            .into(),
            Preset::SqsQueue { queue } => [
                q(
                    "AWS/SQS",
                    "ApproximateNumberOfMessagesVisible",
                    "Maximum",
                    "Count",
                ),
                q(
                    "AWS/SQS",
                    "ApproximateAgeOfOldestMessage",
                    "Maximum",
                    "Seconds",
                ),
                q("AWS/SQS", "NumberOfMessagesSent", "Sum", "Count"),
                q("AWS/SQS", "NumberOfMessagesDeleted", "Sum", "Count"),
            ]
            .map(|m| m.dimension("QueueName", queue))
            .into(),
            Preset::RdsInstance { instance } => [
                q("AWS/RDS", "CPUUtilization", "Average", "Percent"),
                q("AWS/RDS", "DatabaseConnections", "Maximum", "Count"),
                q("AWS/RDS", "ReadLatency", "Average", "Seconds"),
                q("AWS/RDS", "WriteLatency", "Average", "Seconds"),
                q("AWS/RDS", "FreeableMemory", "Minimum", "Bytes"),
            ]
            .map(|m| m.dimension("DBInstanceIdentifier", instance))
            .into(),
            Preset::DynamodbTable { table, operations } => {
                let mut out: Vec<MetricQuery> = [
                    q("AWS/DynamoDB", "ConsumedReadCapacityUnits", "Sum", "Count"),
                    q("AWS/DynamoDB", "ConsumedWriteCapacityUnits", "Sum", "Count"),
                    q("AWS/DynamoDB", "ReadThrottleEvents", "Sum", "Count"),
                    q("AWS/DynamoDB", "WriteThrottleEvents", "Sum", "Count"),
                ]
                .map(|m| m.dimension("TableName", table))
                .into();
                let default_ops = DYNAMODB_OPERATIONS.map(str::to_owned);
                let ops = operations.as_deref().unwrap_or(&default_ops);
                for op in ops {
                    out.push(
                        q("AWS/DynamoDB", "ThrottledRequests", "Sum", "Count")
                            .dimension("TableName", table)
                            .dimension("Operation", op),
                    );
                }
                for op in ops {
                    out.push(
                        q(
                            "AWS/DynamoDB",
                            "SuccessfulRequestLatency",
                            "Average",
                            "Milliseconds",
                        )
                        .dimension("TableName", table)
                        .dimension("Operation", op),
                    );
                }
                out
            }
            Preset::LambdaFunction { function } => [
                q("AWS/Lambda", "Duration", "p99", "Milliseconds"),
                q("AWS/Lambda", "Errors", "Sum", "Count"),
                q("AWS/Lambda", "Throttles", "Sum", "Count"),
                q("AWS/Lambda", "ConcurrentExecutions", "Maximum", "Count"),
                q("AWS/Lambda", "Invocations", "Sum", "Count"),
            ]
            .map(|m| m.dimension("FunctionName", function))
            .into(),
        }
    }
}
