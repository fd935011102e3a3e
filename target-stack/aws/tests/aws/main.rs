//! Integration tests of the AWS backends against the local AWS API emulator (`moto_server`,
//! started by `scripts/test`; `PEAKLOAD_MOTO_URL`, default `http://127.0.0.1:5055`) — never
//! against hand-written mocks. Each test uses its own tables and queues (random names).
//!
//! `invariants` is the core stack's own invariants file (`../tests/stack/invariants.rs`),
//! compiled here against [`common::start`], which opens the stack with DynamoDB and SQS in
//! front of the SQL store: the same load and the same checks (no oversell, exactly-once
//! delivery across a worker kill, every accepted `/app` write stored, no 500 for bad
//! input), on SQLite and on MariaDB for what stays in SQL. `overload` is the core stack's
//! overload by clients that give up, compiled here the same way.

mod common;

#[path = "../../../tests/stack/invariants.rs"]
mod invariants;
#[path = "../../../tests/stack/overload.rs"]
mod overload;

mod queues;
mod secrets;

use peakload_test_support::both_backends;
