//! Command-line arguments, parsed in two stages: clap's raw values here, validated objects in
//! the command functions.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use crate::plan::ShardSpec;
pub use crate::record::merge::ShardRange;

pub use crate::output::artifacts::OutputFlags;

#[derive(Debug, Parser)]
#[command(name = "peakload", version, about = "Load testing and performance diagnosis", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario file and write results, an HDR log and a summary.
    Run(RunCli),
    /// Diagnose a run offline: capacity, ranked signals and findings.
    Diagnose(DiagnoseCli),
    /// Validate a scenario file without sending any traffic.
    Check {
        /// The scenario file (TOML).
        scenario: PathBuf,
    },
    /// Make the HTML report (and optionally JUnit XML and a Markdown summary) from results.
    Report(ReportCli),
    /// Merge the shards of a distributed run (`run --shard I/N`) into the whole run's results.
    Merge(MergeCli),
    /// The bundled reference stack.
    #[command(subcommand)]
    Stack(StackCommand),
    /// Run history: record runs, import them, list, show, accept an intended change.
    #[command(subcommand)]
    History(HistoryCommand),
    /// Judge a run against the comparable runs recorded before it (regression gate).
    Gate(GateCli),
    /// Kubernetes: the manifests of a distributed run.
    #[command(subcommand)]
    K8s(K8sCommand),
}

#[derive(Debug, Subcommand)]
pub enum K8sCommand {
    /// Print the manifests of an N-shard run: a ConfigMap (scenario and feeder files), an
    /// Indexed Job (one pod per shard, started together), a suspended merge Job, and without
    /// --out-s3 a ReadWriteMany claim for the results. Pipe them to `kubectl apply -f -`.
    Render(K8sRenderCli),
}

#[derive(Debug, clap::Args)]
pub struct K8sRenderCli {
    /// The scenario file (TOML); its feeder files go into the ConfigMap with it.
    pub scenario: PathBuf,
    /// How many shards (pods) run the plan.
    #[arg(long)]
    pub shards: u32,
    /// The container image running `peakload` (the repository's Dockerfile).
    #[arg(long)]
    pub image: String,
    /// The load starts this long after rendering (every pod must be scheduled and have
    /// pulled the image by then): 90s, 5m.
    #[arg(long, default_value = "2m", value_parser = duration_arg)]
    pub start_in: std::time::Duration,
    /// Namespace of every object [default: none, kubectl's].
    #[arg(long)]
    pub namespace: Option<String>,
    /// Results to s3://bucket/prefix/ instead of a ReadWriteMany volume.
    #[arg(long, value_name = "S3_URL")]
    pub out_s3: Option<String>,
    /// The S3 endpoint the pods use (MinIO, an emulator) [default: AWS].
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// The pods' service account (for S3 access through IRSA or EKS Pod Identity).
    #[arg(long)]
    pub service_account: Option<String>,
    /// The service every shard loads, instead of the scenario's base_url (needed when that is
    /// "stack": each pod would start and load a bundled stack of its own).
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// CPU cores a shard requests (and its --threads), instead of the size worked out from the
    /// plan's peak rate and the measured cost per request.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub cpu: Option<u32>,
    /// Prefix of the objects' names [default: peakload-<scenario name>].
    #[arg(long)]
    pub name: Option<String>,
}

/// Where the run history is kept: a SQLite file (created when missing) or a
/// `postgres://user@host/db` URL.
#[derive(Debug, Clone, clap::Args)]
pub struct HistoryDb {
    /// History database: a SQLite file, or postgres://user@host:port/db.
    #[arg(
        long = "history",
        value_name = "DB",
        env = "PEAKLOAD_HISTORY",
        default_value = "peakload-history.db"
    )]
    pub db: String,
}

/// What a recorded run is labelled with.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunLabelsCli {
    /// Environment label; runs are compared only with runs of the same environment
    /// [default: default].
    #[arg(long, env = "PEAKLOAD_ENVIRONMENT")]
    pub environment: Option<String>,
    /// The commit the run was made from [default: $GITHUB_SHA, else $CI_COMMIT_SHA].
    #[arg(long)]
    pub commit: Option<String>,
}

