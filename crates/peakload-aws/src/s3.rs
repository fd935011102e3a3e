//! Results of distributed runs in S3: a run's output files go up under a prefix
//! (`--out s3://bucket/prefix/`), and a merge lists and fetches the shards' files from one.
//!
//! [`S3Url`] is the parsed `s3://bucket/prefix/` location; [`ResultsBucket`] holds the client
//! and does the three things the commands need: [`ResultsBucket::list`] the keys under a
//! prefix, [`ResultsBucket::put_file`] and [`ResultsBucket::get_to_file`]. Files travel whole
//! (results are megabytes, not gigabytes), so there is no multipart upload.
//!
//! With an endpoint URL (an emulator, MinIO) requests use path-style addressing
//! (`http://host/bucket/key`), which those servers answer; AWS itself gets virtual-hosted
//! style. Messages pass the same [`Redactor`] as the other sources.

use std::path::Path;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::primitives::ByteStream;

use crate::{resolve_credentials, AwsSourceError, Connect, Redactor};

/// `s3://bucket/prefix/`: the bucket, and the prefix as a key prefix (empty, or ending in `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    pub prefix: String,
}

impl S3Url {
    /// `Ok(None)` for anything that is not an `s3://` URL (a local path); an error for an
    /// `s3://` URL without a valid bucket name.
    pub fn parse(text: &str) -> Result<Option<S3Url>, String> {
        let Some(rest) = text.strip_prefix("s3://") else {
            return Ok(None);
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        // The S3 bucket-name rules, as far as a typo is concerned: 3-63 characters of
        // lowercase letters, digits, dots and hyphens.
        let valid = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !valid {
            return Err(format!(
                "{text:?}: {bucket:?} is not an S3 bucket name (3-63 lowercase letters, digits, \
                 dots and hyphens), e.g. s3://my-bucket/runs/black-friday/"
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|part| part == "." || part == "..") {
            return Err(format!(
                "{text:?}: `.` and `..` are not allowed in the prefix"
            ));
        }
        Ok(Some(S3Url {
            bucket: bucket.to_owned(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        }))
    }

    /// The location `name/` below this one.
    pub fn child(&self, name: &str) -> S3Url {
        S3Url {
            bucket: self.bucket.clone(),
            prefix: format!("{}{}/", self.prefix, name.trim_matches('/')),
        }
    }

    /// The key of `name` directly under this prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The URL of a key of this bucket.
    pub fn url_of(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}

impl std::fmt::Display for S3Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// An S3 client for results, and how to name its errors.
#[derive(Clone, Debug)]
pub struct ResultsBucket {
    client: aws_sdk_s3::Client,
    redactor: Redactor,
    /// Where the calls go, for messages: `at http://127.0.0.1:5055`, `in eu-west-1`.
    whereabouts: String,
}

impl ResultsBucket {
    /// A client from the standard chain (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL[_S3]`),
    /// with `connect`'s region and endpoint over it. Without any region, `us-east-1`: S3
    /// needs one to sign, and an emulator accepts any. Credentials are resolved here, so a
    /// missing one is said before any load is sent.
    pub async fn connect(connect: &Connect) -> Result<ResultsBucket, AwsSourceError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = connect.region.as_deref().filter(|r| !r.is_empty()) {
            loader = loader.region(Region::new(region.to_owned()));
        }
        if let Some(url) = connect.endpoint_url.as_deref().filter(|u| !u.is_empty()) {
            loader = loader.endpoint_url(url);
        }
        let sdk = loader.load().await;
        let (redactor, whereabouts) = resolve_credentials(&sdk).await?;
        let mut config = aws_sdk_s3::config::Builder::from(&sdk)
            // Checksums only where S3 requires them: emulators and S3-compatible stores do
            // not all read the aws-chunked trailers the SDK would send otherwise.
            .request_checksum_calculation(
                aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
            );
        if sdk.region().is_none() {
            config = config.region(Region::new("us-east-1"));
        }
        // An endpoint of its own (given, or AWS_ENDPOINT_URL_S3 which the SDK reads into the
        // S3 client only) is an emulator or an S3-compatible store: path style.
        let own_endpoint = sdk.endpoint_url().is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some_and(|v| !v.is_empty());
        if own_endpoint {
            config = config.force_path_style(true);
        }
        Ok(ResultsBucket {
            client: aws_sdk_s3::Client::from_conf(config.build()),
            redactor,
            whereabouts,
        })
    }

    fn fail<E>(
        &self,
        operation: &'static str,
        what: &str,
        err: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> AwsSourceError
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let message = match self.redactor.call_error("S3", operation, err) {
            AwsSourceError::Call { message, .. } => message,
            other => other.to_string(),
        };
        AwsSourceError::Call {
            service: "S3",
            operation,
            message: if self.whereabouts.is_empty() {
                format!("{what}: {message}")
            } else {
                format!("{what} {}: {message}", self.whereabouts)
            },
        }
    }

    /// Every key under `at`'s prefix, in S3's (lexicographic) order.
    pub async fn list(&self, at: &S3Url) -> Result<Vec<String>, AwsSourceError> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&at.bucket)
                .prefix(&at.prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| self.fail("ListObjectsV2", &at.to_string(), e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_owned()),
                _ => break,
            }
        }
        Ok(keys)
    }

    /// Uploads the file at `path` as `key` of `bucket`.
    pub async fn put_file(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
    ) -> Result<(), AwsSourceError> {
        let url = format!("s3://{bucket}/{key}");
        let body = ByteStream::from_path(path)
            .await
            .map_err(|e| AwsSourceError::Call {
                service: "S3",
                operation: "PutObject",
                message: format!("{url}: cannot read {}: {e}", path.display()),
            })?;
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body)
            .set_content_type(content_type(key).map(str::to_owned))
            .send()
            .await
            .map_err(|e| self.fail("PutObject", &url, e))?;
        Ok(())
    }

