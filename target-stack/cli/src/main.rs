//! `peakload-stack`: runs the reference stack (`all`, `api`, `worker`) or prints the seeded
//! users' feeder file (`users-csv`). Prints one readiness line on stdout; logs go to stderr.
//!
//! Flags and environment are read in two steps: clap's raw [`RunArgs`], then a validated
//! [`Plan`] (stack config, AWS backends, where the MySQL password comes from), which
//! [`run`] opens — through `peakload_stack_aws::open` when an AWS backend is configured —
//! and, when asked, exports to CloudWatch (metrics) and CloudWatch Logs (log lines).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use peakload_stack::{BackendConfig, Config, FaultSet, RedisConfig, Role, Stack, WorkerConfig};
use peakload_stack_aws::cloudwatch::{self, LogLines, LogShipper, MetricsPublisher};
use peakload_stack_aws::secrets::{PasswordSource, Secret};
use peakload_stack_aws::{AwsOptions, DynamoTables, Endpoints, SqsQueues};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

#[derive(Parser)]
#[command(
    name = "peakload-stack",
    version,
    about = "peakload's reference target stack"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// API and workers in one process.
    All(RunArgs),
    /// The HTTP API only.
    Api(RunArgs),
    /// The queue workers only (health, metrics and faults still served on --listen).
    Worker(RunArgs),
    /// Print the seeded users as CSV (the scenarios' feeder file).
    UsersCsv {
        #[arg(long, default_value_t = 1000)]
        seed_users: u32,
    },
}

#[derive(Args)]
struct RunArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// SQLite data directory (default: a new temporary directory, removed at exit).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Use MySQL/MariaDB at this URL instead of SQLite.
    #[arg(long, env = "PEAKLOAD_STACK_MYSQL_URL", hide_env_values = true)]
    mysql: Option<String>,
    /// Bearer token for /admin/faults (without one that endpoint answers 404).
    #[arg(long, env = "PEAKLOAD_STACK_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Fault: milliseconds added before every database operation.
    #[arg(long, default_value_t = 0)]
    db_latency_ms: u64,
    /// Fault: at most this many database operations at once.
    #[arg(long)]
    db_pool_size: Option<u32>,
    /// Fault: microseconds of busy CPU work per API request.
    #[arg(long, default_value_t = 0)]
    cpu_work_us: u64,
    /// Fault: fraction (0..1) of API requests answered 500.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Fault: workers claim nothing.
    #[arg(long)]
    worker_paused: bool,
    /// Fault: milliseconds added before each queued message is handled.
    #[arg(long, default_value_t = 0)]
    worker_delay_ms: u64,
    #[arg(long, default_value_t = 1000)]
    seed_users: u32,
    #[arg(long, default_value_t = 200)]
    seed_products: u32,
    /// Attempts before a notification is dead-lettered.
    #[arg(long, default_value_t = 5)]
    max_attempts: u32,
    /// First retry delay of a failed notification (doubled each time).
    #[arg(long, default_value_t = 500)]
    backoff_base_ms: u64,
    /// How long a claimed message stays leased to its worker.
    #[arg(long, default_value_t = 30_000)]
    lease_ms: u64,
    /// Items MultiVAC must learn before it answers.
    #[arg(long, default_value_t = 100)]
    multivac_threshold: u64,
    /// How long catalogue answers are cached (0 disables); with --redis, their TTL in Redis.
    #[arg(long, default_value_t = 1000)]
    catalogue_cache_ms: u64,
    /// Keep catalogue answers in Redis at this URL (redis://[user:password@]host[:port][/db])
    /// instead of in process.
    #[arg(
        long,
        value_name = "URL",
        env = "PEAKLOAD_STACK_REDIS_URL",
        hide_env_values = true
    )]
    redis: Option<String>,
    /// Prefix of every Redis key.
    #[arg(long, value_name = "PREFIX", env = "PEAKLOAD_STACK_REDIS_KEY_PREFIX", default_value = peakload_stack::RedisConfig::DEFAULT_KEY_PREFIX)]
    redis_key_prefix: String,
    /// Longest wait for a Redis command before the answer comes from the database.
    #[arg(long, default_value_t = 100)]
    redis_timeout_ms: u64,
    /// Database pool size (readers on SQLite; default 4 on SQLite, 16 on MySQL).
    #[arg(long)]
    db_max_connections: Option<u32>,
    /// Seconds allowed for in-flight work after a shutdown signal.
    #[arg(long, default_value_t = 30)]
    shutdown_grace_secs: u64,
    /// Log level on stderr: error, warn, info, debug.
    #[arg(long, default_value = "info")]
    log_level: tracing::Level,
    #[command(flatten)]
    aws: AwsArgs,
}

