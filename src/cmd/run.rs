//! `peakload run`: scenario → (stack) → engine → results, with one shutdown path.
//!
//! [`command`] validates the arguments and drives [`execute`] on a runtime with the process's
//! signals as its [`Shutdown`]; a test drives [`execute`] with a token instead. A run goes
//! through four phases: [`prepare`] (target check, compiled requests, threads, HDR log),
//! [`start`] (workers, the recorder, the observers, the dashboard), [`watch`] (until the plan
//! ends or a stop is requested) and [`finish`] (results, after-run sources, diagnosis, files).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use super::shutdown::Shutdown;
use super::stack;
use super::{exit, Failure, Outcome};
use crate::cli::{OutputFlags, RunCli};
use crate::engine::vu::Prepared;
use crate::engine::{spawn_workers, EngineConfig};
use crate::gate;
use crate::http::ClientOptions;
use crate::observe::scrape::LiveSignals;
use crate::observe::{RunObserver, RunWindow};
use crate::output::{self, artifacts, tui};
use crate::plan::{Plan, VuSchedule};
use crate::record::aggregate::{process_cpu_seconds, Aggregator, LiveView, RunTotals};
use crate::record::assemble::{build_results, FinishedRun};
use crate::record::hlog::HlogWriter;
use crate::scenario::{BaseUrl, Load, Scenario};
use crate::url::{redact_url, split_url, Origin};

/// How long the run waits for its after-run sources beyond their own limits (`settle`, then
/// each read within `[observe] source_timeout`) before it writes its results without them.
const AFTER_RUN_MARGIN: Duration = Duration::from_secs(30);

/// A run's settings besides the scenario, validated.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub target: Option<String>,
    pub out: Option<PathBuf>,
    pub threads: Option<usize>,
    pub drain: Duration,
    pub quiet: bool,
    /// Progress lines even when stdout is a terminal.
    pub no_tui: bool,
    pub insecure: bool,
    pub progress_every: Duration,
    pub outputs: OutputFlags,
}

/// `peakload run`: the scenario and `--threshold`s are checked before anything is sent.
pub fn command(args: RunCli) -> Result<Outcome, Failure> {
    let mut scenario = crate::scenario::load_scenario(&args.scenario).map_err(Failure::Scenario)?;
    for expr in &args.thresholds {
        let t = crate::scenario::parse_threshold(expr, &scenario)
            .map_err(|e| Failure::Invalid(format!("--threshold {expr:?}: {e}")))?;
        scenario.thresholds.push(t);
    }
    if let Some(t) = &args.target {
        split_url(t).map_err(|e| Failure::Invalid(format!("--target {t:?}: {e}")))?;
    }
    let options = RunOptions {
        target: args.target,
        out: args.out,
        threads: args.threads,
        drain: args.drain,
        quiet: args.quiet,
        no_tui: args.no_tui,
        insecure: args.insecure,
        progress_every: args.progress_every.max(Duration::from_millis(200)),
        outputs: args.outputs,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Aborted(format!("cannot start the runtime: {e}")))?;
    rt.block_on(async {
        let shutdown = Shutdown::from_signals()
            .map_err(|e| Failure::Aborted(format!("cannot watch SIGTERM: {e}")))?;
        execute(scenario, &options, shutdown).await
    })
}

