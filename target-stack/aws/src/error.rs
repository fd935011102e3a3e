//! Errors of the AWS backends, and the mapping of SDK errors onto the stores' [`StoreError`].

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use peakload_stack::store::StoreError;
use peakload_stack::StackError;

/// Why an AWS-backed stack could not start.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("{0}")]
    Config(String),
    #[error("{service}: {message}")]
    Service {
        service: &'static str,
        message: String,
    },
    #[error(transparent)]
    Stack(#[from] StackError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Error codes that mean "try later", not "refused".
const THROTTLED: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "Throttling",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "InternalServerError",
    "InternalFailure",
    "AWS.SimpleQueueService.RequestThrottled",
];

/// A store error for a failed SDK call of `backend`'s operation `op`.
pub(crate) fn store_error<E, R>(backend: &'static str, op: &str, err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let unavailable = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(e) => e.err().code().is_some_and(|c| THROTTLED.contains(&c)),
        _ => false,
    };
    StoreError::Backend {
        backend,
        message: format!("{op}: {}", DisplayErrorContext(&err)),
        unavailable,
    }
}

/// A start-up error for a failed SDK call.
pub(crate) fn service_error<E, R>(service: &'static str, op: &str, err: SdkError<E, R>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    AwsError::Service {
        service,
        message: format!("{op}: {}", DisplayErrorContext(&err)),
    }
}

/// Stored data that does not have the expected shape.
pub(crate) fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Corrupt(what.into())
}
