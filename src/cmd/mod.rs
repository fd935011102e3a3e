//! The commands: one module per subcommand, each turning validated arguments into an
//! [`Outcome`] or a [`Failure`]. The exit code is decided in one place, [`exit_code`], from those
//! typed values; nothing below this layer picks one.
//!
//! Data enters as the parsed [`Cli`] and leaves as messages on stdout/stderr and the process's
//! exit code (the README's "Exit codes" table is [`exit`]).

pub mod check;
pub mod diagnose;
pub mod history;
pub mod k8s;
pub mod merge;
pub mod report;
pub mod run;
pub mod s3;
pub mod shutdown;
pub mod stack;

#[cfg(test)]
mod tests;

use crate::cli::{Cli, Command, K8sCommand, StackCommand};
use crate::scenario::ScenarioErrors;

/// Documented exit codes (README, "Exit codes").
pub mod exit {
    pub const OK: i32 = 0;
    pub const THRESHOLDS: i32 = 1;
    /// A gated metric regressed against the run history: the same family as thresholds (the
    /// build should fail), told apart in the output.
    pub const REGRESSED: i32 = 1;
    pub const INVALID: i32 = 2;
    pub const ABORTED: i32 = 3;
    pub const UNREACHABLE: i32 = 4;
    pub const UNWRITTEN: i32 = 5;
    pub const START_MISSED: i32 = 6;
    pub const INCOMPLETE: i32 = 7;
}

/// How a command ended when it did what it was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// The run completed and at least one threshold was crossed.
    ThresholdsCrossed,
    /// The run was stopped (signal, key) and wrote what it had measured.
    Interrupted,
    /// A gated metric regressed against the comparable runs in the history (and no threshold
    /// was crossed).
    Regressed,
    /// Merged shards with one missing or failed: written, but not the planned test.
    Incomplete,
}

/// Why a command could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The scenario file has problems; nothing was sent.
    #[error("{0}{n} problem(s) found; nothing was sent", n = .0.diagnostics.len())]
    Scenario(ScenarioErrors),
    /// An argument or an input file is not usable; nothing was sent.
    #[error("error: {0}")]
    Invalid(String),
    /// An output could not be written.
    #[error("error: {0}")]
    Output(String),
    /// The target did not answer, or the bundled stack did not start.
    #[error("error: {0}")]
    Unreachable(String),
    /// The load was sent, but a file it should have left (results, HDR log, report, JUnit,
    /// Markdown) could not be written.
    #[error("error: the load was sent, but {0}")]
    Unwritten(String),
    /// The run could not go on (the runtime, the recorder).
    #[error("error: {0}")]
    Aborted(String),
    /// `--start-at` had passed by more than `--start-tolerance`; nothing was sent.
    #[error("error: {0}")]
    StartMissed(String),
}

/// The one mapping from how a command ended to the process's exit code.
pub fn exit_code(result: &Result<Outcome, Failure>) -> i32 {
    match result {
        Ok(Outcome::Success) => exit::OK,
        Ok(Outcome::ThresholdsCrossed) => exit::THRESHOLDS,
        Ok(Outcome::Interrupted) => exit::ABORTED,
        Ok(Outcome::Regressed) => exit::REGRESSED,
        Err(Failure::Scenario(_) | Failure::Invalid(_) | Failure::Output(_)) => exit::INVALID,
        Err(Failure::Aborted(_)) => exit::ABORTED,
        Err(Failure::Unreachable(_)) => exit::UNREACHABLE,
        Err(Failure::Unwritten(_)) => exit::UNWRITTEN,
        Ok(Outcome::Incomplete) => exit::INCOMPLETE,
        Err(Failure::StartMissed(_)) => exit::START_MISSED,
    }
}

/// Runs the command line and returns the process exit code.
pub fn main(cli: Cli) -> i32 {
    // Commands whose standard output is what was asked for: losing it is a failure. Elsewhere
    // (run, merge) the files are the result and the console only a courtesy.
    let stdout_is_the_result = matches!(
        cli.command,
        Command::Check { .. } | Command::Diagnose(_) | Command::History(_) | Command::K8s(_)
    );
    let result = match cli.command {
        Command::Check { scenario } => check::command(&scenario),
        Command::Run(args) => run::command(args),
        Command::Report(args) => report::command(args),
        Command::Diagnose(args) => diagnose::command(&args),
        Command::Merge(args) => merge::command(args),
        Command::Stack(StackCommand::Up { args }) => stack::up(&args),
        Command::History(cmd) => history::command(cmd),
        Command::Gate(args) => history::gate(args),
        Command::K8s(K8sCommand::Render(args)) => k8s::render(&args),
    };
    let result = match crate::output::console::out_error() {
        Some(e) if stdout_is_the_result && result.is_ok() => Err(Failure::Output(format!(
            "cannot write to standard output: {e}"
        ))),
        Some(e) => {
            crate::errln!("warning: standard output could not be written: {e}");
            result
        }
        None => result,
    };
    if let Err(e) = &result {
        crate::errln!("{e}");
    }
    exit_code(&result)
}
