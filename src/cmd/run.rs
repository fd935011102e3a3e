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
use crate::cli::{OutputFlags, RunCli, RunLabelsCli};
use crate::engine::vu::Prepared;
use crate::engine::{spawn_workers, EngineConfig};
use crate::gate;
use crate::history::policy::PolicyOverride;
use crate::http::ClientOptions;
use crate::observe::scrape::LiveSignals;
use crate::observe::{RunObserver, RunWindow};
use crate::output::{self, artifacts, tui};
use crate::plan::{ArrivalSchedule, Plan, ShardSpec, VuSchedule};
use crate::record::aggregate::{process_cpu_seconds, Aggregator, LiveView, RunTotals};
use crate::record::assemble::{build_results, FinishedRun};
use crate::record::hlog::HlogWriter;
use crate::record::results::{ShardAsked, ShardInfo};
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
    /// Which slice of the plan, and when to start it.
    pub shard: ShardOptions,
}

/// A distributed run's shard and synchronized start.
#[derive(Debug, Clone)]
pub struct ShardOptions {
    pub shard: ShardSpec,
    /// Start the load at this wall-clock time.
    pub start_at: Option<SystemTime>,
    /// How late after `start_at` the load may start; later, the run refuses to start.
    pub start_tolerance: Duration,
}

impl Default for ShardOptions {
    fn default() -> Self {
        ShardOptions {
            shard: ShardSpec::WHOLE,
            start_at: None,
            start_tolerance: Duration::from_secs(5),
        }
    }
}

impl ShardOptions {
    /// Whether results.json says which shard this is.
    fn recorded(&self) -> bool {
        !self.shard.is_whole() || self.start_at.is_some()
    }
}

/// `peakload run`: the scenario and `--threshold`s are checked before anything is sent.
pub fn command(args: RunCli) -> Result<Outcome, Failure> {
    let cli_policy = super::history::overrides(&args.gate_policy)?;
    let mut scenario = crate::scenario::load_scenario(&args.scenario).map_err(Failure::Scenario)?;
    // The scenario's [gate] first, so the command line wins.
    let gate_policy: Vec<PolicyOverride> = crate::history::policy::from_scenario(&scenario.gate)
        .into_iter()
        .chain(cli_policy)
        .collect();
    for expr in &args.thresholds {
        let t = crate::scenario::parse_threshold(expr, &scenario)
            .map_err(|e| Failure::Invalid(format!("--threshold {expr:?}: {e}")))?;
        scenario.thresholds.push(t);
    }
    if let Some(t) = &args.target {
        check_target(t)?;
    }
    let s3_out = match &args.out {
        Some(p) => super::s3::location(p)?,
        None => None,
    };
    // With a history, the results are read back from a known place to be recorded, and the
    // JUnit and Markdown files wait for the verdicts.
    let out = match (&args.out, &args.history) {
        (None, Some(_)) => Some(default_out_dir(&scenario.name, SystemTime::now())),
        _ => args.out,
    };
    let requested_files = args.outputs.clone();
    let outputs = match &args.history {
        Some(_) => OutputFlags::default(),
        None => args.outputs,
    };
    let shard = match args.shard {
        Some(s) => s,
        None => {
            let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
            ShardSpec::from_env(
                var(crate::plan::shard::INDEX_ENV).as_deref(),
                var(crate::plan::shard::COUNT_ENV).as_deref(),
            )
            .map_err(Failure::Invalid)?
            .unwrap_or(ShardSpec::WHOLE)
        }
    };
    if args.history.is_some() && shard != ShardSpec::WHOLE {
        return Err(Failure::Invalid(
            "--history records whole runs, not one shard: record the merged result with \
             `peakload history add MERGED/results.json`"
                .into(),
        ));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Aborted(format!("cannot start the runtime: {e}")))?;
    let upload = match s3_out {
        Some(to) => Some(rt.block_on(super::s3::RunUpload::prepare(
            super::s3::run_destination(&to, shard),
            args.s3_endpoint.as_deref(),
        ))?),
        None => None,
    };
    let options = RunOptions {
        target: args.target,
        // Under --out s3://…, the files are made in a staging directory, then uploaded.
        out: upload.as_ref().map(|u| u.staging.clone()).or(out),
        threads: args.threads,
        drain: args.drain,
        quiet: args.quiet,
        no_tui: args.no_tui,
        insecure: args.insecure,
        progress_every: args.progress_every.max(Duration::from_millis(200)),
        outputs,
        shard: ShardOptions {
            shard,
            start_at: args.start_at,
            start_tolerance: args.start_tolerance,
        },
    };
    let outcome = rt.block_on(async {
        let shutdown = Shutdown::from_signals()
            .map_err(|e| Failure::Aborted(format!("cannot watch SIGTERM: {e}")))?;
        execute(scenario, &options, shutdown).await
    });
    drop(rt);
    let outcome = match (outcome, &args.history, &options.out) {
        // The load was sent: a history or output that cannot be written now is exit 5, not 2.
        (Ok(outcome), Some(db), Some(out)) => record_after_run(
            outcome,
            db,
            out,
            &args.labels,
            &gate_policy,
            requested_files,
        )
        .map_err(|f| match f {
            Failure::Output(m) | Failure::Invalid(m) => Failure::Unwritten(m),
            other => other,
        }),
        (outcome, _, _) => outcome,
    };
    let Some(upload) = upload else {
        return outcome;
    };
    // A runtime of its own: the history's (sqlx) ran and ended in between.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Unwritten(format!("cannot start the runtime to upload: {e}")))?
        .block_on(upload.finish(outcome))
}

