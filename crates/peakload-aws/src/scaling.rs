//! Scaling activities: Application Auto Scaling for ECS services, EC2 Auto Scaling for
//! groups. Both APIs answer newest first; paging stops once activities start before the
//! window (less the lookback). Each activity becomes a [`ScalingActivity`], and through
//! [`ScalingActivity::to_event`] an [`Event`] of the common model.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
use serde::{Deserialize, Serialize};

use crate::error::{AwsSourceError, Redactor};
use crate::model::{from_epoch_secs, Event, RunWindow};

/// Pages read at most per resource (a bound, not an expected figure).
const MAX_PAGES: usize = 100;

/// One scaling activity, as AWS reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalingActivity {
    /// `application-autoscaling` or `autoscaling`.
    pub source: String,
    /// `service/<cluster>/<service>` or the Auto Scaling group's name.
    pub resource: String,
    pub activity_id: String,
    pub description: String,
    pub cause: String,
    pub start: SystemTime,
    pub end: Option<SystemTime>,
    /// The status code as AWS spells it: `Pending`, `InProgress`, `Successful`, `Overridden`,
    /// `Unfulfilled`, `Failed` (Application Auto Scaling); `InProgress`, `Successful`,
    /// `Failed`, `Cancelled`, `WaitingFor…` (EC2 Auto Scaling).
    pub status: String,
    pub status_message: Option<String>,
    /// The capacity the activity moves to, read from its description or cause.
    pub desired_capacity: Option<u32>,
}

impl ScalingActivity {
    /// Still going: no end time, or a status that is not final.
    pub fn in_progress(&self) -> bool {
        self.end.is_none()
            || matches!(
                self.status.as_str(),
                "Pending" | "InProgress" | "PreInService" | "MidLifecycleAction"
            )
            || self.status.starts_with("WaitingFor")
    }

    pub fn to_event(&self, window: &RunWindow) -> Event {
        let mut dimensions = BTreeMap::from([
            ("resource".to_owned(), self.resource.clone()),
            ("activity_id".to_owned(), self.activity_id.clone()),
        ]);
        if let Some(n) = self.desired_capacity {
            dimensions.insert("desired_capacity".to_owned(), n.to_string());
        }
        let status = match &self.status_message {
            Some(m) if !m.is_empty() => format!("{}: {m}", self.status),
            _ => self.status.clone(),
        };
        Event {
            source: self.source.clone(),
            name: self.description.clone(),
            start: window.offset(self.start),
            end: self.end.map(|e| window.offset(e)),
            cause: self.cause.clone(),
            status,
            dimensions,
        }
    }
}

/// Activities sorted by start, then as events: the timeline the report draws.
pub fn timeline(activities: &[ScalingActivity], window: &RunWindow) -> Vec<Event> {
    let mut sorted: Vec<&ScalingActivity> = activities.iter().collect();
    sorted.sort_by_key(|a| a.start);
    sorted.into_iter().map(|a| a.to_event(window)).collect()
}

/// Whether an activity overlaps `[from, to]`.
fn overlaps(start: SystemTime, end: Option<SystemTime>, from: SystemTime, to: SystemTime) -> bool {
    start <= to && end.is_none_or(|e| e >= from)
}

fn smithy_time(t: &aws_sdk_applicationautoscaling::primitives::DateTime) -> SystemTime {
    SystemTime::try_from(*t).unwrap_or_else(|_| from_epoch_secs(t.as_secs_f64()))
}

