//! `peakload-stack`: runs the reference stack (`all`, `api`, `worker`) or prints the seeded
//! users' feeder file (`users-csv`). Prints one readiness line on stdout; logs go to stderr.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use peakload_stack::{BackendConfig, Config, FaultSet, Role, Stack, WorkerConfig};
use tokio_util::sync::CancellationToken;

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
    /// How long catalogue answers are cached (0 disables).
    #[arg(long, default_value_t = 1000)]
    catalogue_cache_ms: u64,
    /// Database pool size (readers on SQLite; default 4 on SQLite, 16 on MySQL).
    #[arg(long)]
    db_max_connections: Option<u32>,
    /// Seconds allowed for in-flight work after a shutdown signal.
    #[arg(long, default_value_t = 30)]
    shutdown_grace_secs: u64,
    /// Log level on stderr: error, warn, info, debug.
    #[arg(long, default_value = "info")]
    log_level: tracing::Level,
}

impl RunArgs {
    /// The config, and the temporary data directory to keep alive while it is used.
    fn config(&self, role: Role) -> anyhow::Result<(Config, Option<tempfile::TempDir>)> {
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
        config.db_max_connections = self.db_max_connections;
        config.shutdown_grace = Duration::from_secs(self.shutdown_grace_secs);
        Ok((config, temp))
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
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .with_max_level(args.log_level)
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
    match runtime.block_on(run(role, args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peakload-stack: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(role: Role, args: RunArgs) -> anyhow::Result<()> {
    let (config, _temp_dir) = args.config(role)?;
    let backend = match &config.backend {
        BackendConfig::Sqlite { data_dir } => format!("sqlite in {}", data_dir.display()),
        BackendConfig::MySql { .. } => "mysql".to_owned(),
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let stack = Stack::open(config)
        .await
        .with_context(|| format!("opening the stack ({backend})"))?;
    let addr = listener.local_addr()?;
    tracing::info!(role = role.as_str(), backend, "ready");
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "peakload-stack listening on http://{addr}")?;
        out.flush()?;
    }
    let shutdown = CancellationToken::new();
    tokio::spawn(watch_signals(shutdown.clone()));
    stack.serve(listener, shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

/// First SIGTERM/Ctrl-C: graceful shutdown. Second: exit at once.
async fn watch_signals(shutdown: CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM");
            return;
        }
    };
    for first in [true, false] {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        if first {
            tracing::info!("shutting down: draining in-flight work");
            shutdown.cancel();
        } else {
            tracing::warn!("second signal: exiting now");
            std::process::exit(130);
        }
    }
}