fn record_after_run(
    outcome: Outcome,
    db: &str,
    out: &Path,
    labels: &RunLabelsCli,
    gate_policy: &[PolicyOverride],
    requested_files: OutputFlags,
) -> Result<Outcome, Failure> {
    let results_path = out.join("results.json");
    // An interrupted run is a shorter test, not comparable with the history: not recorded.
    let gated = match outcome {
        Outcome::Success | Outcome::ThresholdsCrossed => Some(super::history::record_and_gate(
            &results_path,
            db,
            labels,
            gate_policy,
        )?),
        _ => None,
    };
    let results = crate::record::results::Results::load(&results_path)
        .map_err(|e| Failure::Output(e.to_string()))?;
    let files = artifacts::Artifacts {
        report: gated.map(|_| out.join("report.html")),
        also: requested_files,
    };
    match artifacts::write(&results, None, &files) {
        Ok(written) => {
            for (what, p) in written.iter().filter(|(what, _)| *what != "report") {
                crate::outln!("  {what}: {}", p.display());
            }
        }
        Err(e) => return Err(Failure::Output(e.to_string())),
    }
    Ok(match (outcome, gated) {
        (Outcome::Success, Some(gated)) => gated,
        _ => outcome,
    })
}

/// `reports/<name>-<UTC timestamp>/`.
fn default_out_dir(name: &str, at: SystemTime) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(at)
        .to_string()
        .replace([':', '-'], "");
    PathBuf::from("reports").join(format!("{}-{}", sanitize(name), stamp))
}

/// Runs a scenario to its end or until `shutdown` asks to stop, and writes what it measured.
pub async fn execute(
    scenario: Scenario,
    options: &RunOptions,
    mut shutdown: Shutdown,
) -> Result<Outcome, Failure> {
    let out_dir = options
        .out
        .clone()
        .unwrap_or_else(|| default_out_dir(&scenario.name, SystemTime::now()));
    let made = artifacts::missing_dirs(&out_dir);
    let result = execute_in(scenario, options, &mut shutdown, &out_dir).await;
    if result.is_err() {
        // Only when empty: an aborted run's files, or the stack's log, stay.
        artifacts::remove_empty_dirs(&made);
    }
    result
}

