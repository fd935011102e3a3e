//! `peakload run`: scenario → (stack) → engine → results, with one shutdown path.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::engine::render::describe;
use crate::engine::vu::Prepared;
use crate::engine::{spawn_workers, stack, EngineConfig};
use crate::gate;
use crate::http::ClientOptions;
use crate::output;
use crate::plan::Plan;
use crate::record::aggregate::{kind_totals, process_cpu_seconds, Aggregator, RunTotals};
use crate::record::hlog::HlogWriter;
use crate::record::results::{
    encode_histogram, kinds_map, round3, GeneratorHealth, JourneyResult, LagStats, LatencyStats,
    Results, ScenarioInfo, StageInfo, StepResult, Summary, Tool, SCHEMA_VERSION,
};
use crate::scenario::{BaseUrl, Load, Scenario};
use crate::url::{redact_message, redact_path, redact_url, split_url, Origin};

/// How long the after-run sources may take, beyond `[observe] settle`, before the run writes
/// its results without them.
const AFTER_RUN_LIMIT: Duration = Duration::from_secs(180);

/// Documented exit codes (README, "Exit codes").
pub mod exit {
    pub const OK: i32 = 0;
    pub const THRESHOLDS: i32 = 1;
    pub const INVALID: i32 = 2;
    pub const ABORTED: i32 = 3;
    pub const UNREACHABLE: i32 = 4;
}

pub struct RunArgs {
    pub target: Option<String>,
    pub out: Option<PathBuf>,
    pub threads: Option<usize>,
    pub drain: Duration,
    pub quiet: bool,
    /// Progress lines even when stdout is a terminal.
    pub no_tui: bool,
    pub insecure: bool,
    pub progress_every: Duration,
    pub junit: Option<PathBuf>,
    pub summary_md: Option<PathBuf>,
}

/// A failure that ends the command with a given exit code and message.
#[derive(Debug)]
pub struct Exit {
    pub code: i32,
    pub message: String,
}

impl Exit {
    fn new(code: i32, message: impl Into<String>) -> Self {
        Exit {
            code,
            message: message.into(),
        }
    }
}

pub fn run(scenario: Scenario, args: RunArgs) -> Result<i32, Exit> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Exit::new(exit::ABORTED, format!("cannot start the runtime: {e}")))?;
    rt.block_on(run_async(scenario, args))
}

async fn run_async(scenario: Scenario, args: RunArgs) -> Result<i32, Exit> {
    let started_wall = SystemTime::now();
    let out_dir = args.out.clone().unwrap_or_else(|| {
        let stamp = humantime::format_rfc3339_seconds(started_wall)
            .to_string()
            .replace([':', '-'], "");
        PathBuf::from("reports").join(format!("{}-{}", sanitize(&scenario.name), stamp))
    });
    std::fs::create_dir_all(&out_dir).map_err(|e| {
        Exit::new(
            exit::INVALID,
            format!("cannot create output directory {}: {e}", out_dir.display()),
        )
    })?;

    let mut stack_process = None;
    let base_url = match (&args.target, &scenario.base_url) {
        (Some(t), _) => t.trim_end_matches('/').to_string(),
        (None, BaseUrl::Url(u)) => u.clone(),
        (None, BaseUrl::Stack) => {
            let data = out_dir.join("stack-data");
            let _ = std::fs::create_dir_all(&data);
            if !args.quiet {
                eprintln!(
                    "starting the reference stack (log: {})",
                    out_dir.join("stack.log").display()
                );
            }
            let p = stack::start(&data, out_dir.join("stack.log"), &scenario.stack_args)
                .await
                .map_err(|e| Exit::new(exit::UNREACHABLE, e.to_string()))?;
            let url = p.base_url.clone();
            stack_process = Some(p);
            url
        }
    };
    let result = run_against(&scenario, &args, &base_url, &out_dir, started_wall).await;
    if let Some(p) = stack_process {
        p.stop().await;
    }
    result
}

