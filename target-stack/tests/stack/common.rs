//! Starting a stack on port 0 over a fresh database, and talking to it.

use peakload_stack::{Config, Stack};

#[path = "../support/backend.rs"]
mod backend;
#[path = "../support/client.rs"]
mod client;
use backend::{sql_backend, test_config, DbGuard};
pub use backend::{Db, ADMIN_TOKEN};
pub use client::{Answer, Served};

/// A stack serving on a loopback port.
pub struct TestStack {
    pub served: Served,
    pub stack: Stack,
    _db: DbGuard,
}

pub async fn start(db: Db, tweak: impl FnOnce(&mut Config)) -> TestStack {
    let (backend, guard) = sql_backend(db, "stack").await;
    let mut config = test_config(backend);
    tweak(&mut config);
    let stack = Stack::open(config).await.expect("open the stack");
    TestStack {
        served: Served::start(&stack).await,
        stack,
        _db: guard,
    }
}

impl std::ops::Deref for TestStack {
    type Target = Served;
    fn deref(&self) -> &Served {
        &self.served
    }
}

impl TestStack {
    /// Graceful stop; asserts the server returned cleanly.
    pub async fn stop(mut self) {
        self.served.stop().await;
    }
}

/// Asserts a client error with a JSON `{"error": …}` body.
#[track_caller]
pub fn assert_json_error(a: &Answer, status: u16) {
    assert_eq!(a.status.as_u16(), status, "{a:?}");
    assert!(a.body["error"].is_string(), "no JSON error body: {a:?}");
}
