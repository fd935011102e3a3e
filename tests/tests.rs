//! peakload's integration tests, in one binary (one link, one process): the harness in
//! [`util`], one module per area. Tests that load the CPU take turns through
//! [`util::cpu`], since they share this process.

mod util;

mod cli;
mod cloudwatch;
mod dashboard;
mod diagnose;
mod distributed;
mod distributed_hosts;
mod history;
mod library;
mod outside_faults;
mod property;
mod report;