/// Runs a scenario to its end or until `shutdown` asks to stop, and writes what it measured.
pub async fn execute(
    scenario: Scenario,
    options: &RunOptions,
    mut shutdown: Shutdown,
) -> Result<Outcome, Failure> {
    let started_wall = SystemTime::now();
    let out_dir = options.out.clone().unwrap_or_else(|| {
        let stamp = humantime::format_rfc3339_seconds(started_wall)
            .to_string()
            .replace([':', '-'], "");
        PathBuf::from("reports").join(format!("{}-{}", sanitize(&scenario.name), stamp))
    });
    std::fs::create_dir_all(&out_dir).map_err(|e| {
        Failure::Output(format!(
            "cannot create output directory {}: {e}",
            out_dir.display()
        ))
    })?;

    let mut stack_process = None;
    let base_url = match (&options.target, &scenario.base_url) {
        (Some(t), _) => t.trim_end_matches('/').to_string(),
        (None, BaseUrl::Url(u)) => u.clone(),
        (None, BaseUrl::Stack) => {
            let data = out_dir.join("stack-data");
            let _ = std::fs::create_dir_all(&data);
            if !options.quiet {
                eprintln!(
                    "starting the reference stack (log: {})",
                    out_dir.join("stack.log").display()
                );
            }
            let p = stack::start(&data, out_dir.join("stack.log"), &scenario.stack_args)
                .await
                .map_err(|e| Failure::Unreachable(e.to_string()))?;
            let url = p.base_url.clone();
            stack_process = Some(p);
            url
        }
    };
    let run = Run {
        scenario: &scenario,
        options,
        base_url: &base_url,
        out_dir: &out_dir,
        started_wall,
    };
    let result = run.go(&mut shutdown).await;
    if let Some(p) = stack_process {
        p.stop().await;
    }
    result
}

/// One run's fixed facts.
struct Run<'a> {
    scenario: &'a Scenario,
    options: &'a RunOptions,
    base_url: &'a str,
    out_dir: &'a Path,
    started_wall: SystemTime,
}

/// What [`prepare`] settles before the load starts.
struct Setup {
    prepared: Prepared,
    threads: usize,
    hlog: HlogWriter<Box<dyn Write + Send>>,
}

/// The load under way: workers, the recorder, the observers and the views.
struct Running {
    stop: CancellationToken,
    run_start: Instant,
    cpu_before: f64,
    threads: usize,
    workers: tokio::task::JoinHandle<()>,
    recorder: JoinHandle<RunTotals>,
    live: Arc<Mutex<LiveView>>,
    observer: RunObserver,
    dashboard: Option<tui::Dashboard>,
}