/// The AWS backends and secrets. Region and credentials come from the standard AWS chain.
#[derive(Args)]
struct AwsArgs {
    /// Read the MySQL password from this Secrets Manager secret (ARN or name): the plain
    /// password, or RDS-managed JSON {"username", "password"}.
    #[arg(
        long,
        value_name = "ARN|NAME",
        env = "PEAKLOAD_STACK_MYSQL_PASSWORD_SECRET"
    )]
    mysql_password_secret: Option<String>,
    /// Read the MySQL password from this SSM parameter (SecureString, decrypted).
    #[arg(
        long,
        value_name = "NAME",
        env = "PEAKLOAD_STACK_MYSQL_PASSWORD_PARAMETER"
    )]
    mysql_password_parameter: Option<String>,
    /// DynamoDB for sessions, carts, /app timestamps and notification status: the table-name
    /// prefix (tables `<prefix>-carts`, `-sessions`, `-timestamps`, `-notifications`).
    #[arg(long, value_name = "PREFIX", env = "PEAKLOAD_STACK_DYNAMODB_TABLE")]
    dynamodb_table: Option<String>,
    /// The carts table (default `<prefix>-carts`).
    #[arg(long, value_name = "NAME", env = "PEAKLOAD_STACK_DYNAMODB_CARTS_TABLE")]
    dynamodb_carts_table: Option<String>,
    /// The sessions table (default `<prefix>-sessions`).
    #[arg(
        long,
        value_name = "NAME",
        env = "PEAKLOAD_STACK_DYNAMODB_SESSIONS_TABLE"
    )]
    dynamodb_sessions_table: Option<String>,
    /// The /app timestamps table (default `<prefix>-timestamps`).
    #[arg(
        long,
        value_name = "NAME",
        env = "PEAKLOAD_STACK_DYNAMODB_TIMESTAMPS_TABLE"
    )]
    dynamodb_timestamps_table: Option<String>,
    /// The notification status table (default `<prefix>-notifications`).
    #[arg(
        long,
        value_name = "NAME",
        env = "PEAKLOAD_STACK_DYNAMODB_NOTIFICATIONS_TABLE"
    )]
    dynamodb_notifications_table: Option<String>,
    /// SQS for the notification queue (needs the MultiVAC queue, the DLQ and DynamoDB).
    #[arg(long, value_name = "URL", env = "PEAKLOAD_STACK_SQS_QUEUE_URL")]
    sqs_queue_url: Option<String>,
    /// The SQS queue for MultiVAC data.
    #[arg(long, value_name = "URL", env = "PEAKLOAD_STACK_MULTIVAC_QUEUE_URL")]
    multivac_queue_url: Option<String>,
    /// The SQS dead-letter queue.
    #[arg(long, value_name = "URL", env = "PEAKLOAD_STACK_DLQ_URL")]
    dlq_url: Option<String>,
    /// Endpoint of every AWS service (e.g. a local emulator).
    #[arg(long, value_name = "URL")]
    aws_endpoint: Option<String>,
    /// Endpoint of DynamoDB (overrides --aws-endpoint).
    #[arg(long, value_name = "URL")]
    dynamodb_endpoint: Option<String>,
    /// Endpoint of SQS (overrides --aws-endpoint).
    #[arg(long, value_name = "URL")]
    sqs_endpoint: Option<String>,
    /// Create missing DynamoDB tables, SQS queues and the CloudWatch log group at start
    /// (emulators, local runs).
    #[arg(long)]
    aws_create_resources: bool,
    /// Publish the /metrics signals to CloudWatch in this namespace (`PeakloadStack` when
    /// given without a value).
    #[arg(
        long,
        value_name = "NAMESPACE",
        env = "PEAKLOAD_STACK_CLOUDWATCH_NAMESPACE",
        num_args = 0..=1,
        default_missing_value = peakload_stack_aws::cloudwatch::DEFAULT_NAMESPACE
    )]
    cloudwatch_namespace: Option<String>,
    /// Seconds between two PutMetricData (under 60: high-resolution metrics).
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    cloudwatch_interval_secs: u64,
    /// The `Service` dimension of every published metric (default `peakload-stack-<role>`,
    /// as the Terraform ECS services are named).
    #[arg(long, value_name = "NAME", env = "PEAKLOAD_STACK_CLOUDWATCH_SERVICE")]
    cloudwatch_service: Option<String>,
    /// Ship the stack's log lines to this CloudWatch Logs group.
    #[arg(
        long,
        value_name = "GROUP",
        env = "PEAKLOAD_STACK_CLOUDWATCH_LOG_GROUP"
    )]
    cloudwatch_log_group: Option<String>,
    /// The log stream (default `<role>/<pid>-<random>`).
    #[arg(
        long,
        value_name = "NAME",
        env = "PEAKLOAD_STACK_CLOUDWATCH_LOG_STREAM"
    )]
    cloudwatch_log_stream: Option<String>,
    /// Endpoint of CloudWatch and CloudWatch Logs (overrides --aws-endpoint).
    #[arg(long, value_name = "URL")]
    cloudwatch_endpoint: Option<String>,
}

