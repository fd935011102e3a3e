//! Integration tests of the reference stack: the real router on a loopback port, a real HTTP
//! client, real SQLite files and a real MariaDB (each test in its own database).
//!
//! Tests marked for both backends are generated twice by [`both_backends!`]: `…::sqlite` and
//! `…::mariadb`. MariaDB comes from `PEAKLOAD_TEST_MYSQL_URL` (default
//! `mysql://root@127.0.0.1:3306/test`); if it is unreachable those tests fail. The cache tests
//! need Redis at `PEAKLOAD_TEST_REDIS_URL` (default `redis://127.0.0.1:6379/`) and fail
//! without it.

mod common;

mod cache;
mod invariants;
mod ops;
mod overload;
mod services;

use peakload_test_support::both_backends;
