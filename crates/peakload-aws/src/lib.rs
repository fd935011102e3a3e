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
//! Apart from the sources, [`s3`] keeps distributed runs' results in S3 ([`ResultsBucket`]:
//! upload under `s3://bucket/prefix/`, list and download for a merge).
//!
//! [`AwsSources::collect`] reads everything a scenario's `[observe.cloudwatch]`,
//! `[observe.logs]` and `[observe.scaling]` sections ask for ([`config`]) into one
//! [`Observed`]. Series and events mirror the diagnosis core's `observe` model.
//!
//! Each read (the metrics, each log group, each scaling resource) runs at the same time as the
//! others and has its own time limit; one that fails or does not answer is named in
//! [`Observed::errors`] — with its resource and endpoint — and the rest is kept.
//! [`AwsSources::collect_into`] gathers into a [`Progress`] the caller shares, so a caller that
//! stops waiting keeps what arrived and knows which reads had not answered.
//!
//! Credentials never leave the SDK: error messages pass a [`Redactor`] that knows the secret
//! key and session token in use, and no type here holds or prints them.

pub mod config;
pub mod error;
pub mod logs;
pub mod metrics;
pub mod model;
pub mod presets;
pub mod s3;
pub mod scaling;

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

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
pub use s3::{ResultsBucket, S3Url};
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
    /// Where the calls go, for messages: `at http://127.0.0.1:5055`, `in eu-west-1`.
    whereabouts: String,
}

/// How long one read (the metrics, one log group, one scaling resource) may take unless the
/// caller says otherwise.
pub const READ_LIMIT: Duration = Duration::from_secs(60);

/// Everything read for a run: what [`AwsSources::collect`] returns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    pub series: Vec<Series>,
    pub events: Vec<Event>,
    pub log_samples: Vec<LogSample>,
    /// Reads that failed or did not answer in time (the others are still read), each naming the
    /// operation, its resource and endpoint, with a redacted message.
    pub errors: Vec<String>,
    /// What the reader chose or noticed (the period each metric was read at, partial counts).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// What a collection has gathered so far; [`AwsSources::collect_into`] fills it as each read
/// finishes, so a caller that stops waiting keeps what arrived.
#[derive(Debug, Default)]
pub struct Progress {
    pub observed: Observed,
    /// The reads started and not yet finished, named as in [`Observed::errors`].
    pub pending: Vec<String>,
}

/// A [`Progress`] shared between a collection and its caller.
pub type SharedProgress = Arc<Mutex<Progress>>;

fn lock(p: &SharedProgress) -> std::sync::MutexGuard<'_, Progress> {
    p.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Resolves the credentials of `sdk` once, so that a missing one is reported before any call