/// What to send to CloudWatch; validated from [`AwsArgs`].
struct CloudWatchPlan {
    namespace: Option<String>,
    interval: Duration,
    service: String,
    log_group: Option<String>,
    log_stream: String,
    endpoint: Option<String>,
    create_group: bool,
}

impl AwsArgs {
    fn cloudwatch(&self, role: Role) -> anyhow::Result<Option<CloudWatchPlan>> {
        let namespace = given(&self.cloudwatch_namespace).map(str::to_owned);
        let log_group = given(&self.cloudwatch_log_group).map(str::to_owned);
        if namespace.is_none() && log_group.is_none() {
            return Ok(None);
        }
        if self.cloudwatch_interval_secs == 0 {
            anyhow::bail!("--cloudwatch-interval-secs must be at least 1");
        }
        let service = given(&self.cloudwatch_service).map_or_else(
            || format!("peakload-stack-{}", role.as_str()),
            str::to_owned,
        );
        let log_stream = given(&self.cloudwatch_log_stream).map_or_else(
            || {
                format!(
                    "{}/{}-{:08x}",
                    role.as_str(),
                    std::process::id(),
                    fastrand::u32(..)
                )
            },
            str::to_owned,
        );
        Ok(Some(CloudWatchPlan {
            namespace,
            interval: Duration::from_secs(self.cloudwatch_interval_secs),
            service,
            log_group,
            log_stream,
            endpoint: given(&self.cloudwatch_endpoint)
                .or(given(&self.aws_endpoint))
                .map(str::to_owned),
            create_group: self.aws_create_resources,
        }))
    }
}

