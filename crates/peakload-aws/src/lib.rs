//! peakload's AWS signal sources, in a crate of their own so the AWS SDK is compiled once
//! and changes elsewhere rebuild little.
//!
//! [`AwsSources`] holds one SDK client per service, built from the standard AWS chain
//! (region, credentials, `AWS_ENDPOINT_URL…`) plus an optional endpoint URL (an emulator).
//! It reads, for a [`RunWindow`]:
//!
//! - [`metrics`]: CloudWatch `GetMetricData` for any [`MetricQuery`] — explicit, or from a
//!   [`Preset`] (ECS service, ALB target group, SQS queue, RDS instance, DynamoDB table,
//!   Lambda function) — one [`Series`] per query;
//! - [`logs`]: CloudWatch Logs `FilterLogEvents` counts of [`LogPattern`]s per interval, with
//!   sample lines ([`LogCounts`]);
//! - [`scaling`]: Application Auto Scaling (ECS) and EC2 Auto Scaling activities
//!   ([`ScalingActivity`], as [`Event`]s).
//!
//! [`AwsSources::collect`] reads everything a scenario's `[observe.cloudwatch]`,
//! `[observe.logs]` and `[observe.scaling]` sections ask for ([`config`]) into one
//! [`Observed`]. Series and events mirror the diagnosis core's `observe` model.
//!
//! Credentials never leave the SDK: error messages pass a [`Redactor`] that knows the secret
//! key and session token in use, and no type here holds or prints them.

pub mod config;
pub mod error;
pub mod logs;
pub mod metrics;
pub mod model;
pub mod presets;
pub mod scaling;

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use serde::{Deserialize, Serialize};

pub use config::{
    CloudWatchConfig, EcsService, LogPattern, LogsConfig, MetricQuery, MetricSpec, ScalingConfig,
};
pub use error::{AwsSourceError, Redactor};
pub use logs::{LogCounts, LogSample};
pub use model::{Event, RunWindow, Series};
pub use presets::Preset;
pub use scaling::ScalingActivity;

/// Where to reach AWS. Both default to the standard chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Connect {
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
}

impl From<&CloudWatchConfig> for Connect {
    fn from(c: &CloudWatchConfig) -> Connect {
        Connect {
            region: c.region.clone(),
            endpoint_url: c.endpoint_url.clone(),
        }
    }
}

/// The SDK clients the sources use.
#[derive(Clone, Debug)]
pub struct AwsSources {
    cloudwatch: aws_sdk_cloudwatch::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
    app_autoscaling: aws_sdk_applicationautoscaling::Client,
    autoscaling: aws_sdk_autoscaling::Client,
    redactor: Redactor,
}

/// Everything read for a run: what [`AwsSources::collect`] returns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    pub series: Vec<Series>,
    pub events: Vec<Event>,
    pub log_samples: Vec<LogSample>,
    /// Sources that failed (the others are still read), each a redacted message.
    pub errors: Vec<String>,
}

