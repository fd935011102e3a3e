//! `s3://bucket/prefix/` as a place for results: where `run --out` uploads a run's files and
//! where `merge` finds the shards' files (and may put the merged ones).
//!
//! Files are always made locally first, in a staging directory, then copied: the run and the
//! merge write exactly what they write to a local `--out`. A run checks before sending any load
//! that the bucket answers with the credentials in use and that its destination holds no
//! earlier result; an upload that fails after the load is exit 5, and the files stay in the
//! staging directory, named in the message.

use std::path::{Path, PathBuf};

use peakload_aws::{Connect, ResultsBucket, S3Url};

use super::{Failure, Outcome};
use crate::plan::ShardSpec;

/// The S3 location an output or input names, `None` for a local path.
pub fn location(arg: &Path) -> Result<Option<S3Url>, Failure> {
    match arg.to_str() {
        Some(text) => S3Url::parse(text).map_err(Failure::Invalid),
        None => Ok(None),
    }
}

/// A client for `endpoint` (else the SDK's chain: `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`,
/// or AWS itself).
pub async fn connect(endpoint: Option<&str>) -> Result<ResultsBucket, String> {
    ResultsBucket::connect(&Connect {
        region: None,
        endpoint_url: endpoint.map(str::to_owned),
    })
    .await
    .map_err(|e| e.to_string())
}

/// A new, unique staging directory under the system's temporary directory (not created).
pub fn staging_dir(what: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::env::temp_dir().join(format!("peakload-{what}-{}-{nanos}", std::process::id()))
}

/// Where a run's files go under `--out s3://…`: the prefix itself for a whole run,
/// `shard-I-of-N/` below it for a shard, so the N pods of one job can share one `--out`.
pub fn run_destination(out: &S3Url, shard: ShardSpec) -> S3Url {
    if shard.is_whole() {
        out.clone()
    } else {
        out.child(&format!("shard-{}-of-{}", shard.index, shard.count))
    }
}

/// A run's upload, settled before the load.
pub struct RunUpload {
    bucket: ResultsBucket,
    to: S3Url,
    pub staging: PathBuf,
}

impl RunUpload {
    /// Connects and checks the destination before anything is sent: the bucket must answer
    /// and hold no `results.json` there already (two runs' shards under one prefix would merge
    /// into a test nobody ran).
    pub async fn prepare(to: S3Url, endpoint: Option<&str>) -> Result<RunUpload, Failure> {
        let bucket = connect(endpoint)
            .await
            .map_err(|e| Failure::Invalid(format!("--out {to}: {e}; nothing was sent")))?;
        let key = to.key("results.json");
        let taken = bucket
            .exists(&to.bucket, &key)
            .await
            .map_err(|e| Failure::Invalid(format!("--out {to}: {e}; nothing was sent")))?;
        if taken {
            return Err(Failure::Invalid(format!(
                "{} exists already (an earlier run's): give each run its own prefix; nothing \
                 was sent",
                to.url_of(&key)
            )));
        }
        Ok(RunUpload {
            bucket,
            to,
            staging: staging_dir("run"),
        })
    }

    /// Uploads what the run wrote, whatever its outcome, and removes the staging directory.
    /// A failed upload is exit 5 and keeps the files where they are.
    pub async fn finish(self, outcome: Result<Outcome, Failure>) -> Result<Outcome, Failure> {
        if !self.staging.join("results.json").is_file() {
            // Nothing was measured (the run stopped before the load): nothing to keep.
            let _ = std::fs::remove_dir_all(&self.staging);
            return outcome;
        }
        match upload_dir(&self.bucket, &self.staging, &self.to).await {
            Ok(names) => {
                crate::outln!("  uploaded to {}: {}", self.to, names.join(", "));
                let _ = std::fs::remove_dir_all(&self.staging);
                outcome
            }
            Err(e) => {
                let before = match &outcome {
                    Err(f) => format!(" (and before that: {f})"),
                    Ok(_) => String::new(),
                };
                Err(Failure::Unwritten(format!(
                    "uploading the results to {} failed: {e}; the files are kept in {}{before}",
                    self.to,
                    self.staging.display()
                )))
            }
        }
    }
}

/// Uploads the files directly in `dir` (not its subdirectories: the bundled stack's data)
/// under `to`; returns their names.
pub async fn upload_dir(
    bucket: &ResultsBucket,
    dir: &Path,
    to: &S3Url,
) -> Result<Vec<String>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    // results.json last: a merge that finds it finds the shard's other files too.
    files.sort_by_key(|p| p.file_name().is_some_and(|n| n == "results.json"));
    let mut names = Vec::new();
    for path in files {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        bucket
            .put_file(&to.bucket, &to.key(name), &path)
            .await
            .map_err(|e| e.to_string())?;
        names.push(name.to_owned());
    }
    Ok(names)
}

/// One shard's files fetched from S3: the local `results.json` and where it came from.
pub struct Fetched {
    pub results: PathBuf,
    pub source: String,
}

/// Finds the results under `from` as a local merge finds them in a directory: `results.json`
/// at the prefix itself, else every `…/results.json` below it (at any depth, leaving out
/// `skip`, where the merge writes), and downloads each with its `latency.hlog` into numbered
/// directories under `into` (numbered, so no key can name a path outside it). `keep` reads
/// each downloaded `results.json` first: a result it turns down (another part's shards) is
/// dropped before its log, the bulk of the bytes, is fetched.
pub async fn fetch_results(
    bucket: &ResultsBucket,
    from: &S3Url,
    skip: Option<&S3Url>,
    into: &Path,
    keep: &mut dyn FnMut(&Path, &str) -> Result<bool, Failure>,
) -> Result<Vec<Fetched>, Failure> {
    let failed = |e: String| Failure::Invalid(format!("{from}: {e}"));
    let keys = bucket.list(from).await.map_err(|e| failed(e.to_string()))?;
    let own = from.key("results.json");
    let dirs: Vec<&str> = if keys.contains(&own) {
        vec![from.prefix.as_str()]
    } else {
        keys.iter()
            .filter_map(|k| k.strip_suffix("results.json"))
            .filter(|dir| dir.ends_with('/'))
            .filter(|dir| {
                skip.is_none_or(|s| s.bucket != from.bucket || !dir.starts_with(&s.prefix))
            })
            .collect()
    };
    let mut fetched = Vec::new();
    for (i, dir) in dirs.into_iter().enumerate() {
        let local = into.join(format!("{i:05}"));
        std::fs::create_dir_all(&local)
            .map_err(|e| failed(format!("cannot create {}: {e}", local.display())))?;
        let results = local.join("results.json");
        bucket
            .get_to_file(&from.bucket, &format!("{dir}results.json"), &results)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let source = from.url_of(dir);
        if !keep(&results, &source)? {
            let _ = std::fs::remove_dir_all(&local);
            continue;
        }
        let hlog = format!("{dir}latency.hlog");
        if keys.contains(&hlog) {
            bucket
                .get_to_file(&from.bucket, &hlog, &local.join("latency.hlog"))
                .await
                .map_err(|e| failed(e.to_string()))?;
        }
        fetched.push(Fetched { results, source });
    }
    Ok(fetched)
}
