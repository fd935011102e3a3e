//! A stack on DynamoDB + SQS in moto (plus SQLite or a fresh MariaDB database for what stays
//! in SQL) on a loopback port, and helpers to talk to it — the same interface as the core
//! stack's `tests/stack/common.rs`, so its invariants file runs here unchanged.

use peakload_stack::{Config, Stack};
use peakload_stack_aws::{AwsOptions, DynamoTables, Endpoints, SqsQueues};
use peakload_test_support::{require_moto, unique};
#[path = "../../../tests/support/backend.rs"]
mod backend;
#[path = "../../../tests/support/client.rs"]
mod client;
#[allow(unused_imports)]
pub use backend::{sql_backend, test_config, Db, DbGuard, ADMIN_TOKEN};
#[allow(unused_imports)]
pub use client::{Answer, Served};

/// Tables and queues with a fresh random prefix, created in moto at start.
pub async fn fresh_aws() -> AwsOptions {
    let moto = require_moto();
    let prefix = unique("t");
    let queue = |q: &str| format!("{moto}/123456789012/{prefix}-{q}");
    AwsOptions {
        endpoints: Endpoints {
            all: Some(moto.clone()),
            ..Endpoints::default()
        },
        dynamodb: Some(DynamoTables::with_prefix(&prefix)),
        sqs: Some(SqsQueues {
            notifications: queue("notifications"),
            multivac: queue("multivac"),
            dlq: queue("dlq"),
        }),
        create_missing: true,
    }
}

/// A stack serving on a loopback port.
pub struct TestStack {
    pub served: Served,
    pub stack: Stack,
    #[allow(dead_code)]
    pub aws: AwsOptions,
    _db: DbGuard,
}

pub async fn start(db: Db, tweak: impl FnOnce(&mut Config)) -> TestStack {
    let aws = fresh_aws().await;
    let (backend, guard) = sql_backend(db, "stackaws").await;
    let mut config = test_config(backend);
    tweak(&mut config);
    let stack = peakload_stack_aws::open(config, &aws)
        .await
        .expect("open the stack on DynamoDB + SQS");
    serve(stack, aws, guard).await
}

pub async fn serve(stack: Stack, aws: AwsOptions, guard: DbGuard) -> TestStack {
    TestStack {
        served: Served::start(&stack).await,
        stack,
        aws,
        _db: guard,
    }
}

impl std::ops::Deref for TestStack {
    type Target = Served;
    fn deref(&self) -> &Served {
        &self.served
    }
}

#[allow(dead_code)]
impl TestStack {
    /// Graceful stop; asserts the server returned cleanly.
    pub async fn stop(mut self) {
        self.served.stop().await;
    }
}
