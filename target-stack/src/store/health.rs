//! What readiness knows about writes: the outcome of every write operation, by kind.
//!
//! A backend records each finished write here ([`WriteHealth::record`]); `/readyz` asks
//! [`WriteHealth::trouble`] whether some kind of write keeps failing, and
//! [`WriteHealth::succeeded_within`] whether writes are known to work without probing. A
//! ping that answers says nothing about writes (a poisoned writer connection, a lock held by
//! someone else), which is why this exists.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::StoreError;

/// The kinds of write, each tracked on its own: one kind failing while the others work (every
/// checkout failing, logins fine) is still a broken instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOp {
    Session,
    AddToCart,
    Checkout,
    PlaceOrder,
    Enqueue,
    Claim,
    Ack,
    RetryLater,
    DeadLetter,
    Delivery,
    Timestamp,
    Learn,
    Seed,
    /// `/readyz`'s own write.
    Probe,
}

impl WriteOp {
    const ALL: [WriteOp; 14] = [
        WriteOp::Session,
        WriteOp::AddToCart,
        WriteOp::Checkout,
        WriteOp::PlaceOrder,
        WriteOp::Enqueue,
        WriteOp::Claim,
        WriteOp::Ack,
        WriteOp::RetryLater,
        WriteOp::DeadLetter,
        WriteOp::Delivery,
        WriteOp::Timestamp,
        WriteOp::Learn,
        WriteOp::Seed,
        WriteOp::Probe,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WriteOp::Session => "session",
            WriteOp::AddToCart => "add-to-cart",
            WriteOp::Checkout => "checkout",
            WriteOp::PlaceOrder => "place-order",
            WriteOp::Enqueue => "enqueue",
            WriteOp::Claim => "claim",
            WriteOp::Ack => "ack",
            WriteOp::RetryLater => "retry-later",
            WriteOp::DeadLetter => "dead-letter",
            WriteOp::Delivery => "delivery",
            WriteOp::Timestamp => "timestamp",
            WriteOp::Learn => "learn",
            WriteOp::Seed => "seed",
            WriteOp::Probe => "probe",
        }
    }

    fn index(self) -> usize {
        WriteOp::ALL
            .iter()
            .position(|op| *op == self)
            .expect("every kind is listed")
    }
}

/// Failures in a row (of one kind, no success between) that make an instance unready.
pub const FAILING_STREAK: u32 = 3;
/// How long a failing streak counts after its latest failure: with no more writes of that
/// kind (no traffic, or traffic sent elsewhere because of the 503), readiness goes back to
/// the probe.
pub const FAILURE_MEMORY: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct Outcomes {
    streak: u32,
    last_failure: Option<Instant>,
    last_error: String,
    last_success: Option<Instant>,
}

/// Outcomes of the writes of one backend.
#[derive(Debug)]
pub struct WriteHealth {
    ops: [Mutex<Outcomes>; WriteOp::ALL.len()],
}

impl Default for WriteHealth {
    fn default() -> Self {
        WriteHealth {
            ops: std::array::from_fn(|_| Mutex::new(Outcomes::default())),
        }
    }
}

impl WriteHealth {
    fn outcomes(&self, op: WriteOp) -> std::sync::MutexGuard<'_, Outcomes> {
        self.ops[op.index()]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    pub fn succeeded(&self, op: WriteOp) {
        let mut o = self.outcomes(op);
        o.streak = 0;
        o.last_success = Some(Instant::now());
    }

    pub fn failed(&self, op: WriteOp, error: &StoreError) {
        let mut o = self.outcomes(op);
        o.streak = o.streak.saturating_add(1);
        o.last_failure = Some(Instant::now());
        o.last_error = error.to_string();
    }

    pub fn record<T>(&self, op: WriteOp, result: &Result<T, StoreError>) {
        match result {
            Ok(_) => self.succeeded(op),
            Err(e) => self.failed(op, e),
        }
    }

    /// A kind of write that failed [`FAILING_STREAK`] times in a row, the latest within
    /// [`FAILURE_MEMORY`]: why the instance is not ready.
    pub fn trouble(&self) -> Option<String> {
        self.trouble_at(Instant::now())
    }

    fn trouble_at(&self, now: Instant) -> Option<String> {
        WriteOp::ALL.iter().find_map(|op| {
            let o = self.outcomes(*op);
            let recent = o
                .last_failure
                .is_some_and(|at| now.saturating_duration_since(at) <= FAILURE_MEMORY);
            (o.streak >= FAILING_STREAK && recent).then(|| {
                format!(
                    "{} writes failing ({} in a row): {}",
                    op.as_str(),
                    o.streak,
                    o.last_error
                )
            })
        })
    }

    /// Whether some write succeeded within `d` (so writes are known to work now).
    pub fn succeeded_within(&self, d: Duration) -> bool {
        let now = Instant::now();
        WriteOp::ALL.iter().any(|op| {
            self.outcomes(*op)
                .last_success
                .is_some_and(|at| now.saturating_duration_since(at) <= d)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broken() -> StoreError {
        StoreError::Corrupt("no".into())
    }

    #[test]
    fn a_kind_failing_in_a_row_is_trouble_until_it_succeeds() {
        let h = WriteHealth::default();
        for _ in 0..FAILING_STREAK - 1 {
            h.failed(WriteOp::Checkout, &broken());
        }
        h.succeeded(WriteOp::AddToCart);
        assert_eq!(h.trouble(), None, "below the streak");
        h.failed(WriteOp::Checkout, &broken());
        let why = h.trouble().expect("checkout fails in a row");
        assert!(
            why.starts_with("checkout writes failing (3 in a row)"),
            "{why}"
        );
        assert!(
            h.succeeded_within(Duration::from_secs(1)),
            "add-to-cart works"
        );
        h.succeeded(WriteOp::Checkout);
        assert_eq!(h.trouble(), None);
    }

    #[test]
    fn an_old_streak_is_forgotten() {
        let h = WriteHealth::default();
        for _ in 0..5 {
            h.failed(WriteOp::Timestamp, &broken());
        }
        let now = Instant::now();
        assert!(h.trouble_at(now).is_some());
        assert!(h
            .trouble_at(now + FAILURE_MEMORY + Duration::from_millis(1))
            .is_none());
        assert!(!h.succeeded_within(Duration::from_secs(60)));
    }
}
