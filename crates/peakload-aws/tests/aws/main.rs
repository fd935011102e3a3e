//! Integration tests of the AWS sources: CloudWatch and CloudWatch Logs against the local AWS
//! API emulator `moto_server` (started by `scripts/test`; `PEAKLOAD_MOTO_URL`, default
//! `http://127.0.0.1:5055`) — never hand-written mocks — and scaling activities against
//! recorded API responses served over HTTP to the real SDK clients (`fixture_server`).
//! Each test uses its own namespaces, dimensions and log groups (random names).

mod common;
mod fixture_server;

mod config;
mod credentials;
mod deadlines;
mod end_to_end;
mod logs;
mod metrics;
mod scaling;