async fn run_against(
    scenario: &Scenario,
    args: &RunArgs,
    base_url: &str,
    out_dir: &Path,
    started_wall: SystemTime,
) -> Result<i32, Exit> {
    let (origin, _) = split_url(base_url)
        .map_err(|e| Exit::new(exit::INVALID, format!("target {base_url:?}: {e}")))?;
    preflight(&origin).await?;
    let prepared = Prepared::new(scenario, base_url).map_err(|e| Exit::new(exit::INVALID, e))?;

    let max_vus = match &scenario.load {
        Load::Open(o) => o.max_vus,
        Load::Closed(c) => crate::plan::VuSchedule::new(c).max_vus(),
    };
    let threads = args
        .threads
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
        .clamp(1, max_vus.max(1) as usize);
    let step_tags: Vec<String> = scenario
        .journeys
        .iter()
        .flat_map(|j| {
            j.steps
                .iter()
                .map(move |s| format!("{}/{}", j.name, s.name))
        })
        .collect();

    let hlog_path = out_dir.join("latency.hlog");
    let hlog_file = std::fs::File::create(&hlog_path).map_err(|e| {
        Exit::new(
            exit::INVALID,
            format!("cannot write {}: {e}", hlog_path.display()),
        )
    })?;
    let hlog = HlogWriter::new(
        Box::new(std::io::BufWriter::new(hlog_file)) as Box<dyn Write + Send>,
        SystemTime::now(),
    )
    .map_err(|e| Exit::new(exit::ABORTED, format!("cannot write the HDR log: {e}")))?;

    let cpu_before = process_cpu_seconds();
    let run_start = Instant::now();
    let stop = CancellationToken::new();
    let config = Arc::new(EngineConfig {
        scenario: Arc::new(scenario.clone()),
        prepared: Arc::new(prepared),
        threads,
        run_start,
        stop: stop.clone(),
        drain: args.drain,
        client: ClientOptions::new(args.insecure),
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let aggregator = Aggregator::new(
        threads,
        Plan::new(&scenario.load),
        step_tags.clone(),
        scenario.journeys.len(),
        Some(hlog),
        run_start,
    );
    let live = aggregator.live();
    let agg_thread = std::thread::Builder::new()
        .name("peakload-recorder".into())
        .spawn(move || aggregator.run(rx))
        .map_err(|e| Exit::new(exit::ABORTED, format!("cannot start the recorder: {e}")))?;
    // Scraped signals shown live by the dashboard, when there are any.
    let live_signals: Option<crate::observe::scrape::LiveSignals> =
        (!scenario.observe.scrape.is_empty()).then(Default::default);
    let observer = crate::observe::RunObserver::start(
        &scenario.observe,
        base_url,
        run_start,
        args.insecure,
        live_signals.clone(),
    )
    .map_err(|e| Exit::new(exit::INVALID, format!("[observe]: {e}")))?;
    let workers = spawn_workers(config.clone(), tx);
    let mut joined = tokio::task::spawn_blocking(move || {
        for w in workers {
            let _ = w.join();
        }
    });

    let planned = scenario.load.duration();
    if !args.quiet {
        eprintln!(
            "running {} against {} for {:?} on {} thread(s); results in {}",
            scenario.name,
            redact_url(base_url),
            planned,
            threads,
            out_dir.display()
        );
    }
    let mut dashboard = if !args.quiet && !args.no_tui && std::io::stdout().is_terminal() {
        let feed = output::tui::DashboardFeed {
            spec: output::tui::DashboardSpec::from_scenario(scenario),
            live: live.clone(),
            run_start,
            stop: stop.clone(),
            signals: live_signals.clone(),
        };
        output::tui::Dashboard::start(feed)
            .map_err(|e| eprintln!("cannot start the dashboard ({e}); showing progress lines"))
            .ok()
    } else {
        None
    };
    let mut interrupted = false;
    let mut progress = tokio::time::interval(args.progress_every);
    progress.tick().await;
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Exit::new(exit::ABORTED, format!("cannot watch SIGTERM: {e}")))?;
    loop {
        let drawing = dashboard.as_ref().is_some_and(|d| d.is_running());
        let quiet = args.quiet || drawing;
        tokio::select! {
            _ = &mut joined => break,
            _ = tokio::signal::ctrl_c() => on_signal(&stop, &mut interrupted, quiet),
            _ = sigterm.recv() => on_signal(&stop, &mut interrupted, quiet),
            _ = stop_key(&mut dashboard) => on_signal(&stop, &mut interrupted, quiet),
            _ = progress.tick(), if !quiet => {
                let view = live.lock().unwrap_or_else(|e| e.into_inner()).clone();
                eprintln!("{}", output::progress_line(&view, planned, matches!(scenario.load, Load::Open(_))));
            }
        }
    }
    if let Some(d) = dashboard.take() {
        d.close();
    }
    let totals = agg_thread
        .join()
        .map_err(|_| Exit::new(exit::ABORTED, "the recorder failed"))?;
    let duration = run_start.elapsed();
    let cpu_s = process_cpu_seconds() - cpu_before;
    let mut results = build_results(
        scenario,
        base_url,
        &totals,
        started_wall,
        duration,
        interrupted,
        threads,
        cpu_s,
    );
    results.thresholds = gate::evaluate(&scenario.thresholds, &results);
    if observer.reads_after_run() && !args.quiet {
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
    // A signal or a time limit skips the after-run sources; results are written either way.
    let limit = scenario.observe.settle + AFTER_RUN_LIMIT;
    let interrupt = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = sigterm.recv() => {}
            () = tokio::time::sleep(limit) => {}
        }
    };
    results.infra = observer
        .finish(crate::observe::RunWindow::from_results(&results), interrupt)
        .await;
    let diagnosis = results
        .infra
        .is_some()
        .then(|| crate::diagnose::apply(&mut results));
    let path = out_dir.join("results.json");
    let json = serde_json::to_vec_pretty(&results).expect("results serialize");
    std::fs::write(&path, json).map_err(|e| {
        Exit::new(
            exit::ABORTED,
            format!("cannot write {}: {e}", path.display()),
        )
    })?;
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
    let files = output::artifacts::Artifacts {
        report: Some(out_dir.join("report.html")),
        junit: args.junit.clone(),
        summary_md: args.summary_md.clone(),
    };
    let written = output::artifacts::write(&results, None, &files);
    let write_failed = match written {
        Ok(files) => {
            for (what, p) in files {
                println!("  {what}: {}", p.display());
            }
            false
        }
        Err(e) => {
            eprintln!("error: {e}");
            true
        }
    };
    if interrupted {
        return Ok(exit::ABORTED);
    }
    if write_failed {
        return Ok(exit::INVALID);
    }
    if results.thresholds.iter().any(|t| !t.ok) {
        return Ok(exit::THRESHOLDS);
    }
    Ok(exit::OK)
}