/// Changes to the regression gate's defaults (docs/history.md).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GatePolicyCli {
    /// Change a gated metric's policy: METRIC:KEY=VALUE[,KEY=VALUE] with keys alpha,
    /// min_effect (e.g. 15%), min_absolute, min_history, confirm_runs; METRIC:off to not
    /// judge a metric (METRIC:on again); METRIC `*` for all (repeatable), e.g. --gate-policy
    /// "p99:min_effect=15%". Applied after the scenario's [gate].
    #[arg(long = "gate-policy", value_name = "METRIC:KEY=VALUE")]
    pub overrides: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// Record a results.json in the history.
    Add {
        results: PathBuf,
        #[command(flatten)]
        labels: RunLabelsCli,
        #[command(flatten)]
        db: HistoryDb,
    },
    /// Import runs from CSV: run_id,time,scenario,step,metric,value[,environment,commit].
    Import {
        file: PathBuf,
        /// Environment for rows without one [default: default].
        #[arg(long)]
        environment: Option<String>,
        #[command(flatten)]
        db: HistoryDb,
    },
    /// List recorded runs, oldest first.
    List {
        #[arg(long)]
        scenario: Option<String>,
        #[arg(long)]
        environment: Option<String>,
        /// The newest N runs.
        #[arg(long, default_value_t = 30)]
        limit: i64,
        #[command(flatten)]
        db: HistoryDb,
    },
    /// Show a run: its labels, its figures per step, and each gated metric's series up to it.
    Show {
        run: i64,
        /// How many runs of each series to print.
        #[arg(long, default_value_t = 12)]
        last: usize,
        #[command(flatten)]
        db: HistoryDb,
    },
    /// Accept an intended change: the gate's baseline starts at RUN from now on.
    Accept {
        run: i64,
        /// Take the acceptance back.
        #[arg(long)]
        undo: bool,
        #[command(flatten)]
        db: HistoryDb,
    },
}

#[derive(Debug, clap::Args)]
pub struct GateCli {
    /// A results.json to judge (without recording it); or use --run.
    pub results: Option<PathBuf>,
    /// A recorded run to judge against the runs recorded before it.
    #[arg(long, conflicts_with = "results")]
    pub run: Option<i64>,
    /// Judge with this scenario file's [gate] policy (as `run --history` does); --gate-policy
    /// still wins.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    #[command(flatten)]
    pub labels: RunLabelsCli,
    #[command(flatten)]
    pub policy: GatePolicyCli,
    #[command(flatten)]
    pub db: HistoryDb,
}

#[derive(Debug, Subcommand)]
pub enum StackCommand {
    /// Run the reference stack (API and workers) in the foreground until Ctrl-C.
    ///
    /// Every argument goes to `peakload-stack all`, e.g. `--listen 127.0.0.1:8080`,
    /// `--mysql URL`, `--dynamodb-endpoint URL`, `--sqs-endpoint URL`, `--admin-token T`, fault
    /// flags; `peakload stack up --help` lists them.
    #[command(disable_help_flag = true)]
    Up {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

#[derive(Debug, clap::Args)]
pub struct ReportCli {
    /// A results.json written by `peakload run`.
    pub results: PathBuf,
    /// Where to write the report [default: report.html next to RESULTS].
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Another run's results.json to compare with: overlaid on the charts, deltas per step.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    #[command(flatten)]
    pub outputs: OutputFlags,
}

#[derive(Debug, clap::Args)]
pub struct MergeCli {
    /// Shard directories, their results.json files, or a directory holding shard directories;
    /// or s3://bucket/prefix/ holding the shards' files (as `run --out s3://…` puts them).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Where to write the merged results.json, latency.hlog, report.html, junit.xml and
    /// summary.md: a directory, or s3://bucket/prefix/.
    #[arg(long)]
    pub out: PathBuf,
    /// The S3 endpoint for s3:// inputs and --out (an emulator, MinIO) [default: the AWS
    /// SDK's: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS].
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// The scenario file, to evaluate the thresholds again [default: the path the shards
    /// recorded, when it exists here].
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// Extra threshold, evaluated on the merged result (repeatable).
    #[arg(long = "threshold")]
    pub thresholds: Vec<String>,
    /// Merge only shards A to B (inclusive, e.g. 0-9) of those in the inputs, into a part for
    /// a final `peakload merge` of the parts: a two-level merge spread over machines. The
    /// other shards in the inputs are left out, so every part can read the same prefix. A part
    /// writes results.json and latency.hlog only; thresholds, the diagnosis and the report wait
    /// for the final merge, which also judges missing shards (a part exits 0 without them).
    #[arg(long, value_name = "A-B", value_parser = shard_range_arg,
          conflicts_with_all = ["thresholds", "scenario", "shards_per_part"])]
    pub shards: Option<ShardRange>,
    /// In a Kubernetes Indexed Job: merge part K = JOB_COMPLETION_INDEX, the shards K·N to
    /// K·N+N−1, as --shards does.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..),
          conflicts_with_all = ["thresholds", "scenario"])]
    pub shards_per_part: Option<u32>,
    #[command(flatten)]
    pub outputs: OutputFlags,
}

