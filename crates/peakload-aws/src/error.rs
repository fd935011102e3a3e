//! Errors of the AWS sources. Every message built from an SDK error passes the
//! [`Redactor`], so the credentials in use never reach an error, a log or a result.

use aws_sdk_cloudwatch::config::http::HttpResponse;
use aws_sdk_cloudwatch::error::{ProvideErrorMetadata, SdkError};

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

impl AwsSourceError {
    /// The message without the operation's name, for a caller that names the read itself.
    pub fn detail(&self) -> String {
        match self {
            AwsSourceError::Call { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
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

    pub(crate) fn call_error<E>(
        &self,
        service: &'static str,
        operation: &'static str,
        err: SdkError<E, HttpResponse>,
    ) -> AwsSourceError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        // What AWS said (code and message) when it said something; the SDK's full context
        // (raw response, headers) only helps a developer of this crate, not the user.
        let message = match &err {
            SdkError::ServiceError(se) => match (se.err().code(), se.err().message()) {
                (Some(code), Some(msg)) => format!("{code}: {msg}"),
                (Some(code), None) => code.to_owned(),
                (None, Some(msg)) => msg.to_owned(),
                (None, None) => format!(
                    "HTTP {} without an AWS error in the body (is the endpoint an AWS API, and \
                     does it implement this operation?)",
                    se.raw().status().as_u16()
                ),
            },
            other => causes(other),
        };
        AwsSourceError::Call {
            service,
            operation,
            message: self.redact(&message),
        }
    }
}

/// An error and its causes, each once, as one line: what the SDK's own context adds beyond
/// this (raw responses, headers, debug dumps) is for developers, not users.
pub(crate) fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        if parts.len() == 4 {
            break;
        }
        next = e.source();
    }
    parts.join(": ")
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
