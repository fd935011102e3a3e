//! Scaling activities from recorded API responses, through the real SDK clients.

use std::time::{Duration, UNIX_EPOCH};

use peakload_aws::{AwsSources, Connect, EcsService, RunWindow, ScalingConfig};

use crate::common::aws_env;
use crate::fixture_server::{self, ASG_NAME, DENIED_PREFIX, ECS_RESOURCE, WORKER_RESOURCE};

/// 2024-11-29T10:00:00Z to 10:10:00Z, the window the fixtures were written for.
fn window() -> RunWindow {
    let start = UNIX_EPOCH + Duration::from_secs(1_732_874_400);
    RunWindow::new(start, start + Duration::from_secs(600))
}

async fn sources(url: &str) -> AwsSources {
    aws_env();
    AwsSources::connect(&Connect {
        region: Some("eu-west-1".into()),
        endpoint_url: Some(url.to_owned()),
    })
    .await
    .unwrap()
}

fn api_service() -> EcsService {
    EcsService {
        cluster: "peakload-stack".into(),
        service: "peakload-stack-api".into(),
    }
}

#[tokio::test]
async fn ecs_activities_are_parsed_across_pages_and_limited_to_the_window() {
    let fixtures = fixture_server::start("").await;
    let sources = sources(&fixtures.url).await;
    let activities = sources
        .ecs_scaling_activities(&api_service(), &window(), Duration::from_secs(900))
        .await
        .unwrap();
    // Two pages read (the second through NextToken), the 08:00 activity left out.
    let requests = fixtures.seen.lock().unwrap().requests.clone();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let first: serde_json::Value = serde_json::from_str(&requests[0]).unwrap();
    assert_eq!(first["ServiceNamespace"], "ecs");
    assert_eq!(first["ResourceId"], ECS_RESOURCE);
    assert_eq!(first["ScalableDimension"], "ecs:service:DesiredCount");
    let second: serde_json::Value = serde_json::from_str(&requests[1]).unwrap();
    assert_eq!(second["NextToken"], "eyJwYWdlIjogMn0=");

    let summary: Vec<(&str, Option<u32>, &str)> = activities
        .iter()
        .map(|a| {
            (
                a.description.as_str(),
                a.desired_capacity,
                a.status.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("Setting desired count to 2.", Some(2), "Successful"),
            ("Setting desired count to 4.", Some(4), "Successful"),
            ("Setting desired count to 6.", Some(6), "InProgress"),
        ]
    );
    let six = &activities[2];
    assert_eq!(six.source, "application-autoscaling");
    assert_eq!(six.resource, ECS_RESOURCE);
    assert_eq!(six.activity_id, "4d759079-a31f-4d0c-8468-504c56e2eecf");
    assert!(six.cause.contains("AlarmHigh") && six.cause.contains("in state ALARM"));
    assert!(six.in_progress());
    assert!(six.end.is_none());
    assert!(!activities[1].in_progress());
}

#[tokio::test]
async fn the_timeline_places_activities_relative_to_the_run_start() {
    let fixtures = fixture_server::start("").await;
    let sources = sources(&fixtures.url).await;
    let scaling = ScalingConfig {
        ecs: vec![api_service()],
        asg: vec![ASG_NAME.into()],
        lookback: None,
    };
    let observed = sources
        .collect(None, None, Some(&scaling), &window())
        .await
        .unwrap();
    assert!(observed.errors.is_empty(), "{:?}", observed.errors);
    let timeline: Vec<(&str, f64, Option<f64>, &str, &str)> = observed
        .events
        .iter()
        .map(|e| {
            (
                e.source.as_str(),
                e.start,
                e.end,
                e.status.split(':').next().unwrap(),
                e.dimensions
                    .get("desired_capacity")
                    .map_or("", String::as_str),
            )
        })
        .collect();
    assert_eq!(
        timeline,
        [
            // EC2 Auto Scaling's second page: a scale-in before the run, a failed launch.
            ("autoscaling", -600.0, Some(-530.0), "Successful", "2"),
            (
                "application-autoscaling",
                -90.0,
                Some(-60.0),
                "Successful",
                "2"
            ),
            ("autoscaling", 72.25, Some(165.0), "Successful", "3"),
            (
                "application-autoscaling",
                120.0,
                Some(190.0),
                "Successful",
                "4"
            ),
            ("autoscaling", 210.0, Some(211.0), "Failed", "4"),
            ("application-autoscaling", 300.5, None, "InProgress", "6"),
            ("autoscaling", 420.541, None, "InProgress", "4"),
        ]
    );
    let failed = &observed.events[4];
    assert_eq!(
        failed.status,
        "Failed: We currently do not have sufficient m5.large capacity in the Availability Zone \
         you requested (eu-west-1a)."
    );
    let four = &observed.events[3];
    assert_eq!(four.name, "Setting desired count to 4.");
    assert_eq!(
        four.status,
        "Successful: Successfully set desired count to 4. Change successfully fulfilled by ecs."
    );
    assert_eq!(four.dimensions["resource"], ECS_RESOURCE);
    let launch = &observed.events[6];
    assert_eq!(
        launch.name,
        "Launching a new EC2 instance: i-0f1e2d3c4b5a69788"
    );
    assert_eq!(launch.dimensions["resource"], ASG_NAME);
    assert!(launch
        .cause
        .contains("changing the desired capacity from 3 to 4"));

    // Another group: an empty answer, no events, no error.
    let other = sources
        .asg_scaling_activities("someone-else", &window(), Duration::ZERO)
        .await
        .unwrap();
    assert!(other.is_empty());
    // A shorter lookback drops the activity before the run.
    let short = sources
        .ecs_scaling_activities(&api_service(), &window(), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(short.len(), 2);
}

#[tokio::test]
async fn failed_in_progress_overridden_and_pre_run_activities_across_three_pages() {
    let fixtures = fixture_server::start("").await;
    let sources = sources(&fixtures.url).await;
    let worker = EcsService {
        cluster: "peakload-stack".into(),
        service: "peakload-stack-worker".into(),
    };
    let activities = sources
        .ecs_scaling_activities(&worker, &window(), Duration::from_secs(900))
        .await
        .unwrap();
    // Three pages; the third reaches past the lookback, so its NextToken is not followed (the
    // fixture refuses a fourth request).
    let requests = fixtures.seen.lock().unwrap().requests.clone();
    let tokens: Vec<serde_json::Value> = requests
        .iter()
        .map(|r| serde_json::from_str::<serde_json::Value>(r).unwrap()["NextToken"].clone())
        .collect();
    assert_eq!(
        tokens,
        [
            serde_json::Value::Null,
            "d29ya2VyLTI=".into(),
            "d29ya2VyLTM=".into()
        ]
    );
    let w = window();
    /// Start and end on the run's clock, status, new capacity, whether still going.
    type Seen<'a> = (f64, Option<f64>, &'a str, Option<u32>, bool);
    let seen: Vec<Seen> = activities
        .iter()
        .map(|a| {
            (
                w.offset(a.start),
                a.end.map(|e| w.offset(e)),
                a.status.as_str(),
                a.desired_capacity,
                a.in_progress(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            // Before the run, within the 15-minute lookback; the 09:30 one is left out.
            (-600.0, Some(-540.0), "Successful", Some(3), false),
            (-120.0, Some(60.0), "Overridden", Some(4), false),
            (60.0, None, "InProgress", Some(6), true),
            (180.0, Some(181.0), "Failed", Some(8), false),
        ]
    );
    assert_eq!(
        activities[3].status_message.as_deref(),
        Some("Failed to set desired count to 8. Reason: the scalable target's MaxCapacity is 6.")
    );
    assert!(activities.iter().all(|a| a.resource == WORKER_RESOURCE));
}

#[tokio::test]
async fn a_failing_resource_is_named_and_the_others_are_read() {
    let fixtures = fixture_server::start("").await;
    let sources = sources(&fixtures.url).await;
    let denied = |name: &str| EcsService {
        cluster: DENIED_PREFIX
            .trim_start_matches("service/")
            .trim_end_matches('/')
            .into(),
        service: name.into(),
    };
    let scaling = ScalingConfig {
        ecs: vec![denied("api"), api_service(), denied("worker")],
        asg: vec![],
        lookback: None,
    };
    let observed = sources
        .collect(None, None, Some(&scaling), &window())
        .await
        .unwrap();
    assert_eq!(
        observed.events.len(),
        3,
        "the readable service's activities"
    );
    let mut errors = observed.errors.clone();
    errors.sort();
    // Two services refused with the same words: each note says which.
    let at = &fixtures.url;
    assert_eq!(
        errors,
        [
            format!(
                "application-autoscaling DescribeScalingActivities on service/denied/api at {at}: \
                 AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/peakload/ci \
                 is not authorized to perform: application-autoscaling:DescribeScalingActivities"
            ),
            format!(
                "application-autoscaling DescribeScalingActivities on service/denied/worker at \
                 {at}: AccessDeniedException: User: \
                 arn:aws:sts::123456789012:assumed-role/peakload/ci is not authorized to perform: \
                 application-autoscaling:DescribeScalingActivities"
            ),
        ]
    );
}
