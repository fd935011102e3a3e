//! Recorded AWS API responses (`tests/fixtures`) served over HTTP on a loopback port, for
//! the operations moto does not implement. The real SDK clients are pointed at it with
//! `endpoint_url`; the server answers by operation and request parameters, as AWS would.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

const ECS_PAGE_1: &str = include_str!("../fixtures/ecs-activities-page1.json");
const ECS_PAGE_2: &str = include_str!("../fixtures/ecs-activities-page2.json");
const ASG_ACTIVITIES: &str = include_str!("../fixtures/asg-activities.xml");

pub const ECS_RESOURCE: &str = "service/peakload-stack/peakload-stack-api";
pub const ASG_NAME: &str = "peakload-stack-nodes";
/// A resource whose answer is an error echoing [`Fixtures::echo`] (a misbehaving service
/// or proxy that repeats what it was given).
pub const ECHO_RESOURCE: &str = "service/echo/echo";

#[derive(Default)]
pub struct Seen {
    /// The operations' request bodies, in order.
    pub requests: Vec<String>,
}

pub struct Fixtures {
    pub url: String,
    pub seen: Arc<Mutex<Seen>>,
}

/// Starts the server; `echo` is what the error answer for [`ECHO_RESOURCE`] repeats.
pub async fn start(echo: &str) -> Fixtures {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let echo = echo.to_owned();
    let state = seen.clone();
    let app = Router::new().route(
        "/",
        post(move |headers: HeaderMap, body: String| {
            let seen = state.clone();
            let echo = echo.clone();
            async move {
                seen.lock().unwrap().requests.push(body.clone());
                answer(&headers, &body, &echo)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Fixtures { url, seen }
}

fn answer(headers: &HeaderMap, body: &str, echo: &str) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if target == "AnyScaleFrontendService.DescribeScalingActivities" {
        let request: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        let json = |status: StatusCode, text: String| {
            (
                status,
                [("content-type", "application/x-amz-json-1.1")],
                text,
            )
                .into_response()
        };
        return match request["ResourceId"].as_str() {
            Some(ECS_RESOURCE) if request["NextToken"].is_null() => {
                json(StatusCode::OK, ECS_PAGE_1.to_owned())
            }
            Some(ECS_RESOURCE) => json(StatusCode::OK, ECS_PAGE_2.to_owned()),
            Some(ECHO_RESOURCE) => json(
                StatusCode::BAD_REQUEST,
                serde_json::json!({
                    "__type": "ValidationException",
                    "message": format!("request refused; you sent {echo}"),
                })
                .to_string(),
            ),
            _ => json(StatusCode::OK, r#"{"ScalingActivities": []}"#.to_owned()),
        };
    }
    if body.contains("Action=DescribeScalingActivities") {
        let xml = if body.contains(&format!("AutoScalingGroupName={ASG_NAME}")) {
            ASG_ACTIVITIES.to_owned()
        } else {
            ASG_ACTIVITIES
                .split("<Activities>")
                .next()
                .map(|head| {
                    format!(
                        "{head}<Activities/></DescribeScalingActivitiesResult></DescribeScalingActivitiesResponse>"
                    )
                })
                .unwrap()
        };
        return (StatusCode::OK, [("content-type", "text/xml")], xml).into_response();
    }
    (
        StatusCode::BAD_REQUEST,
        format!("no fixture for {target:?}"),
    )
        .into_response()
}