    /// Downloads `key` of `bucket` into the file at `path` (created or replaced).
    pub async fn get_to_file(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
    ) -> Result<(), AwsSourceError> {
        let url = format!("s3://{bucket}/{key}");
        let object = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.fail("GetObject", &url, e))?;
        // Streamed to the file: a shard's HDR log of a long run is not held in memory.
        let write_error = |e: std::io::Error| AwsSourceError::Call {
            service: "S3",
            operation: "GetObject",
            message: self
                .redactor
                .redact(&format!("{url}: cannot copy into {}: {e}", path.display())),
        };
        let mut file = tokio::fs::File::create(path).await.map_err(write_error)?;
        let mut body = std::pin::pin!(object.body.into_async_read());
        tokio::io::copy(&mut body, &mut file)
            .await
            .map_err(write_error)?;
        tokio::io::AsyncWriteExt::flush(&mut file)
            .await
            .map_err(write_error)
    }

    /// Whether `key` exists in `bucket` (by listing, which the prefix-scoped policy of
    /// `deploy/` allows, where `HeadObject` on a missing key would need `s3:ListBucket` anyway).
    pub async fn exists(&self, bucket: &str, key: &str) -> Result<bool, AwsSourceError> {
        let url = format!("s3://{bucket}/{key}");
        let page = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(key)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| self.fail("ListObjectsV2", &url, e))?;
        Ok(page.contents().iter().any(|o| o.key() == Some(key)))
    }
}

/// What a browser opening the report from S3 needs to know.
fn content_type(key: &str) -> Option<&'static str> {
    let ext = key.rsplit_once('.').map(|(_, e)| e)?;
    Some(match ext {
        "json" => "application/json",
        "html" => "text/html; charset=utf-8",
        "xml" => "application/xml",
        "md" => "text/markdown; charset=utf-8",
        "hlog" | "log" => "text/plain; charset=utf-8",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_s3_urls_and_leaves_paths_alone() {
        assert_eq!(S3Url::parse("results/run-1").unwrap(), None);
        let u = S3Url::parse("s3://my-bucket/runs/bf//").unwrap().unwrap();
        assert_eq!(u.bucket, "my-bucket");
        assert_eq!(u.prefix, "runs/bf/");
        assert_eq!(u.to_string(), "s3://my-bucket/runs/bf/");
        assert_eq!(
            u.child("shard-1-of-4").key("results.json"),
            "runs/bf/shard-1-of-4/results.json"
        );
        let root = S3Url::parse("s3://my-bucket").unwrap().unwrap();
        assert_eq!(root.prefix, "");
        assert_eq!(root.key("results.json"), "results.json");
    }

    #[test]
    fn refuses_bad_buckets_and_dot_segments() {
        for bad in [
            "s3://",
            "s3://My_Bucket/x",
            "s3://ab/x",
            "s3://bucket/a/../b",
        ] {
            assert!(S3Url::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