async fn execute_in(
    scenario: Scenario,
    options: &RunOptions,
    shutdown: &mut Shutdown,
    out_dir: &Path,
) -> Result<Outcome, Failure> {
    std::fs::create_dir_all(out_dir).map_err(|e| {
        Failure::Output(format!(
            "cannot create output directory {}: {e}",
            out_dir.display()
        ))
    })?;
    // Every output must be writable before anything is sent.
    artifacts::check_writable(out_dir, &options.outputs)
        .map_err(|e| Failure::Output(format!("{e}; nothing was sent")))?;

    let mut stack_process = None;
    let base_url = match (&options.target, &scenario.base_url) {
        (Some(t), _) => t.trim_end_matches('/').to_string(),
        // Every step has an absolute URL: the first one's origin is the target checked.
        (None, BaseUrl::Url(u)) if u.is_empty() => {
            first_step_origin(&scenario).ok_or_else(|| {
                Failure::Invalid(
                    "the scenario has no base_url and its first step's URL is built from \
                 variables; add base_url or pass --target"
                        .into(),
                )
            })?
        }
        (None, BaseUrl::Url(u)) => u.clone(),
        (None, BaseUrl::Stack) => {
            let data = out_dir.join("stack-data");
            let _ = std::fs::create_dir_all(&data);
            if !options.quiet {
                crate::errln!(
                    "starting the reference stack (log: {})",
                    out_dir.join("stack.log").display()
                );
            }
            let p = stack::start(&data, out_dir.join("stack.log"), &scenario.stack_args)
                .await
                .map_err(|e| match e {
                    // An output that cannot be written, found before anything was sent.
                    stack::StackError::Log { .. } => {
                        Failure::Output(format!("{e}; nothing was sent"))
                    }
                    e => Failure::Unreachable(e.to_string()),
                })?;
            let url = p.base_url.clone();
            stack_process = Some(p);
            url
        }
    };
    let run = Run {
        scenario: &scenario,
        options,
        base_url: &base_url,
        out_dir,
    };
    let result = run.go(shutdown).await;
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
    /// The wall-clock time of `run_start`: what merged shards are aligned by.
    started_wall: SystemTime,
    cpu_before: f64,
    threads: usize,
    /// Ends with why a worker thread failed, if one did.
    workers: tokio::task::JoinHandle<Option<String>>,
    worker_failure: Option<String>,
    recorder: JoinHandle<RunTotals>,
    live: Arc<Mutex<LiveView>>,
    observer: RunObserver,
    dashboard: Option<tui::Dashboard>,
}

