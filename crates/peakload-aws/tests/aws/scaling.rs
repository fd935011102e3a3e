//! Scaling activities from recorded API responses, through the real SDK clients.

use std::time::{Duration, UNIX_EPOCH};

use peakload_aws::{AwsSources, Connect, EcsService, RunWindow, ScalingConfig};

use crate::common::aws_env;
use crate::fixture_server::{self, ASG_NAME, ECS_RESOURCE};

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
            ("application-autoscaling", 300.5, None, "InProgress", "6"),
            ("autoscaling", 420.541, None, "InProgress", "4"),
        ]
    );
    let four = &observed.events[2];
    assert_eq!(four.name, "Setting desired count to 4.");
    assert_eq!(
        four.status,
        "Successful: Successfully set desired count to 4. Change successfully fulfilled by ecs."
    );
    assert_eq!(four.dimensions["resource"], ECS_RESOURCE);
    let launch = &observed.events[4];
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
