//! The gate every database operation passes: the `db_pool_size` concurrency limit and the
//! `db_latency_ms` delay from [`crate::faults`], and the measurement of how long callers wait
//! for the limit and for a pooled connection (`db_pool_acquire_wait_seconds` in `/metrics`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::faults::Faults;
use crate::metrics::Histogram;

/// A counting limiter whose limit can change while permits are out (unlike a semaphore's).
#[derive(Debug)]
pub struct Limiter {
    /// `usize::MAX` means unlimited.
    limit: AtomicUsize,
    in_use: AtomicUsize,
    released: Notify,
}

/// Released on drop.
#[derive(Debug)]
pub struct LimiterPermit {
    limiter: Arc<Limiter>,
}

impl Drop for LimiterPermit {
    fn drop(&mut self) {
        self.limiter.in_use.fetch_sub(1, Ordering::AcqRel);
        self.limiter.released.notify_one();
    }
}

impl Limiter {
    pub fn new(limit: Option<usize>) -> Self {
        Limiter {
            limit: AtomicUsize::new(limit.unwrap_or(usize::MAX)),
            in_use: AtomicUsize::new(0),
            released: Notify::new(),
        }
    }

    pub fn limit(&self) -> Option<usize> {
        let limit = self.limit.load(Ordering::Acquire);
        (limit != usize::MAX).then_some(limit)
    }

    pub fn set_limit(&self, limit: Option<usize>) {
        self.limit.store(
            limit.filter(|n| *n > 0).unwrap_or(usize::MAX),
            Ordering::Release,
        );
        self.released.notify_waiters();
    }

    pub fn in_use(&self) -> usize {
        self.in_use.load(Ordering::Acquire)
    }

    pub async fn acquire(self: &Arc<Self>) -> LimiterPermit {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let current = self.in_use.load(Ordering::Acquire);
            if current < self.limit.load(Ordering::Acquire) {
                if self
                    .in_use
                    .compare_exchange(current, current + 1, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    return LimiterPermit {
                        limiter: self.clone(),
                    };
                }
                continue;
            }
            released.await;
        }
    }
}

/// A place at the database: the limit's permit, recorded as one operation when dropped.
#[derive(Debug)]
pub struct Held {
    _permit: LimiterPermit,
    gate: Arc<DbGate>,
    entered: Instant,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.gate.record_operation(self.entered.elapsed());
    }
}

/// Applies the database faults and measures acquisition waits.
#[derive(Debug)]
pub struct DbGate {
    faults: Arc<Faults>,
    acquire_wait: Histogram,
    operation: Histogram,
}

impl DbGate {
    pub fn new(faults: Arc<Faults>) -> Self {
        DbGate {
            faults,
            acquire_wait: Histogram::new(),
            operation: Histogram::new(),
        }
    }

    /// Waits for the concurrency limit, then sleeps the injected latency. The caller then
    /// acquires a pooled connection and reports that wait with [`DbGate::record_wait`].
    pub async fn enter(self: &Arc<Self>) -> (Held, Duration) {
        let started = Instant::now();
        let permit = self.faults.db_limiter().acquire().await;
        let waited = started.elapsed();
        let entered = Instant::now();
        let latency = self.faults.db_latency();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let held = Held {
            _permit: permit,
            gate: self.clone(),
            entered,
        };
        (held, waited)
    }

    pub fn record_wait(&self, wait: Duration) {
        self.acquire_wait.observe(wait);
    }

    pub fn acquire_wait(&self) -> &Histogram {
        &self.acquire_wait
    }

    /// How long an operation held its place at the database: from passing the limit to
    /// giving the connection back (injected latency included, the wait for the limit not).
    pub fn record_operation(&self, held: Duration) {
        self.operation.observe(held);
    }

    pub fn operation(&self) -> &Histogram {
        &self.operation
    }

    pub fn in_use(&self) -> usize {
        self.faults.db_limiter().in_use()
    }

    pub fn limit(&self) -> Option<usize> {
        self.faults.db_limiter().limit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn limit_can_shrink_and_grow_while_permits_are_out() {
        let limiter = Arc::new(Limiter::new(Some(2)));
        let a = limiter.acquire().await;
        let _b = limiter.acquire().await;
        let waiting = tokio::spawn({
            let limiter = limiter.clone();
            async move { limiter.acquire().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        limiter.set_limit(Some(1));
        drop(a);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !waiting.is_finished(),
            "one permit out, limit 1: still waiting"
        );
        limiter.set_limit(None);
        let _c = tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(limiter.in_use(), 2);
    }

    /// Callers dropped while waiting for a permit, or while holding one (a handler whose
    /// client gave up), leave no permit taken and no wake-up lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_that_give_up_leave_the_limiter_whole() {
        let limiter = Arc::new(Limiter::new(Some(2)));
        let mut callers = tokio::task::JoinSet::new();
        for _ in 0..300 {
            let limiter = limiter.clone();
            callers.spawn(async move {
                let give_up = Duration::from_micros(fastrand::u64(0..3000));
                let _ = tokio::time::timeout(give_up, async {
                    let _permit = limiter.acquire().await;
                    tokio::time::sleep(Duration::from_micros(fastrand::u64(0..1000))).await;
                })
                .await;
            });
        }
        while callers.join_next().await.is_some() {}
        assert_eq!(limiter.in_use(), 0);
        let both = async { (limiter.acquire().await, limiter.acquire().await) };
        let (_a, _b) = tokio::time::timeout(Duration::from_millis(200), both)
            .await
            .expect("both permits free at once");
        assert_eq!(limiter.in_use(), 2);
    }
}