/// and the redactor knows what to hide; with where the calls go, for messages.
pub(crate) async fn resolve_credentials(
    sdk: &SdkConfig,
) -> Result<(Redactor, String), AwsSourceError> {
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
    let whereabouts = match (sdk.endpoint_url(), sdk.region()) {
        (Some(url), _) => format!("at {}", error::display_endpoint(url)),
        (None, Some(region)) => format!("in {region}"),
        (None, None) => String::new(),
    };
    Ok((Redactor::new(secrets), whereabouts))
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
        let (redactor, whereabouts) = resolve_credentials(sdk).await?;
        Ok(AwsSources {
            cloudwatch: aws_sdk_cloudwatch::Client::new(sdk),
            logs: aws_sdk_cloudwatchlogs::Client::new(sdk),
            app_autoscaling: aws_sdk_applicationautoscaling::Client::new(sdk),
            autoscaling: aws_sdk_autoscaling::Client::new(sdk),
            redactor,
            whereabouts,
        })
    }

    /// `what` and where its calls go, as messages name a read.
    fn read_name(&self, what: String) -> String {
        if self.whereabouts.is_empty() {
            what
        } else {
            format!("{what} {}", self.whereabouts)
        }
    }

    /// The metrics at the finest period each has (or `asked`), with notes saying which period
    /// each was read at; see [`metrics::read_finest`]. `now` dates the window.
    pub async fn metrics_finest(
        &self,
        queries: &[MetricQuery],
        window: &RunWindow,
        asked: Option<u32>,
        now: SystemTime,
    ) -> Result<(Vec<Series>, Vec<String>), AwsSourceError> {
        metrics::read_finest(
            &self.cloudwatch,
            &self.redactor,
            queries,
            window,
            asked,
            now,
            metrics::MAX_QUERIES_PER_CALL,
        )
        .await
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

    /// Reads every configured source, each read with [`READ_LIMIT`]. A read that fails or
    /// does not answer is named in [`Observed::errors`]; the others are still read.
    /// Configuration errors fail at once.
    pub async fn collect(
        &self,
        cloudwatch: Option<&CloudWatchConfig>,
        logs: Option<&LogsConfig>,
        scaling: Option<&ScalingConfig>,
        window: &RunWindow,
    ) -> Result<Observed, AwsSourceError> {
        let progress = SharedProgress::default();
        self.collect_into(cloudwatch, logs, scaling, window, READ_LIMIT, &progress)
            .await?;
        let observed = std::mem::take(&mut lock(&progress).observed);
        Ok(observed)
    }

    /// As [`AwsSources::collect`], every read at once, each with its own time limit `limit`,
    /// gathering into `progress` as each finishes: when the caller stops waiting (drops this
    /// future), `progress` holds what arrived, and its `pending` names the reads that had not
    /// answered (they are cancelled with the future).
    pub async fn collect_into(
        &self,
        cloudwatch: Option<&CloudWatchConfig>,
        logs: Option<&LogsConfig>,
        scaling: Option<&ScalingConfig>,
        window: &RunWindow,
        limit: Duration,
        progress: &SharedProgress,
    ) -> Result<(), AwsSourceError> {
        if let Some(c) = cloudwatch {
            c.validate()?;
        }
        if let Some(l) = logs {
            l.validate()?;
        }
        let mut reads = tokio::task::JoinSet::new();
        let w = *window;
        if let Some(c) = cloudwatch {
            let queries = c.queries();
            if !queries.is_empty() {
                let name = self.read_name(format!(
                    "cloudwatch GetMetricData ({} metric{})",
                    queries.len(),
                    if queries.len() == 1 { "" } else { "s" }
                ));
                let (me, asked, now) = (self.clone(), c.period, SystemTime::now());
                start(
                    &mut reads,
                    progress,
                    name,
                    limit,
                    async move { me.metrics_finest(&queries, &w, asked, now).await },
                    |o, (series, notes)| {
                        o.series.extend(series);
                        o.notes.extend(notes);
                    },
                );
            }
        }
        if let Some(l) = logs {
            let secs = l.interval_for(cloudwatch.and_then(|c| c.period), window.duration_s());
            for group in &l.log_groups {
                let name = self.read_name(format!("logs FilterLogEvents on {group}"));
                let (me, group, patterns, samples) =
                    (self.clone(), group.clone(), l.patterns(), l.samples);
                let truncated = format!(
                    "logs: {group}: more than {} matching lines for a pattern; its counts are partial",
                    logs::MAX_EVENTS_PER_PATTERN
                );
                start(
                    &mut reads,
                    progress,
                    name,
                    limit,
                    async move {
                        logs::fetch(
                            &me.logs,
                            &me.redactor,
                            std::slice::from_ref(&group),
                            &patterns,
                            &w,
                            Duration::from_secs(u64::from(secs)),
                            samples,
                        )
                        .await
                    },
                    move |o, counts| {
                        o.series.extend(counts.series);
                        o.log_samples.extend(counts.samples);
                        if counts.truncated {
                            o.notes.push(truncated);
                        }
                    },
                );
            }
        }
        if let Some(s) = scaling {
            let lookback = s.lookback();
            for service in &s.ecs {
                let name = self.read_name(format!(
                    "application-autoscaling DescribeScalingActivities on {}",
                    service.resource_id()
                ));
                let (me, service) = (self.clone(), service.clone());
                start(
                    &mut reads,
                    progress,
                    name,
                    limit,
                    async move { me.ecs_scaling_activities(&service, &w, lookback).await },
                    move |o, activities| o.events.extend(scaling::timeline(&activities, &w)),
                );
            }
            for group in &s.asg {
                let name =
                    self.read_name(format!("autoscaling DescribeScalingActivities on {group}"));
                let (me, group) = (self.clone(), group.clone());
                start(
                    &mut reads,
                    progress,
                    name,
                    limit,
                    async move { me.asg_scaling_activities(&group, &w, lookback).await },
                    move |o, activities| o.events.extend(scaling::timeline(&activities, &w)),
                );
            }
        }
        while reads.join_next().await.is_some() {}
        lock(progress)
            .observed
            .events
            .sort_by(|a, b| a.start.total_cmp(&b.start));
        Ok(())
    }
}

/// Starts one read on `reads`: named in `progress.pending` until it finishes; then what it
/// returned goes into `progress.observed` through `keep`, or a message naming it into
/// `errors` when it failed or took longer than `limit`.
fn start<T: Send + 'static>(
    reads: &mut tokio::task::JoinSet<()>,
    progress: &SharedProgress,
    name: String,
    limit: Duration,
    read: impl Future<Output = Result<T, AwsSourceError>> + Send + 'static,
    keep: impl FnOnce(&mut Observed, T) + Send + 'static,
) {
    lock(progress).pending.push(name.clone());
    let progress = progress.clone();
    reads.spawn(async move {
        let outcome = tokio::time::timeout(limit, read).await;
        let mut p = lock(&progress);
        if let Some(at) = p.pending.iter().position(|n| *n == name) {
            p.pending.remove(at);
        }
        match outcome {
            Ok(Ok(value)) => keep(&mut p.observed, value),
            Ok(Err(e)) => p.observed.errors.push(format!("{name}: {}", e.detail())),
            Err(_) => p.observed.errors.push(format!(
                "{name}: no answer within {} s; the other sources were read",
                limit.as_secs_f64()
            )),
        }
    });
}
