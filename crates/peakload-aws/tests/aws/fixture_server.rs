//! Recorded AWS API responses (`tests/fixtures`) served over HTTP on a loopback port, for
//! the operations moto does not implement. The real SDK clients are pointed at it with
//! `endpoint_url`; the server answers by operation and request parameters, as AWS would.
//!
//! Started with [`Options::forward_to`], it passes every other request on to moto (CloudWatch,
//! CloudWatch Logs), so one endpoint serves a whole collection; [`Options::hang_log_group`]
//! makes `FilterLogEvents` on that group never answer (a source that hangs).

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

const ECS_PAGE_1: &str = include_str!("../fixtures/ecs-activities-page1.json");
const ECS_PAGE_2: &str = include_str!("../fixtures/ecs-activities-page2.json");
const WORKER_PAGES: [(Option<&str>, &str); 3] = [
    (
        None,
        include_str!("../fixtures/ecs-worker-activities-page1.json"),
    ),
    (
        Some("d29ya2VyLTI="),
        include_str!("../fixtures/ecs-worker-activities-page2.json"),
    ),
    (
        Some("d29ya2VyLTM="),
        include_str!("../fixtures/ecs-worker-activities-page3.json"),
    ),
];
const ASG_ACTIVITIES: &str = include_str!("../fixtures/asg-activities.xml");
const ASG_ACTIVITIES_PAGE_2: &str = include_str!("../fixtures/asg-activities-page2.xml");

pub const ECS_RESOURCE: &str = "service/peakload-stack/peakload-stack-api";
/// Three pages: a failed and an in-progress activity, one overridden and one before the run,
/// then one older than the lookback (whose page's `NextToken` must not be followed).
pub const WORKER_RESOURCE: &str = "service/peakload-stack/peakload-stack-worker";
pub const ASG_NAME: &str = "peakload-stack-nodes";
/// A resource whose answer is an error echoing [`Options::echo`] (a misbehaving service
/// or proxy that repeats what it was given).
pub const ECHO_RESOURCE: &str = "service/echo/echo";
/// Resources under this prefix are refused (no permission), with a message that does not name
/// them: the reader must.
pub const DENIED_PREFIX: &str = "service/denied/";

#[derive(Default)]
pub struct Seen {
    /// The operations' request bodies, in order.
    pub requests: Vec<String>,
}

pub struct Fixtures {
    pub url: String,
    pub seen: Arc<Mutex<Seen>>,
}

/// What the server does besides the recorded answers.
#[derive(Clone, Default)]
pub struct Options {
    /// What the error answer for [`ECHO_RESOURCE`] repeats.
    pub echo: String,
    /// Where requests without a recorded answer go (moto); else they are refused.
    pub forward_to: Option<String>,
    /// `FilterLogEvents` on this log group is accepted and never answered.
    pub hang_log_group: Option<String>,
}

/// Starts the server; `echo` is what the error answer for [`ECHO_RESOURCE`] repeats.
pub async fn start(echo: &str) -> Fixtures {
    start_with(Options {
        echo: echo.to_owned(),
        ..Options::default()
    })
    .await
}

pub async fn start_with(options: Options) -> Fixtures {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let state = seen.clone();
    let client = reqwest::Client::new();
    let app = Router::new().route(
        "/",
        post(move |headers: HeaderMap, body: String| {
            let seen = state.clone();
            let options = options.clone();
            let client = client.clone();
            async move {
                seen.lock().unwrap().requests.push(body.clone());
                answer(&headers, body, &options, &client).await
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Fixtures { url, seen }
}

fn json(status: StatusCode, text: String) -> Response {
    (
        status,
        [("content-type", "application/x-amz-json-1.1")],
        text,
    )
        .into_response()
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    json(
        status,
        serde_json::json!({ "__type": kind, "message": message }).to_string(),
    )
}

async fn answer(
    headers: &HeaderMap,
    body: String,
    options: &Options,
    client: &reqwest::Client,
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if target == "AnyScaleFrontendService.DescribeScalingActivities" {
        let request: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let token = request["NextToken"].as_str();
        return match request["ResourceId"].as_str().unwrap_or_default() {
            ECS_RESOURCE if token.is_none() => json(StatusCode::OK, ECS_PAGE_1.to_owned()),
            ECS_RESOURCE => json(StatusCode::OK, ECS_PAGE_2.to_owned()),
            WORKER_RESOURCE => match WORKER_PAGES.iter().find(|(t, _)| *t == token) {
                Some((_, page)) => json(StatusCode::OK, (*page).to_owned()),
                None => error(
                    StatusCode::BAD_REQUEST,
                    "ValidationException",
                    &format!("no page for NextToken {token:?}"),
                ),
            },
            ECHO_RESOURCE => error(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                &format!("request refused; you sent {}", options.echo),
            ),
            r if r.starts_with(DENIED_PREFIX) => error(
                StatusCode::BAD_REQUEST,
                "AccessDeniedException",
                "User: arn:aws:sts::123456789012:assumed-role/peakload/ci is not authorized to \
                 perform: application-autoscaling:DescribeScalingActivities",
            ),
            _ => json(StatusCode::OK, r#"{"ScalingActivities": []}"#.to_owned()),
        };
    }
    if body.contains("Action=DescribeScalingActivities") {
        let xml = if body.contains(&format!("AutoScalingGroupName={ASG_NAME}")) {
            if body.contains("NextToken=") {
                ASG_ACTIVITIES_PAGE_2.to_owned()
            } else {
                ASG_ACTIVITIES.to_owned()
            }
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
    if target == "Logs_20140328.FilterLogEvents" {
        if let Some(group) = &options.hang_log_group {
            let request: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            if request["logGroupName"].as_str() == Some(group.as_str()) {
                // Accepted, never answered: the reader's own time limit must end it.
                std::future::pending::<()>().await;
            }
        }
    }
    match &options.forward_to {
        Some(moto) => forward(moto, headers, body, client).await,
        None => (
            StatusCode::BAD_REQUEST,
            format!("no fixture for {target:?}"),
        )
            .into_response(),
    }
}

/// The request as it came, to moto, and moto's answer back.
async fn forward(
    moto: &str,
    headers: &HeaderMap,
    body: String,
    client: &reqwest::Client,
) -> Response {
    let mut request = client.post(format!("{moto}/")).body(body);
    for (name, value) in headers {
        if !matches!(name.as_str(), "host" | "content-length") {
            request = request.header(name.as_str(), value.as_bytes());
        }
    }
    let answer = match request.send().await {
        Ok(a) => a,
        Err(e) => return (StatusCode::BAD_GATEWAY, format!("moto: {e}")).into_response(),
    };
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let bytes = answer.bytes().await.unwrap_or_default();
    (status, [("content-type", content_type)], bytes.to_vec()).into_response()
}
