//! Errors of the AWS sources. Every message built from an SDK error passes the
//! [`Redactor`], so the credentials in use never reach an error, a log or a result.

use aws_sdk_cloudwatch::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Why reading an AWS source failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwsSourceError {
    /// The `[observe.*]` configuration cannot work (reported before any call).
    #[error("invalid AWS source configuration: {0}")]
    Config(String),
    /// The standard chain found no usable credentials.
    #[error("no AWS credentials: {0}")]
    Credentials(String),
    /// An API call failed.
    #[error("{service} {operation}: {message}")]
    Call {
        service: &'static str,
        operation: &'static str,
        message: String,
    },
}

/// Removes known secrets (the secret access key, the session token) from text.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Redactor {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Redactor {
        Redactor {
            // Short values would redact ordinary words; real keys are 40 characters.
            secrets: secrets.into_iter().filter(|s| s.len() >= 4).collect(),
        }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "[redacted]");
            }
        }
        out
    }

    pub(crate) fn call_error<E, R>(
        &self,
        service: &'static str,
        operation: &'static str,
        err: SdkError<E, R>,
    ) -> AwsSourceError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        AwsSourceError::Call {
            service,
            operation,
            message: self.redact(&DisplayErrorContext(&err).to_string()),
        }
    }
}

/// `url` without any `user:password@` part, for messages.
pub fn display_endpoint(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_every_occurrence() {
        let r = Redactor::new(["wJalrXUtnFEMI/K7MDENG".to_owned(), "ab".to_owned()]);
        assert_eq!(
            r.redact("sig wJalrXUtnFEMI/K7MDENG and wJalrXUtnFEMI/K7MDENG ab"),
            "sig [redacted] and [redacted] ab"
        );
    }

    #[test]
    fn endpoints_lose_their_userinfo() {
        assert_eq!(
            display_endpoint("http://key:secret@127.0.0.1:5055/x"),
            "http://127.0.0.1:5055/x"
        );
        assert_eq!(
            display_endpoint("https://logs.eu-west-1.amazonaws.com"),
            "https://logs.eu-west-1.amazonaws.com"
        );
    }
}