impl AwsSources {
    /// Clients from the standard chain, with `connect`'s region and endpoint over it.
    /// Resolves the credentials once, so that a missing one is reported here and the
    /// redactor knows what to hide.
    pub async fn connect(connect: &Connect) -> Result<AwsSources, AwsSourceError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = connect.region.as_deref().filter(|r| !r.is_empty()) {
            loader = loader.region(Region::new(region.to_owned()));
        }
        if let Some(url) = connect.endpoint_url.as_deref().filter(|u| !u.is_empty()) {
            loader = loader.endpoint_url(url);
        }
        Self::from_sdk_config(&loader.load().await).await
    }

    /// Clients from an SDK configuration built by the caller.
    pub async fn from_sdk_config(sdk: &SdkConfig) -> Result<AwsSources, AwsSourceError> {
        let Some(provider) = sdk.credentials_provider() else {
            return Err(AwsSourceError::Credentials(
                "the AWS configuration has no credentials provider".into(),
            ));
        };
        let credentials = provider.provide_credentials().await.map_err(|e| {
            AwsSourceError::Credentials(format!(
                "{} (set AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run with a role)",
                error::causes(&e)
            ))
        })?;
        let mut secrets = vec![credentials.secret_access_key().to_owned()];
        if let Some(token) = credentials.session_token() {
            secrets.push(token.to_owned());
        }
        Ok(AwsSources {
            cloudwatch: aws_sdk_cloudwatch::Client::new(sdk),
            logs: aws_sdk_cloudwatchlogs::Client::new(sdk),
            app_autoscaling: aws_sdk_applicationautoscaling::Client::new(sdk),
            autoscaling: aws_sdk_autoscaling::Client::new(sdk),
            redactor: Redactor::new(secrets),
        })
    }

    /// One series per query, over `window` at `period` (1, 5, 10, 30 s or a multiple of 60).
    pub async fn metrics(
        &self,
        queries: &[MetricQuery],
        window: &RunWindow,
        period: Duration,
    ) -> Result<Vec<Series>, AwsSourceError> {
        metrics::fetch(
            &self.cloudwatch,
            &self.redactor,
            queries,
            window,
            period,
            metrics::MAX_QUERIES_PER_CALL,
        )
        .await
    }

    /// As [`AwsSources::metrics`], with at most `per_call` queries per `GetMetricData` call
    /// (capped at 500): for tests of the splitting.
    #[doc(hidden)]
    pub async fn metrics_in_calls_of(
        &self,
        queries: &[MetricQuery],
        window: &RunWindow,
        period: Duration,
        per_call: usize,
    ) -> Result<Vec<Series>, AwsSourceError> {
        metrics::fetch(
            &self.cloudwatch,
            &self.redactor,
            queries,
            window,
            period,
            per_call,
        )
        .await
    }

    /// Counts of each pattern in each log group per `interval`, with samples.
    pub async fn log_counts(
        &self,
        config: &LogsConfig,
        window: &RunWindow,
        interval: Duration,
    ) -> Result<LogCounts, AwsSourceError> {
        config.validate()?;
        logs::fetch(
            &self.logs,
            &self.redactor,
            &config.log_groups,
            &config.patterns(),
            window,
            interval,
            config.samples,
        )
        .await
    }

    /// An ECS service's scaling activities overlapping the window (less `lookback`), oldest
    /// first.
    pub async fn ecs_scaling_activities(
        &self,
        service: &EcsService,
        window: &RunWindow,
        lookback: Duration,
    ) -> Result<Vec<ScalingActivity>, AwsSourceError> {
        scaling::ecs_service(
            &self.app_autoscaling,
            &self.redactor,
            &service.resource_id(),
            window,
            lookback,
        )
        .await
    }

    /// An EC2 Auto Scaling group's activities overlapping the window (less `lookback`),
    /// oldest first.
    pub async fn asg_scaling_activities(
        &self,
        group: &str,
        window: &RunWindow,
        lookback: Duration,
    ) -> Result<Vec<ScalingActivity>, AwsSourceError> {
        scaling::auto_scaling_group(&self.autoscaling, &self.redactor, group, window, lookback)
            .await
    }

    /// Reads every configured source. A source that fails is named in
    /// [`Observed::errors`]; the others are still read. Configuration errors fail at once.
    pub async fn collect(
        &self,
        cloudwatch: Option<&CloudWatchConfig>,
        logs: Option<&LogsConfig>,
        scaling: Option<&ScalingConfig>,
        window: &RunWindow,
    ) -> Result<Observed, AwsSourceError> {
        if let Some(c) = cloudwatch {
            c.validate()?;
        }
        if let Some(l) = logs {
            l.validate()?;
        }
        let mut out = Observed::default();
        if let Some(c) = cloudwatch {
            let queries = c.queries();
            if !queries.is_empty() {
                match self.metrics(&queries, window, c.period()).await {
                    Ok(series) => out.series.extend(series),
                    Err(e) => out.errors.push(e.to_string()),
                }
            }
        }
        if let Some(l) = logs {
            let secs = l.interval.or(cloudwatch.map(|c| c.period)).unwrap_or(60);
            match self
                .log_counts(l, window, Duration::from_secs(u64::from(secs)))
                .await
            {
                Ok(counts) => {
                    out.series.extend(counts.series);
                    out.log_samples.extend(counts.samples);
                    if counts.truncated {
                        out.errors.push(format!(
                            "logs: more than {} matching lines for a pattern; counts are partial",
                            logs::MAX_EVENTS_PER_PATTERN
                        ));
                    }
                }
                Err(e) => out.errors.push(e.to_string()),
            }
        }
        if let Some(s) = scaling {
            let mut activities = Vec::new();
            for service in &s.ecs {
                match self
                    .ecs_scaling_activities(service, window, s.lookback())
                    .await
                {
                    Ok(a) => activities.extend(a),
                    Err(e) => out.errors.push(e.to_string()),
                }
            }
            for group in &s.asg {
                match self
                    .asg_scaling_activities(group, window, s.lookback())
                    .await
                {
                    Ok(a) => activities.extend(a),
                    Err(e) => out.errors.push(e.to_string()),
                }
            }
            out.events.extend(scaling::timeline(&activities, window));
        }
        Ok(out)
    }
}
