//! The harness every integration test shares, so a new test is a few lines:
//!
//! - [`server`]: one HTTP target on `127.0.0.1:0` with the routes the tests need, which
//!   counts what it received.
//! - [`scenario`]: a scenario written from what differs ([`Scenario`], [`Journey`], [`Step`])
//!   into a temporary [`Case`] directory with its data files and an `out/` directory.
//! - [`process`]: the real binaries, run bounded in time, with exit code, stdout, stderr and
//!   `results.json` collected ([`Outcome`]); the documented exit codes ([`code`]).
//! - [`cpu`]: turns on the CPU, so runs whose figures depend on timing run alone.
//! - [`python`]: `results.json` against the committed JSON Schema, and Python readers
//!   (`hdrhistogram`, `junitparser`) of what peakload writes.
//! - [`chromium`], [`tmux`]: a real browser for the report, a real terminal for the dashboard.
//! - [`postgres`]: a schema of its own per test on the PostgreSQL server.
//! - [`stack`]: the bundled reference stack as its own process, and its fault switch.
//! - [`netns`]: separate hosts on this machine (network namespaces on a veth bridge).
//! - the AWS API emulator comes from `peakload_test_support` (`require_moto`).
//!
//! Every external tool the tests need is installed by `scripts/test`; a missing one fails the
//! test with the command that installs it.

#![allow(dead_code)]

pub mod chromium;
pub mod cpu;
pub mod netns;
pub mod postgres;
pub mod process;
pub mod python;
pub mod scenario;
pub mod server;
pub mod stack;
pub mod tmux;

pub use cpu::{exclusive_cpu, shared_cpu};
pub use process::{code, eventually, peakload, run, run_within, spawn, wait_until, Outcome};
pub use python::assert_valid_results;
pub use scenario::{Case, Journey, Scenario, Step};
pub use server::{Stall, TestServer};

use serde_json::Value;

/// The step named `name` in results.
pub fn step<'a>(results: &'a Value, name: &str) -> &'a Value {
    results["steps"]
        .as_array()
        .expect("steps array")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name:?} in results"))
}

/// The threshold written `expr` in results.
pub fn threshold<'a>(results: &'a Value, expr: &str) -> &'a Value {
    results["thresholds"]
        .as_array()
        .expect("thresholds array")
        .iter()
        .find(|t| t["expr"] == expr)
        .unwrap_or_else(|| panic!("no threshold {expr:?} in {}", results["thresholds"]))
}

pub fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("{v} is not an unsigned integer"))
}

pub fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"))
}

/// Where screenshots go: `PEAKLOAD_SCREENSHOTS` if set (to look at them), else `fallback`.
pub fn screenshots_dir(fallback: &std::path::Path) -> std::path::PathBuf {
    let dir = std::env::var_os("PEAKLOAD_SCREENSHOTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| fallback.to_owned());
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