impl Run<'_> {
    async fn go(&self, shutdown: &mut Shutdown) -> Result<Outcome, Failure> {
        let setup = self.prepare().await?;
        let mut running = self.start(setup)?;
        let interrupted = self.watch(&mut running, shutdown).await;
        self.finish(running, interrupted, shutdown).await
    }

    /// Checks the target answers, compiles the requests, picks the threads and opens the HDR
    /// log.
    async fn prepare(&self) -> Result<Setup, Failure> {
        let base_url = self.base_url;
        let (origin, _) = split_url(base_url)
            .map_err(|e| Failure::Invalid(format!("target {base_url:?}: {e}")))?;
        preflight(&origin).await?;
        let prepared = Prepared::new(self.scenario, base_url).map_err(Failure::Invalid)?;
        let max_vus = match &self.scenario.load {
            Load::Open(o) => o.max_vus,
            Load::Closed(c) => VuSchedule::new(c).max_vus(),
        };
        let threads = self
            .options
            .threads
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            })
            .clamp(1, max_vus.max(1) as usize);
        let hlog_path = self.out_dir.join("latency.hlog");
        let hlog_file = std::fs::File::create(&hlog_path)
            .map_err(|e| Failure::Output(format!("cannot write {}: {e}", hlog_path.display())))?;
        let hlog = HlogWriter::new(
            Box::new(std::io::BufWriter::new(hlog_file)) as Box<dyn Write + Send>,
            SystemTime::now(),
        )
        .map_err(|e| Failure::Aborted(format!("cannot write the HDR log: {e}")))?;
        Ok(Setup {
            prepared,
            threads,
            hlog,
        })
    }

    /// Starts the recorder, the scrapers, the workers and the dashboard.
    fn start(&self, setup: Setup) -> Result<Running, Failure> {
        let scenario = self.scenario;
        let Setup {
            prepared,
            threads,
            hlog,
        } = setup;
        let step_tags: Vec<String> = scenario
            .journeys
            .iter()
            .flat_map(|j| {
                j.steps
                    .iter()
                    .map(move |s| format!("{}/{}", j.name, s.name))
            })
            .collect();
        let cpu_before = process_cpu_seconds();
        let run_start = Instant::now();
        let stop = CancellationToken::new();
        let config = Arc::new(EngineConfig {
            scenario: Arc::new(scenario.clone()),
            prepared: Arc::new(prepared),
            threads,
            run_start,
            stop: stop.clone(),
            drain: self.options.drain,
            client: ClientOptions::new(self.options.insecure)
                .with_max_response_headers(scenario.max_response_headers)
                .with_http_version(scenario.protocol.http_version),
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let aggregator = Aggregator::new(
            threads,
            Plan::new(&scenario.load),
            step_tags,
            scenario.journeys.len(),
            Some(hlog),
            run_start,
        );
        let live = aggregator.live();
        let recorder = std::thread::Builder::new()
            .name("peakload-recorder".into())
            .spawn(move || aggregator.run(rx))
            .map_err(|e| Failure::Aborted(format!("cannot start the recorder: {e}")))?;
        // Scraped signals shown live by the dashboard, when there are any.
        let live_signals: Option<LiveSignals> =
            (!scenario.observe.scrape.is_empty()).then(Default::default);
        let observer = RunObserver::start(
            &scenario.observe,
            self.base_url,
            run_start,
            self.options.insecure,
            live_signals.clone(),
        )
        .map_err(|e| Failure::Invalid(format!("[observe]: {e}")))?;
        let handles = spawn_workers(config, tx);
        let workers = tokio::task::spawn_blocking(move || {
            for w in handles {
                let _ = w.join();
            }
        });
        let options = self.options;
        if !options.quiet {
            eprintln!(
                "running {} against {} for {:?} on {} thread(s); results in {}",
                scenario.name,
                redact_url(self.base_url),
                scenario.load.duration(),
                threads,
                self.out_dir.display()
            );
        }
        let dashboard = if !options.quiet && !options.no_tui && std::io::stdout().is_terminal() {
            let feed = tui::DashboardFeed {
                spec: tui::DashboardSpec::from_scenario(scenario),
                live: live.clone(),
                run_start,
                stop: stop.clone(),
                signals: live_signals,
            };
            tui::Dashboard::start(feed)
                .map_err(|e| eprintln!("cannot start the dashboard ({e}); showing progress lines"))
                .ok()
        } else {
            None
        };
        Ok(Running {
            stop,
            run_start,
            cpu_before,
            threads,
            workers,
            recorder,
            live,
            observer,
            dashboard,
        })
    }

    /// Shows progress until the workers end; a stop request (signal, key) drains first, a
    /// second exits at once. Returns whether the run was stopped.
    async fn watch(&self, running: &mut Running, shutdown: &mut Shutdown) -> bool {
        let planned = self.scenario.load.duration();
        let open_model = matches!(self.scenario.load, Load::Open(_));
        let mut interrupted = false;
        let mut progress = tokio::time::interval(self.options.progress_every);
        progress.tick().await;
        loop {
            let drawing = running.dashboard.as_ref().is_some_and(|d| d.is_running());
            let quiet = self.options.quiet || drawing;
            tokio::select! {
                _ = &mut running.workers => break,
                () = shutdown.requested() => on_stop(&running.stop, &mut interrupted, quiet),
                () = stop_key(&mut running.dashboard) => on_stop(&running.stop, &mut interrupted, quiet),
                _ = progress.tick(), if !quiet => {
                    let view = running.live.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    eprintln!("{}", output::progress_line(&view, planned, open_model));
                }
            }
        }
        if let Some(d) = running.dashboard.take() {
            d.close();
        }
        interrupted
    }

    /// Results, thresholds, the after-run sources and the diagnosis; then every file.
    async fn finish(
        &self,
        running: Running,
        interrupted: bool,
        shutdown: &mut Shutdown,
    ) -> Result<Outcome, Failure> {
        let scenario = self.scenario;
        let totals = running
            .recorder
            .join()
            .map_err(|_| Failure::Aborted("the recorder failed".into()))?;
        let duration = running.run_start.elapsed();
        let cpu_s = process_cpu_seconds() - running.cpu_before;
        let mut results = build_results(&FinishedRun {
            scenario,
            base_url: self.base_url,
            totals: &totals,
            started: self.started_wall,
            duration,
            interrupted,
            threads: running.threads,
            cpu_s,
        });
        results.thresholds = gate::evaluate(&scenario.thresholds, &results);
        let observer = running.observer;
        if observer.reads_after_run() && !self.options.quiet {
            eprintln!(
                "reading the after-run sources (Prometheus, AWS){}; interrupt to skip them",
                if scenario.observe.settle.is_zero() {
                    String::new()
                } else {
                    format!(
                        " after waiting {} for them to settle",
                        humantime::format_duration(scenario.observe.settle)
                    )
                }
            );
        }
        // A stop request or a time limit skips the after-run sources; results are written
        // either way.
        let limit = observer.after_run_bound() + AFTER_RUN_MARGIN;
        let interrupt = async move {
            tokio::select! {
                () = shutdown.requested() => {}
                () = tokio::time::sleep(limit) => {}
            }
        };
        results.infra = observer
            .finish(RunWindow::from_results(&results), interrupt)
            .await;
        let diagnosis = results
            .infra
            .is_some()
            .then(|| crate::diagnose::apply(&mut results));
        let path = self.out_dir.join("results.json");
        results
            .save(&path)
            .map_err(|e| Failure::Aborted(e.to_string()))?;
        print!("{}", output::summary(&results));
        if let Some(d) = &diagnosis {
            print!("\n{}", crate::diagnose::render_text(d));
        }
        if let Some(infra) = results.infra.as_ref().filter(|i| !i.notes.is_empty()) {
            // A source that failed leaves the diagnosis blind to it: say so where it is read.
            println!("\n  observed-source notes:");
            for n in &infra.notes {
                println!("    {n}");
            }
        }
        println!("\n  results: {}", path.display());
        let files = artifacts::Artifacts {
            report: Some(self.out_dir.join("report.html")),
            also: self.options.outputs.clone(),
        };
        let written = artifacts::write(&results, None, &files);
        let write_failed = match written {
            Ok(files) => {
                for (what, p) in files {
                    println!("  {what}: {}", p.display());
                }
                None
            }
            Err(e) => Some(e),
        };
        if interrupted {
            if let Some(e) = write_failed {
                eprintln!("error: {e}");
            }
            return Ok(Outcome::Interrupted);
        }
        if let Some(e) = write_failed {
            return Err(Failure::Output(e.to_string()));
        }
        if results.thresholds.iter().any(|t| !t.ok) {
            return Ok(Outcome::ThresholdsCrossed);
        }
        Ok(Outcome::Success)
    }
}

/// A first stop request drains; a second exits at once.
fn on_stop(stop: &CancellationToken, interrupted: &mut bool, quiet: bool) {
    if *interrupted {
        tui::restore_terminal();
        eprintln!("second interrupt: exiting now");
        stack::kill_now();
        std::process::exit(exit::ABORTED);
    }
    *interrupted = true;
    stop.cancel();
    if !quiet {
        eprintln!("stopping: finishing in-flight requests, then writing results (interrupt again to exit at once)");
    }
}

/// A stop key pressed on the dashboard; never without one.
async fn stop_key(dashboard: &mut Option<tui::Dashboard>) {
    match dashboard {
        Some(d) => d.stop_requested().await,
        None => std::future::pending().await,
    }
}

/// Fails fast when nothing listens at the target, instead of a run full of errors.
async fn preflight(origin: &Origin) -> Result<(), Failure> {
    let addr = format!("{}:{}", origin.host, origin.port);
    let connect = tokio::net::TcpStream::connect((origin.host.as_str(), origin.port));
    match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(Failure::Unreachable(format!(
            "target unreachable: cannot connect to {addr}: {e}. Is the service running, and is --target / base_url right?"
        ))),
        Err(_) => Err(Failure::Unreachable(format!(
            "target unreachable: connecting to {addr} timed out after 10s"
        ))),
    }
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}