impl Run<'_> {
    async fn go(&self, shutdown: &mut Shutdown) -> Result<Outcome, Failure> {
        let setup = self.prepare().await?;
        self.wait_for_start(shutdown).await?;
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
        let shard = self.options.shard.shard;
        let prepared = Prepared::new(self.scenario, base_url)
            .map_err(Failure::Invalid)?
            .with_shard(shard);
        let max_vus = match &self.scenario.load {
            Load::Open(o) => shard.share(o.max_vus as u64) as u32,
            Load::Closed(c) => shard.max_vus(&VuSchedule::new(c)),
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

    /// With `--start-at`: waits, ready, until then. A start already later than the tolerance is
    /// refused: this shard would run a different test from the others.
    async fn wait_for_start(&self, shutdown: &mut Shutdown) -> Result<(), Failure> {
        let ShardOptions {
            shard,
            start_at: Some(at),
            start_tolerance,
        } = &self.options.shard
        else {
            return Ok(());
        };
        let at_text = humantime::format_rfc3339_millis(*at);
        match at.duration_since(SystemTime::now()) {
            Ok(wait) => {
                if !self.options.quiet {
                    crate::errln!(
                        "shard {shard}: ready; starting at {at_text} (in {})",
                        humantime::format_duration(Duration::from_millis(wait.as_millis() as u64))
                    );
                }
                tokio::select! {
                    () = tokio::time::sleep(wait) => Ok(()),
                    () = shutdown.requested() => Err(Failure::Aborted(format!(
                        "shard {shard}: stopped while waiting for --start-at {at_text}; nothing was sent"
                    ))),
                }
            }
            Err(e) if e.duration() > *start_tolerance => Err(Failure::StartMissed(format!(
                "shard {shard}: --start-at {at_text} passed {} ago, more than --start-tolerance {}; \
                 not starting, since a late shard would run a different test from the others \
                 (nothing was sent)",
                humantime::format_duration(Duration::from_millis(e.duration().as_millis() as u64)),
                humantime::format_duration(*start_tolerance),
            ))),
            Err(_) => Ok(()),
        }
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
        let started_wall = SystemTime::now();
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
            Plan::sharded(&scenario.load, self.options.shard.shard),
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
        let workers = tokio::task::spawn_blocking(move || join_workers(handles));
        let options = self.options;
        if !options.quiet {
            crate::errln!(
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
                .map_err(|e| {
                    crate::errln!("cannot start the dashboard ({e}); showing progress lines")
                })
                .ok()
        } else {
            None
        };
        Ok(Running {
            stop,
            run_start,
            started_wall,
            cpu_before,
            threads,
            workers,
            worker_failure: None,
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
                joined = &mut running.workers => {
                    running.worker_failure = match joined {
                        Ok(failure) => failure,
                        Err(e) => Some(e.to_string()),
                    };
                    break;
                }
                () = shutdown.requested() => on_stop(&running.stop, &mut interrupted, quiet),
                () = stop_key(&mut running.dashboard) => on_stop(&running.stop, &mut interrupted, quiet),
                _ = progress.tick(), if !quiet => {
                    let view = running.live.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    crate::errln!("{}", output::progress_line(&view, planned, open_model));
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
            started: running.started_wall,
            duration,
            interrupted,
            threads: running.threads,
            cpu_s,
        });
        if self.options.shard.recorded() {
            results.shard = Some(shard_info(
                scenario,
                &self.options.shard,
                running.started_wall,
            ));
        }
        results.thresholds = gate::evaluate(&scenario.thresholds, &results);
        let observer = running.observer;
        if observer.reads_after_run() && !self.options.quiet {
            crate::errln!(
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
        // What could not be written after the load; the rest is still written and shown.
        let mut unwritten: Vec<String> = totals.hlog_error.iter().cloned().collect();
        let saved = results.save(&path);
        if let Err(e) = &saved {
            unwritten.push(e.to_string());
        }
        crate::out!("{}", output::summary(&results));
        if let Some(d) = &diagnosis {
            crate::out!("\n{}", crate::diagnose::render_text(d));
        }
        if let Some(infra) = results.infra.as_ref().filter(|i| !i.notes.is_empty()) {
            // A source that failed leaves the diagnosis blind to it: say so where it is read.
            crate::outln!("\n  observed-source notes:");
            for n in &infra.notes {
                crate::outln!("    {n}");
            }
        }
        if saved.is_ok() {
            crate::outln!("\n  results: {}", path.display());
        }
        let files = artifacts::Artifacts {
            report: Some(self.out_dir.join("report.html")),
            also: self.options.outputs.clone(),
        };
        let written = artifacts::write(&results, None, &files);
        match written {
            Ok(files) => {
                for (what, p) in files {
                    crate::outln!("  {what}: {}", p.display());
                }
            }
            Err(e) => unwritten.push(e.to_string()),
        }
        if !unwritten.is_empty() {
            if let Some(why) = &running.worker_failure {
                unwritten.push(format!("the run was aborted: {why}"));
            }
            // Exit 3 and 0 promise that what was measured is written: not so here.
            return Err(Failure::Unwritten(unwritten.join("; ")));
        }
        if let Some(why) = running.worker_failure {
            // The load stopped short of its plan: never a completed run, whatever it measured.
            return Err(Failure::Aborted(format!(
                "the run was aborted: {why}; what was measured is written in {}",
                path.display()
            )));
        }
        if interrupted {
            return Ok(Outcome::Interrupted);
        }
        if results.thresholds.iter().any(|t| !t.ok) {
            if !self.options.shard.shard.is_whole() {
                // A slice's counts and tails are not the scenario's: `iterations == 240` fails
                // on every shard of four that ran its 60. The merge judges the whole; a shard
                // that failed here would also mark its Job index failed.
                crate::outln!(
                    "  thresholds: judged on the merged result (peakload merge); a shard's own \
                     figures are its slice only"
                );
                return Ok(Outcome::Success);
            }
            return Ok(Outcome::ThresholdsCrossed);
        }
        Ok(Outcome::Success)
    }
}

/// Waits for every worker thread; a panic in any is said (with its message), so the run
/// ends as aborted instead of completed.
pub(crate) fn join_workers(handles: Vec<JoinHandle<()>>) -> Option<String> {
    let mut failures = Vec::new();
    for w in handles {
        let name = w.thread().name().unwrap_or("a worker").to_string();
        if let Err(panic) = w.join() {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            failures.push(format!("{name} failed ({what})"));
        }
    }
    (!failures.is_empty()).then(|| failures.join("; "))
}

/// `scheme://host:port` of the first step's URL, when its literal start names it.
fn first_step_origin(scenario: &Scenario) -> Option<String> {
    let step = scenario.journeys.first()?.steps.first()?;
    let Some(crate::scenario::Part::Lit(head)) = step.url.parts.first() else {
        return None;
    };
    let (origin, _) = split_url(head).ok()?;
    Some(format!(
        "{}://{}",
        if origin.tls { "https" } else { "http" },
        origin.host_header()
    ))
}

/// What this shard was asked to run, and how late it started.
fn shard_info(scenario: &Scenario, options: &ShardOptions, started: SystemTime) -> ShardInfo {
    let shard = options.shard;
    let planned_s = scenario.load.duration().as_secs_f64();
    let asked = match &scenario.load {
        Load::Open(o) => {
            let schedule = ArrivalSchedule::new(o);
            let arrivals = shard.arrivals(&schedule);
            ShardAsked {
                arrivals: Some(arrivals),
                plan_arrivals: Some(schedule.total_arrivals()),
                rps: (planned_s > 0.0)
                    .then(|| crate::record::results::round3(arrivals as f64 / planned_s)),
                max_vus: shard.share(o.max_vus as u64) as u32,
                plan_max_vus: o.max_vus,
            }
        }
        Load::Closed(c) => {
            let schedule = VuSchedule::new(c);
            ShardAsked {
                arrivals: None,
                plan_arrivals: None,
                rps: None,
                max_vus: shard.max_vus(&schedule),
                plan_max_vus: schedule.max_vus(),
            }
        }
    };
    let late_start_ms = options.start_at.map(|at| match started.duration_since(at) {
        Ok(late) => crate::record::results::round3(late.as_secs_f64() * 1000.0),
        Err(early) => -crate::record::results::round3(early.duration().as_secs_f64() * 1000.0),
    });
    ShardInfo {
        index: shard.index,
        count: shard.count,
        asked,
        start_at: options
            .start_at
            .map(|t| humantime::format_rfc3339_millis(t).to_string()),
        late_start_ms,
    }
}

/// A first stop request drains; a second exits at once.
fn on_stop(stop: &CancellationToken, interrupted: &mut bool, quiet: bool) {
    if *interrupted {
        tui::restore_terminal();
        crate::errln!("second interrupt: exiting now");
        stack::kill_now();
        std::process::exit(exit::ABORTED);
    }
    *interrupted = true;
    stop.cancel();
    if !quiet {
        crate::errln!("stopping: finishing in-flight requests, then writing results (interrupt again to exit at once)");
    }
}

/// A stop key pressed on the dashboard; never without one.
async fn stop_key(dashboard: &mut Option<tui::Dashboard>) {
    match dashboard {
        Some(d) => d.stop_requested().await,
        None => std::future::pending().await,
    }
}

/// A `--target` URL that can be sent to; not echoed in the error, as it may hold credentials.
pub(super) fn check_target(target: &str) -> Result<(), Failure> {
    split_url(target).map_err(|e| Failure::Invalid(format!("--target: {e}")))?;
    Ok(())
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