#[derive(Debug, clap::Args)]
pub struct RunCli {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
    /// Base URL that replaces the scenario's `base_url` (e.g. http://127.0.0.1:8080).
    #[arg(long)]
    pub target: Option<String>,
    /// Output directory [default: reports/<name>-<UTC timestamp>/], or s3://bucket/prefix/:
    /// the files are made locally, then uploaded there (a shard's under shard-I-of-N/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The S3 endpoint for --out s3://… (an emulator, MinIO) [default: the AWS SDK's:
    /// AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS].
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// Worker threads [default: the CPUs this process may use].
    #[arg(long, value_parser = threads_arg)]
    pub threads: Option<usize>,
    /// At the plan's end or after a stop request, how long iterations and requests in flight
    /// get to finish; what is still in flight then is recorded as cancelled.
    #[arg(long, default_value = "5s", value_parser = duration_arg)]
    pub drain: std::time::Duration,
    /// Extra threshold, as in the scenario's `thresholds` (repeatable).
    #[arg(long = "threshold")]
    pub thresholds: Vec<String>,
    /// Print only the final summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// Plain progress lines instead of the live dashboard.
    #[arg(long)]
    pub no_tui: bool,
    /// How often a progress line is printed when there is no dashboard (--no-tui, or stdout
    /// not a terminal), as a duration: 5s, 500ms, 1m.
    #[arg(long, default_value = "5s", value_parser = duration_arg)]
    pub progress_every: std::time::Duration,
    /// Accept any TLS certificate (self-signed test environments only).
    #[arg(long)]
    pub insecure: bool,
    /// Run slice I of N of the plan (e.g. 0/4): arrival k (open) or VU k (closed) is shard
    /// k mod N's, so N shards together run exactly the plan. Without it, inside a Kubernetes
    /// Indexed Job: JOB_COMPLETION_INDEX of PEAKLOAD_SHARD_COUNT.
    #[arg(long, value_parser = shard_arg)]
    pub shard: Option<ShardSpec>,
    /// Start the load at this absolute time (RFC 3339, e.g. 2026-11-27T09:00:00Z), so that
    /// every shard starts together; the run waits until then, ready.
    #[arg(long, value_parser = time_arg)]
    pub start_at: Option<std::time::SystemTime>,
    /// With --start-at: how late the load may start before the run refuses to start at all
    /// (a shard starting later would run a different test than the others).
    #[arg(long, default_value = "5s", value_parser = duration_arg)]
    pub start_tolerance: std::time::Duration,
    #[command(flatten)]
    pub outputs: OutputFlags,
    /// Record the run in this history (a SQLite file or a postgres:// URL) and judge it
    /// against the comparable runs recorded before it.
    #[arg(long, value_name = "DB", env = "PEAKLOAD_HISTORY")]
    pub history: Option<String>,
    #[command(flatten)]
    pub labels: RunLabelsCli,
    #[command(flatten)]
    pub gate_policy: GatePolicyCli,
}

#[derive(Debug, clap::Args)]
pub struct DiagnoseCli {
    /// A run's results.json (with the infrastructure signals it observed).
    pub results: Option<PathBuf>,
    /// Signals exported as CSV: first column time (Unix seconds or RFC 3339), one column per
    /// signal. With results, aligned to the run's start.
    #[arg(long)]
    pub metrics: Option<PathBuf>,
    /// With --metrics and no results: the column holding the users' metric (higher is worse).
    #[arg(long)]
    pub sli: Option<String>,
    /// Print {"findings": [...], "ranking": [...], ...} as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Store capacity and findings (and --metrics signals) back into the results file.
    #[arg(long)]
    pub write: bool,
}

fn threads_arg(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

fn shard_arg(s: &str) -> Result<ShardSpec, String> {
    ShardSpec::parse(s)
}

fn shard_range_arg(s: &str) -> Result<ShardRange, String> {
    ShardRange::parse(s)
}

/// RFC 3339: `2026-11-27T09:00:00Z`, fractions of a second and `+01:00`-style offsets allowed.
pub fn time_arg(s: &str) -> Result<std::time::SystemTime, String> {
    let bad = |e: &dyn std::fmt::Display| {
        format!("{s:?} is not an RFC 3339 time ({e}), e.g. 2026-11-27T09:00:00Z")
    };
    let t = s.trim();
    let (local, offset_s) = match t.len().checked_sub(6).map(|i| t.split_at(i)) {
        Some((head, tail))
            if (tail.starts_with('+') || tail.starts_with('-'))
                && tail.as_bytes()[3] == b':'
                && head.contains('T') =>
        {
            let h: i64 = tail[1..3].parse().map_err(|e| bad(&e))?;
            let m: i64 = tail[4..6].parse().map_err(|e| bad(&e))?;
            let sign = if tail.starts_with('-') { -1 } else { 1 };
            (format!("{head}Z"), sign * (h * 3600 + m * 60))
        }
        _ => (t.to_string(), 0),
    };
    let utc = humantime::parse_rfc3339(&local).map_err(|e| bad(&e))?;
    let shift = std::time::Duration::from_secs(offset_s.unsigned_abs());
    Ok(if offset_s >= 0 {
        utc - shift
    } else {
        utc + shift
    })
}

fn duration_arg(s: &str) -> Result<std::time::Duration, String> {
    crate::scenario::parse_duration(s)
}