/// `Some(value)` unless unset or empty (an empty env var means unset).
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl AwsArgs {
    fn options(&self) -> anyhow::Result<AwsOptions> {
        let prefix = given(&self.dynamodb_table);
        let specific = [
            given(&self.dynamodb_carts_table),
            given(&self.dynamodb_sessions_table),
            given(&self.dynamodb_timestamps_table),
            given(&self.dynamodb_notifications_table),
        ];
        let dynamodb = if prefix.is_some() || specific.iter().any(Option::is_some) {
            let Some(prefix) =
                prefix.or_else(|| specific.iter().all(Option::is_some).then_some(""))
            else {
                anyhow::bail!("set --dynamodb-table PREFIX (or all four --dynamodb-*-table names)");
            };
            let mut tables = DynamoTables::with_prefix(prefix);
            let [carts, sessions, timestamps, notifications] = specific;
            for (slot, name) in [
                (&mut tables.carts, carts),
                (&mut tables.sessions, sessions),
                (&mut tables.timestamps, timestamps),
                (&mut tables.notifications, notifications),
            ] {
                if let Some(name) = name {
                    *slot = name.to_owned();
                }
            }
            Some(tables)
        } else {
            None
        };
        let urls = [
            given(&self.sqs_queue_url),
            given(&self.multivac_queue_url),
            given(&self.dlq_url),
        ];
        let sqs = match urls {
            [None, None, None] => None,
            [Some(n), Some(m), Some(d)] => Some(SqsQueues {
                notifications: n.to_owned(),
                multivac: m.to_owned(),
                dlq: d.to_owned(),
            }),
            _ => anyhow::bail!(
                "SQS needs all of --sqs-queue-url, --multivac-queue-url and --dlq-url"
            ),
        };
        if sqs.is_some() && dynamodb.is_none() {
            anyhow::bail!(
                "SQS needs DynamoDB too (the notifications' status lives there): set --dynamodb-table"
            );
        }
        Ok(AwsOptions {
            endpoints: Endpoints {
                all: given(&self.aws_endpoint).map(str::to_owned),
                dynamodb: given(&self.dynamodb_endpoint).map(str::to_owned),
                sqs: given(&self.sqs_endpoint).map(str::to_owned),
            },
            dynamodb,
            sqs,
            create_missing: self.aws_create_resources,
        })
    }

    /// At most one source; `env_password` is `PEAKLOAD_STACK_MYSQL_PASSWORD`.
    fn password_source(
        &self,
        env_password: Option<String>,
    ) -> anyhow::Result<Option<PasswordSource>> {
        let mut sources = Vec::new();
        if let Some(p) = env_password.filter(|p| !p.is_empty()) {
            sources.push(PasswordSource::Value(Secret::new(p)));
        }
        if let Some(id) = given(&self.mysql_password_secret) {
            sources.push(PasswordSource::SecretsManager(id.to_owned()));
        }
        if let Some(name) = given(&self.mysql_password_parameter) {
            sources.push(PasswordSource::Parameter(name.to_owned()));
        }
        if sources.len() > 1 {
            anyhow::bail!(
                "give the MySQL password one way only: PEAKLOAD_STACK_MYSQL_PASSWORD, \
                 --mysql-password-secret or --mysql-password-parameter"
            );
        }
        Ok(sources.pop())
    }
}

/// Everything `run` needs, validated.
struct Plan {
    config: Config,
    /// The temporary data directory to keep alive while the stack runs.
    temp_dir: Option<tempfile::TempDir>,
    aws: AwsOptions,
    /// Where the MySQL URL's password comes from, resolved at start.
    mysql_password: Option<PasswordSource>,
    cloudwatch: Option<CloudWatchPlan>,
}

