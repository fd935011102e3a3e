//! peakload: load testing and performance diagnosis.
//!
//! Data flows one way, and modules depend only on those before them in this list:
//!
//! `url` (URLs and their redaction) → `scenario` (TOML → validated model) → `plan` (schedules)
//! → `record` (HDR histograms, one aggregator, and the `results.json` contract: results,
//! infrastructure signals, findings) → `http` (the client) → `engine` (VUs) → `gate`
//! (thresholds) and `observe` (infrastructure sources) → `diagnose` (causes) → `output`
//! (summary, dashboard, report, JUnit, Markdown) → `cmd` (one module per command; exit codes
//! are decided there) → `cli` (clap definitions). `main` parses arguments and calls
//! [`cmd::main`]. `docs/architecture.md` draws it and says where each kind of change goes.

pub mod cli;
pub mod cmd;
pub mod diagnose;
pub mod engine;
pub mod gate;
pub mod http;
pub mod observe;
pub mod output;
pub mod plan;
pub mod record;
pub mod scenario;
pub mod url;