fn on_signal(stop: &CancellationToken, interrupted: &mut bool, quiet: bool) {
    if *interrupted {
        output::tui::restore_terminal();
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
async fn stop_key(dashboard: &mut Option<output::tui::Dashboard>) {
    match dashboard {
        Some(d) => d.stop_requested().await,
        None => std::future::pending().await,
    }
}

/// Fails fast when nothing listens at the target, instead of a run full of errors.
async fn preflight(origin: &Origin) -> Result<(), Exit> {
    let addr = format!("{}:{}", origin.host, origin.port);
    let connect = tokio::net::TcpStream::connect((origin.host.as_str(), origin.port));
    match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(Exit::new(
            exit::UNREACHABLE,
            format!("target unreachable: cannot connect to {addr}: {e}. Is the service running, and is --target / base_url right?"),
        )),
        Err(_) => Err(Exit::new(
            exit::UNREACHABLE,
            format!("target unreachable: connecting to {addr} timed out after 10s"),
        )),
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

#[allow(clippy::too_many_arguments)]
pub fn build_results(
    scenario: &Scenario,
    base_url: &str,
    totals: &RunTotals,
    started: SystemTime,
    duration: Duration,
    interrupted: bool,
    threads: usize,
    cpu_s: f64,
) -> Results {
    let secs = duration.as_secs_f64().max(1e-9);
    let mut steps = Vec::new();
    let mut flat = 0;
    for j in &scenario.journeys {
        for s in &j.steps {
            let c = &totals.steps[flat];
            flat += 1;
            steps.push(StepResult {
                journey: j.name.clone(),
                name: s.name.clone(),
                method: s.method.clone(),
                path: redact_path(&describe(&s.url, &j.vars)),
                requests: c.requests,
                errors: c.errors,
                error_rate: rate(c.errors, c.requests),
                rps: round3(c.requests as f64 / secs),
                checks: c.checks,
                checks_failed: c.checks_failed,
                errors_by_kind: kinds_map(&c.by_kind, false),
                latency_ms: LatencyStats::from_histogram(&c.latency),
                histogram: encode_histogram(&c.latency),
            });
        }
    }
    let journeys = scenario
        .journeys
        .iter()
        .zip(&totals.journeys)
        .map(|(j, c)| JourneyResult {
            name: j.name.clone(),
            weight: j.weight,
            iterations: c.requests,
            failed_iterations: c.errors,
            latency_ms: LatencyStats::from_histogram(&c.latency),
            histogram: encode_histogram(&c.latency),
        })
        .collect();
    let iterations: u64 = totals.journeys.iter().map(|c| c.requests).sum();
    let failed_iterations: u64 = totals.journeys.iter().map(|c| c.errors).sum();
    let o = &totals.overall;
    let (model, stages) = stage_infos(&scenario.load);
    let lag = &totals.schedule_lag;
    let schedule_lag_ms = if lag.is_empty() {
        LagStats::default()
    } else {
        LagStats {
            p50: round3(lag.value_at_quantile(0.5) as f64 / 1000.0),
            p99: round3(lag.value_at_quantile(0.99) as f64 / 1000.0),
            max: round3(lag.max() as f64 / 1000.0),
        }
    };
    let cpu_pct = cpu_s / secs * 100.0;
    let mut notes = Vec::new();
    let busy_seconds = totals
        .timeline
        .iter()
        .filter(|p| p.generator_cpu_pct >= 90.0 * threads as f64)
        .count();
    if busy_seconds * 5 > totals.timeline.len().max(1) {
        notes.push(format!(
            "the generator used ≥90% of its {threads} core(s) for {busy_seconds}s of the run: it may have limited the load; add cores or run distributed"
        ));
    }
    let lag_p99 = schedule_lag_ms.p99;
    // Late starts with VUs to spare are the generator's (or its machine's) doing; late starts
    // behind a full `max_vus` are the target's slowness, already counted in latency.
    let generator_late =
        model == "open" && lag_p99 > 10.0 && totals.arrivals_queued * 10 < totals.late_iterations;
    if generator_late {
        notes.push(format!(
            "arrivals started up to {lag_p99:.1} ms late (p99) with VUs to spare: the machine running peakload was short of CPU (the generator itself used {cpu_pct:.0}% of a core); latencies include that wait"
        ));
    }
    if totals.arrivals_queued > 0 {
        let max_vus = match &scenario.load {
            Load::Open(o) => o.max_vus,
            Load::Closed(_) => 0,
        };
        notes.push(format!(
            "{} arrivals found all {max_vus} VUs busy and waited for one: the target slowed down; the wait counts in their latency (raise max_vus to keep the arrival rate)",
            totals.arrivals_queued
        ));
    }
    if totals.dropped_iterations > 0 {
        notes.push(format!(
            "{} arrivals were dropped after waiting longer than max_lag for a free VU: the target was too slow for max_vus (raise max_vus to keep the rate)",
            totals.dropped_iterations
        ));
    }
    let kept_up = busy_seconds * 5 <= totals.timeline.len().max(1) && !generator_late;
    let ended = started + duration;
    let checks: u64 = totals.steps.iter().map(|c| c.checks).sum();
    let checks_failed: u64 = totals.steps.iter().map(|c| c.checks_failed).sum();
    let mut samples = totals.samples.clone();
    samples.sort_by_key(|s| s.kind);
    samples.dedup_by(|a, b| a.kind == b.kind && a.message == b.message);
    Results {
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: "peakload".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        scenario: ScenarioInfo {
            name: scenario.name.clone(),
            file: scenario.source_path.display().to_string(),
            target: redact_url(base_url),
            model: model.into(),
        },
        started_at: humantime::format_rfc3339_millis(started).to_string(),
        ended_at: humantime::format_rfc3339_millis(ended).to_string(),
        duration_s: round3(secs),
        status: if interrupted {
            "interrupted"
        } else {
            "completed"
        }
        .into(),
        summary: Summary {
            requests: o.requests,
            errors: o.errors,
            error_rate: rate(o.errors, o.requests),
            rps: round3(o.requests as f64 / secs),
            iterations,
            failed_iterations,
            checks,
            checks_failed,
            data_received_bytes: totals.bytes_in,
            data_sent_bytes: totals.bytes_out,
            latency_ms: LatencyStats::from_histogram(&o.latency),
            histogram: encode_histogram(&o.latency),
        },
        steps,
        journeys,
        timeline: totals.timeline.clone(),
        stages,
        dropped_iterations: totals.dropped_iterations,
        late_iterations: totals.late_iterations,
        arrivals_queued: totals.arrivals_queued,
        feeder_exhausted: totals.feeder_exhausted,
        interrupted_iterations: totals.interrupted_iterations,
        schedule_lag_ms,
        thresholds: Vec::new(),
        errors: kind_totals(o),
        error_samples: samples
            .into_iter()
            .map(|mut s| {
                s.message = redact_message(&s.message);
                s
            })
            .collect(),
        generator: GeneratorHealth {
            threads,
            cpu_s: round3(cpu_s),
            cpu_pct: (cpu_pct * 10.0).round() / 10.0,
            kept_up,
            notes,
        },
        infra: None,
        capacity: None,
        findings: Vec::new(),
    }
}

fn rate(errors: u64, requests: u64) -> f64 {
    if requests == 0 {
        0.0
    } else {
        (errors as f64 / requests as f64 * 1e6).round() / 1e6
    }
}

fn stage_infos(load: &Load) -> (&'static str, Vec<StageInfo>) {
    // (duration, target at its end, name) whichever the model.
    let (model, stages): (_, Vec<_>) = match load {
        Load::Open(o) => (
            "open",
            o.stages
                .iter()
                .map(|s| (s.duration, s.target_rps, &s.name))
                .collect(),
        ),
        Load::Closed(c) => (
            "closed",
            c.stages
                .iter()
                .map(|s| (s.duration, s.target_vus as f64, &s.name))
                .collect(),
        ),
    };
    let mut t = 0.0;
    let infos = stages
        .into_iter()
        .enumerate()
        .map(|(i, (duration, target, name))| {
            let start = t;
            t += duration.as_secs_f64();
            StageInfo {
                name: name.clone().unwrap_or_else(|| format!("stage {}", i + 1)),
                start_s: start,
                end_s: t,
                target,
            }
        })
        .collect();
    (model, infos)
}