impl RunArgs {
    fn plan(&self, role: Role, env_password: Option<String>) -> anyhow::Result<Plan> {
        let aws = self.aws.options()?;
        let cloudwatch = self.aws.cloudwatch(role)?;
        let mysql_password = self.aws.password_source(env_password)?;
        if mysql_password.is_some() && given(&self.mysql).is_none() {
            anyhow::bail!("a MySQL password source needs --mysql URL (PEAKLOAD_STACK_MYSQL_URL)");
        }
        let mut temp = None;
        let backend = match (&self.mysql, &self.data_dir) {
            (Some(url), _) if !url.is_empty() => BackendConfig::MySql { url: url.clone() },
            (_, Some(dir)) => BackendConfig::Sqlite {
                data_dir: dir.clone(),
            },
            _ => {
                let dir = tempfile::Builder::new()
                    .prefix("peakload-stack-")
                    .tempdir()
                    .context("creating a temporary data directory")?;
                let path = dir.path().to_owned();
                temp = Some(dir);
                BackendConfig::Sqlite { data_dir: path }
            }
        };
        let mut config = Config::with_backend(backend);
        config.role = role;
        config.admin_token = self.admin_token.clone();
        config.faults = FaultSet {
            db_latency_ms: self.db_latency_ms,
            db_pool_size: self.db_pool_size.filter(|n| *n > 0),
            cpu_work_us: self.cpu_work_us,
            error_rate: self.error_rate,
            worker_paused: self.worker_paused,
            worker_delay_ms: self.worker_delay_ms,
        };
        config.faults.validate().context("invalid fault flags")?;
        config.seed_users = self.seed_users;
        config.seed_products = self.seed_products;
        config.worker = WorkerConfig {
            max_attempts: self.max_attempts.max(1),
            backoff_base: Duration::from_millis(self.backoff_base_ms),
            lease: Duration::from_millis(self.lease_ms.max(100)),
            ..WorkerConfig::default()
        };
        config.multivac_threshold = self.multivac_threshold;
        config.catalogue_cache = Duration::from_millis(self.catalogue_cache_ms);
        if let Some(url) = given(&self.redis) {
            if self.catalogue_cache_ms == 0 {
                anyhow::bail!("--redis needs --catalogue-cache-ms > 0 (the TTL of its answers)");
            }
            config.redis = Some(RedisConfig {
                url: url.to_owned(),
                key_prefix: self.redis_key_prefix.clone(),
                timeout: Duration::from_millis(self.redis_timeout_ms.max(1)),
            });
        }
        config.db_max_connections = self.db_max_connections;
        config.shutdown_grace = Duration::from_secs(self.shutdown_grace_secs);
        Ok(Plan {
            config,
            temp_dir: temp,
            aws,
            mysql_password,
            cloudwatch,
        })
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (role, args) = match cli.command {
        Command::UsersCsv { seed_users } => {
            print!("{}", peakload_stack::seed::users_csv(seed_users));
            return ExitCode::SUCCESS;
        }
        Command::All(a) => (Role::All, a),
        Command::Api(a) => (Role::Api, a),
        Command::Worker(a) => (Role::Worker, a),
    };
    // Log lines go to stderr, and to CloudWatch Logs when a log group is given (the shipper
    // starts with the runtime; the layer only queues lines until then).
    let (cloudwatch_logs, log_lines) = if given(&args.aws.cloudwatch_log_group).is_some() {
        let (layer, lines) = peakload_stack_aws::cloudwatch::log_channel(50_000);
        (Some(layer), Some(lines))
    } else {
        (None, None)
    };
    tracing_subscriber::registry()
        .with(LevelFilter::from_level(args.log_level))
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .with_target(false),
        )
        .with(cloudwatch_logs)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("peakload-stack: error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(role, args, log_lines)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peakload-stack: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(role: Role, args: RunArgs, log_lines: Option<LogLines>) -> anyhow::Result<()> {
    let plan = args.plan(role, std::env::var("PEAKLOAD_STACK_MYSQL_PASSWORD").ok())?;
    let Plan {
        mut config,
        temp_dir: _temp_dir,
        aws,
        mysql_password,
        cloudwatch,
    } = plan;
    let mut backend = match &config.backend {
        BackendConfig::Sqlite { data_dir } => format!("sqlite in {}", data_dir.display()),
        BackendConfig::MySql { .. } => "mysql".to_owned(),
    };
    if !aws.is_empty() {
        backend = format!("{backend} + {}", aws.describe());
    }
    if config.redis.is_some() {
        backend = format!("{backend} + redis catalogue cache");
    }
    if let (Some(source), BackendConfig::MySql { url }) = (&mysql_password, &mut config.backend) {
        let endpoint = aws.endpoints.all.as_deref();
        let resolved = peakload_stack_aws::secrets::resolve_mysql_url(url, source, endpoint)
            .await
            .context("reading the MySQL password")?;
        *url = resolved.expose().to_owned();
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let stack = if aws.is_empty() {
        Stack::open(config).await.map_err(anyhow::Error::from)
    } else {
        peakload_stack_aws::open(config, &aws)
            .await
            .map_err(anyhow::Error::from)
    }
    .with_context(|| format!("opening the stack ({backend})"))?;
    // Stopped after the stack, so the last interval's metrics and the last lines are sent.
    let exporters_stop = CancellationToken::new();
    let exporters = match &cloudwatch {
        Some(plan) => start_cloudwatch(plan, &stack, log_lines, exporters_stop.clone()).await?,
        None => Vec::new(),
    };
    let addr = listener.local_addr()?;
    // Signals are watched before the ready line: a supervisor may send SIGTERM the moment it
    // reads it, and an unwatched SIGTERM would kill the stack without draining.
    use tokio::signal::unix::{signal, SignalKind};
    let signals = (
        signal(SignalKind::terminate())?,
        signal(SignalKind::interrupt())?,
        signal(SignalKind::hangup())?,
    );
    tracing::info!(role = role.as_str(), backend, "ready");
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "peakload-stack listening on http://{addr}")?;
        out.flush()?;
    }
    let shutdown = CancellationToken::new();
    tokio::spawn(watch_signals(signals, shutdown.clone()));
    let served = stack.serve(listener, shutdown).await;
    tracing::info!("stopped");
    exporters_stop.cancel();
    for task in exporters {
        if tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .is_err()
        {
            eprintln!("peakload-stack: CloudWatch export did not finish within 10 s");
        }
    }
    served?;
    Ok(())
}

