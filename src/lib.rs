//! peakload: load testing and performance diagnosis.
//!
//! Data flows `scenario` (TOML → validated model) → `plan` (schedules) → `engine` (VUs, HTTP)
//! → `record` (HDR histograms, one aggregator) → `results.json` and the HDR log → `output`
//! (summary) and `gate` (thresholds → exit code). `main` only parses arguments and maps
//! outcomes to the documented exit codes.

pub mod cli;
pub mod diagnose;
pub mod engine;
pub mod gate;
pub mod http;
pub mod observe;
pub mod output;
pub mod plan;
pub mod record;
pub mod run;
pub mod scenario;
pub mod url;

use run::{exit, RunArgs};

/// Runs the CLI and returns the process exit code.
pub fn main_with_args(cli: cli::Cli) -> i32 {
    match cli.command {
        cli::Command::Check { scenario } => match scenario::load_scenario(&scenario) {
            Ok(s) => {
                println!("{}", describe_plan(&s));
                exit::OK
            }
            Err(errors) => {
                eprint!("{errors}");
                eprintln!(
                    "{} problem(s) found; nothing was sent",
                    errors.diagnostics.len()
                );
                exit::INVALID
            }
        },
        cli::Command::Diagnose(args) => diagnose::command::run(args),
        cli::Command::Stack(cli::StackCommand::Up { args }) => stack_up(&args),
        cli::Command::Run(args) => {
            let mut s = match scenario::load_scenario(&args.scenario) {
                Ok(s) => s,
                Err(errors) => {
                    eprint!("{errors}");
                    eprintln!(
                        "{} problem(s) found; nothing was sent",
                        errors.diagnostics.len()
                    );
                    return exit::INVALID;
                }
            };
            for expr in &args.thresholds {
                match scenario::parse_threshold(expr, &s) {
                    Ok(t) => s.thresholds.push(t),
                    Err(e) => {
                        eprintln!("--threshold {expr:?}: {e}");
                        return exit::INVALID;
                    }
                }
            }
            if let Some(t) = &args.target {
                if let Err(e) = url::split_url(t) {
                    eprintln!("--target {t:?}: {e}");
                    return exit::INVALID;
                }
            }
            let run_args = RunArgs {
                target: args.target,
                out: args.out,
                threads: args.threads,
                drain: args.drain,
                quiet: args.quiet,
                no_tui: args.no_tui,
                insecure: args.insecure,
                progress_every: args
                    .progress_every
                    .max(std::time::Duration::from_millis(200)),
                junit: args.junit,
                summary_md: args.summary_md,
            };
            match run::run(s, run_args) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("error: {}", e.message);
                    e.code
                }
            }
        }
        cli::Command::Report(args) => {
            output::artifacts::report_command(output::artifacts::ReportArgs {
                results: args.results,
                output: args.output,
                baseline: args.baseline,
                junit: args.junit,
                summary_md: args.summary_md,
            })
        }
    }
}

/// `peakload stack up`: becomes the stack process (exec), so signals, stdio and the exit code
/// are the stack's own.
fn stack_up(args: &[std::ffi::OsString]) -> i32 {
    use std::os::unix::process::CommandExt as _;
    let Some(binary) = engine::stack::find_binary() else {
        eprintln!("error: the reference stack binary `peakload-stack` was not found next to peakload or on PATH; build it with `cargo build --release --workspace`");
        return run::exit::UNREACHABLE;
    };
    let e = std::process::Command::new(&binary)
        .arg("all")
        .args(args)
        .exec();
    eprintln!("error: cannot start {}: {e}", binary.display());
    run::exit::UNREACHABLE
}

/// What `peakload check` prints for a valid scenario.
pub fn describe_plan(s: &scenario::Scenario) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "{}: valid", s.source_path.display());
    let target = match &s.base_url {
        scenario::BaseUrl::Stack => "the bundled reference stack".to_string(),
        scenario::BaseUrl::Url(u) => url::redact_url(u),
    };
    let _ = writeln!(out, "  target: {target}");
    match &s.load {
        scenario::Load::Open(o) => {
            let plan = plan::ArrivalSchedule::new(o);
            let _ = writeln!(
                out,
                "  open model: {} stage(s), {:?}, {} planned iterations, max_vus {}",
                o.stages.len(),
                s.load.duration(),
                plan.total_arrivals(),
                o.max_vus
            );
        }
        scenario::Load::Closed(c) => {
            let _ = writeln!(
                out,
                "  closed model: {} stage(s), {:?}, up to {} VUs",
                c.stages.len(),
                s.load.duration(),
                plan::VuSchedule::new(c).max_vus()
            );
        }
    }
    for j in &s.journeys {
        let _ = writeln!(
            out,
            "  journey {} (weight {}): {} step(s)",
            j.name,
            j.weight,
            j.steps.len()
        );
        for st in &j.steps {
            let _ = writeln!(
                out,
                "    {} {} {}",
                st.name,
                st.method,
                engine::render::describe(&st.url, &j.vars)
            );
        }
    }
    for f in &s.feeders {
        let mode = match f.mode {
            scenario::FeedMode::Sequential => "sequential",
            scenario::FeedMode::Random => "random",
            scenario::FeedMode::Unique => "unique",
        };
        let _ = writeln!(out, "  feeder {}: {} rows ({mode})", f.name, f.rows.len());
    }
    for t in &s.thresholds {
        let _ = writeln!(out, "  threshold {}", t.expr);
    }
    out
}