pub(crate) async fn ecs_service(
    client: &aws_sdk_applicationautoscaling::Client,
    redactor: &Redactor,
    resource_id: &str,
    window: &RunWindow,
    lookback: Duration,
) -> Result<Vec<ScalingActivity>, AwsSourceError> {
    let from = window.start - lookback;
    let mut out = Vec::new();
    let mut next_token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page = client
            .describe_scaling_activities()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(resource_id)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .set_next_token(next_token.take())
            .send()
            .await
            .map_err(|e| {
                redactor.call_error("application-autoscaling", "DescribeScalingActivities", e)
            })?;
        let mut older_than_window = false;
        for a in page.scaling_activities() {
            let start = smithy_time(a.start_time());
            let end = a.end_time().map(smithy_time);
            older_than_window |= start < from;
            if !overlaps(start, end, from, window.end) {
                continue;
            }
            out.push(ScalingActivity {
                source: "application-autoscaling".to_owned(),
                resource: a.resource_id().to_owned(),
                activity_id: a.activity_id().to_owned(),
                description: a.description().to_owned(),
                cause: a.cause().to_owned(),
                start,
                end,
                status: a.status_code().as_str().to_owned(),
                status_message: a.status_message().map(str::to_owned),
                desired_capacity: desired_capacity(a.description())
                    .or_else(|| desired_capacity(a.cause())),
            });
        }
        match page.next_token() {
            Some(t) if !t.is_empty() && !older_than_window => next_token = Some(t.to_owned()),
            _ => break,
        }
    }
    out.sort_by_key(|a| a.start);
    Ok(out)
}

pub(crate) async fn auto_scaling_group(
    client: &aws_sdk_autoscaling::Client,
    redactor: &Redactor,
    group: &str,
    window: &RunWindow,
    lookback: Duration,
) -> Result<Vec<ScalingActivity>, AwsSourceError> {
    let from = window.start - lookback;
    let mut out = Vec::new();
    let mut next_token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page = client
            .describe_scaling_activities()
            .auto_scaling_group_name(group)
            .set_next_token(next_token.take())
            .send()
            .await
            .map_err(|e| redactor.call_error("autoscaling", "DescribeScalingActivities", e))?;
        let mut older_than_window = false;
        for a in page.activities() {
            let Some(start) = a.start_time().map(smithy_time) else {
                continue;
            };
            let end = a.end_time().map(smithy_time);
            older_than_window |= start < from;
            if !overlaps(start, end, from, window.end) {
                continue;
            }
            let description = a.description().unwrap_or_default();
            let cause = a.cause().unwrap_or_default();
            out.push(ScalingActivity {
                source: "autoscaling".to_owned(),
                resource: a.auto_scaling_group_name().unwrap_or(group).to_owned(),
                activity_id: a.activity_id().unwrap_or_default().to_owned(),
                description: description.to_owned(),
                cause: cause.to_owned(),
                start,
                end,
                status: a.status_code().map_or("Unknown", |s| s.as_str()).to_owned(),
                status_message: a.status_message().map(str::to_owned),
                desired_capacity: desired_capacity(cause).or_else(|| desired_capacity(description)),
            });
        }
        match page.next_token() {
            Some(t) if !t.is_empty() && !older_than_window => next_token = Some(t.to_owned()),
            _ => break,
        }
    }
    out.sort_by_key(|a| a.start);
    Ok(out)
}

/// The new capacity named in an activity's text: ECS says `Setting desired count to 4.`,
/// EC2 Auto Scaling says `… changing the desired capacity from 2 to 4.`
pub fn desired_capacity(text: &str) -> Option<u32> {
    for marker in ["desired count to ", "desired capacity from "] {
        if let Some(at) = text.find(marker) {
            let rest = &text[at + marker.len()..];
            let rest = match rest.split_once(" to ") {
                Some((_, after)) if marker.ends_with("from ") => after,
                _ => rest,
            };
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(n) = digits.parse() {
                return Some(n);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_from_ecs_and_ec2_wording() {
        assert_eq!(desired_capacity("Setting desired count to 4."), Some(4));
        assert_eq!(
            desired_capacity(
                "At 2024-11-29T10:02:00Z a monitor alarm TargetTracking-x in state ALARM \
                 triggered policy cpu changing the desired capacity from 2 to 6."
            ),
            Some(6)
        );
        assert_eq!(
            desired_capacity("Launching a new EC2 instance: i-0abc"),
            None
        );
    }
}