/// Starts the metrics publisher and the log shipper the plan asks for.
async fn start_cloudwatch(
    plan: &CloudWatchPlan,
    stack: &Stack,
    log_lines: Option<LogLines>,
    stop: CancellationToken,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let (metrics_client, logs_client) = cloudwatch::clients(plan.endpoint.as_deref()).await;
    let mut tasks = Vec::new();
    if let (Some(group), Some(lines)) = (&plan.log_group, log_lines) {
        let shipper = LogShipper::start(
            logs_client,
            group,
            &plan.log_stream,
            plan.create_group,
            lines,
        )
        .await
        .with_context(|| format!("opening CloudWatch Logs group {group}"))?;
        tasks.push(tokio::spawn(shipper.run(stop.clone())));
        tracing::info!(
            group,
            stream = plan.log_stream,
            "shipping logs to CloudWatch Logs"
        );
    }
    if let Some(namespace) = &plan.namespace {
        let publisher = MetricsPublisher::new(
            metrics_client,
            stack.clone(),
            namespace,
            &plan.service,
            plan.interval,
        );
        tasks.push(tokio::spawn(publisher.run(stop)));
        tracing::info!(
            namespace,
            service = plan.service,
            interval_secs = plan.interval.as_secs(),
            "publishing metrics to CloudWatch"
        );
    }
    Ok(tasks)
}

/// First SIGTERM/Ctrl-C: graceful shutdown. Second: exit at once. SIGHUP (a closed terminal,
/// or peakload's death signal: Linux sends that once for each of the dying parent's threads the
/// stack is handed to, so it can come twice) only ever asks for the graceful shutdown.
async fn watch_signals(
    (mut term, mut int, mut hup): (
        tokio::signal::unix::Signal,
        tokio::signal::unix::Signal,
        tokio::signal::unix::Signal,
    ),
    shutdown: CancellationToken,
) {
    let mut asked = 0;
    loop {
        tokio::select! {
            _ = int.recv() => asked += 1,
            _ = term.recv() => asked += 1,
            _ = hup.recv() => {}
        }
        if asked < 2 {
            if !shutdown.is_cancelled() {
                tracing::info!("shutting down: draining in-flight work");
                shutdown.cancel();
            }
        } else {
            tracing::warn!("second signal: exiting now");
            std::process::exit(130);
        }
    }
}
