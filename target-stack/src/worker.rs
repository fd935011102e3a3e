//! The workers that drain the durable queues.
//!
//! [`EmailWorker`] delivers notifications through a simulated mail server into the
//! deliveries table, idempotently on the notification id, retrying with exponential backoff
//! and dead-lettering after `max_attempts`. [`MultivacWorker`] learns the words of each data
//! item. Both claim a batch under a lease, finish the batch they hold when asked to stop, and
//! leave anything unacknowledged to reappear when its lease runs out (so killing a worker
//! loses nothing).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::WorkerConfig;
use crate::faults::Faults;
use crate::http::notifications::Notification;
use crate::metrics::WorkerMetrics;
use crate::store::{Delivery, LeasedMessage, Queue, Stores};

/// Recipients at this domain always bounce (to exercise retries and dead-lettering).
pub const BOUNCE_DOMAIN: &str = "@bounce.invalid";
/// Recipients at this domain bounce on the first two attempts, then succeed.
pub const FLAKY_DOMAIN: &str = "@flaky.invalid";

const MAX_WORDS_PER_ITEM: usize = 256;
const MAX_WORD_LEN: usize = 64;

/// The simulated SMTP server: whether this attempt is accepted.
fn smtp_accepts(to: &str, attempt: u32) -> bool {
    let to = to.to_ascii_lowercase();
    if to.ends_with(BOUNCE_DOMAIN) {
        false
    } else if to.ends_with(FLAKY_DOMAIN) {
        attempt > 2
    } else {
        true
    }
}

/// Delay before the attempt after `attempts` failed ones.
pub fn backoff(config: &WorkerConfig, attempts: u32) -> Duration {
    let factor = 1u32 << attempts.saturating_sub(1).min(20);
    config
        .backoff_base
        .saturating_mul(factor)
        .min(config.backoff_max)
}

/// Sleeps `d` unless shutdown comes first; returns false if it did.
async fn pause(d: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = shutdown.cancelled() => false,
    }
}

/// What both workers share: the claim loop.
#[derive(Clone)]
struct Drainer {
    queue: Queue,
    stores: Stores,
    faults: Arc<Faults>,
    config: WorkerConfig,
    wake: Arc<Notify>,
}

impl Drainer {
    /// Next batch, or `None` when shutting down.
    async fn next_batch(&self, shutdown: &CancellationToken) -> Option<Vec<LeasedMessage>> {
        loop {
            if shutdown.is_cancelled() {
                return None;
            }
            if self.faults.worker_paused() {
                if !pause(Duration::from_millis(100), shutdown).await {
                    return None;
                }
                continue;
            }
            match self
                .stores
                .queues
                .claim(self.queue, self.config.batch_size, self.config.lease)
                .await
            {
                Ok(batch) if !batch.is_empty() => return Some(batch),
                Ok(_) => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(self.config.poll_interval) => {}
                        _ = shutdown.cancelled() => return None,
                    }
                }
                Err(e) => {
                    tracing::warn!(queue = self.queue.as_str(), error = %e, "claim failed");
                    if !pause(Duration::from_secs(1), shutdown).await {
                        return None;
                    }
                }
            }
        }
    }
}

/// Drains the notifications queue into the deliveries table.
#[derive(Clone)]
pub struct EmailWorker {
    drainer: Drainer,
    metrics: Arc<crate::metrics::Metrics>,
}

impl EmailWorker {
    pub(crate) fn new(
        stores: Stores,
        faults: Arc<Faults>,
        config: WorkerConfig,
        wake: Arc<Notify>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        EmailWorker {
            drainer: Drainer {
                queue: Queue::Notifications,
                stores,
                faults,
                config,
                wake,
            },
            metrics,
        }
    }

    fn counters(&self) -> &WorkerMetrics {
        &self.metrics.email_worker
    }

    /// Runs until `shutdown`, finishing the batch in hand.
    pub async fn run(self, shutdown: CancellationToken) {
        while let Some(batch) = self.drainer.next_batch(&shutdown).await {
            for message in batch {
                self.counters().in_flight.fetch_add(1, Ordering::Relaxed);
                self.handle(message).await;
                self.counters().in_flight.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    async fn handle(&self, message: LeasedMessage) {
        let d = &self.drainer;
        let delay = d.faults.worker_delay();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let queues = &d.stores.queues;
        let Ok(notification) = serde_json::from_str::<Notification>(&message.payload) else {
            tracing::warn!(id = message.id, "unreadable notification dead-lettered");
            self.give_up(&message).await;
            return;
        };
        if !smtp_accepts(&notification.to, message.attempts) {
            self.counters().failed.fetch_add(1, Ordering::Relaxed);
            if message.attempts >= d.config.max_attempts {
                self.give_up(&message).await;
            } else if let Err(e) = queues
                .retry_later(
                    Queue::Notifications,
                    message.id,
                    backoff(&d.config, message.attempts),
                )
                .await
            {
                tracing::warn!(id = message.id, error = %e, "could not schedule a retry");
            }
            return;
        }
        let delivery = Delivery {
            notification_id: message.id,
            recipient: notification.to,
            subject: notification.subject,
        };
        let outcome = match d.stores.deliveries.record_delivery(&delivery).await {
            Ok(_) => queues.ack(Queue::Notifications, &[message.id]).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => {
                self.counters().processed.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                // The lease runs out and the message comes back; the delivery is idempotent.
                self.counters().failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(id = message.id, error = %e, "delivery not recorded");
            }
        }
    }

    async fn give_up(&self, message: &LeasedMessage) {
        match self
            .drainer
            .stores
            .queues
            .dead_letter(Queue::Notifications, message.id)
            .await
        {
            Ok(()) => {
                self.counters()
                    .dead_lettered
                    .fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(id = message.id, error = %e, "could not dead-letter"),
        }
    }
}

/// The words MultiVAC learns from one data item.
pub fn words(data: &str) -> Vec<String> {
    data.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            w.chars()
                .take(MAX_WORD_LEN)
                .collect::<String>()
                .to_lowercase()
        })
        .take(MAX_WORDS_PER_ITEM)
        .collect()
}

/// Drains the MultiVAC queue into its learnt state.
#[derive(Clone)]
pub struct MultivacWorker {
    drainer: Drainer,
    metrics: Arc<crate::metrics::Metrics>,
}

impl MultivacWorker {
    pub(crate) fn new(
        stores: Stores,
        faults: Arc<Faults>,
        config: WorkerConfig,
        wake: Arc<Notify>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        MultivacWorker {
            drainer: Drainer {
                queue: Queue::Multivac,
                stores,
                faults,
                config,
                wake,
            },
            metrics,
        }
    }

    /// Runs until `shutdown`, finishing the batch in hand.
    pub async fn run(self, shutdown: CancellationToken) {
        let counters = &self.metrics.multivac_worker;
        let d = &self.drainer;
        while let Some(batch) = d.next_batch(&shutdown).await {
            let n = batch.len() as i64;
            counters.in_flight.fetch_add(n, Ordering::Relaxed);
            let delay = d.faults.worker_delay();
            if !delay.is_zero() {
                tokio::time::sleep(delay.saturating_mul(batch.len() as u32)).await;
            }
            let items: Vec<(i64, Vec<String>)> =
                batch.iter().map(|m| (m.id, words(&m.payload))).collect();
            let ids: Vec<i64> = batch.iter().map(|m| m.id).collect();
            let outcome = match d.stores.multivac.learn(&items).await {
                Ok(_) => d.stores.queues.ack(Queue::Multivac, &ids).await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok(()) => {
                    counters.processed.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    counters.failed.fetch_add(n as u64, Ordering::Relaxed);
                    tracing::warn!(error = %e, "multivac batch not learnt");
                }
            }
            counters.in_flight.fetch_sub(n, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let c = WorkerConfig {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_millis(500),
            ..WorkerConfig::default()
        };
        assert_eq!(backoff(&c, 1), Duration::from_millis(100));
        assert_eq!(backoff(&c, 2), Duration::from_millis(200));
        assert_eq!(backoff(&c, 3), Duration::from_millis(400));
        assert_eq!(backoff(&c, 4), Duration::from_millis(500));
        assert_eq!(backoff(&c, 40), Duration::from_millis(500));
    }

    #[test]
    fn words_are_lowercased_alphanumeric_runs() {
        assert_eq!(
            words("Hello, hello WORLD! 42"),
            vec!["hello", "hello", "world", "42"]
        );
        assert!(words(" ,;").is_empty());
    }

    #[test]
    fn simulated_smtp() {
        assert!(smtp_accepts("a@example.com", 1));
        assert!(!smtp_accepts("a@bounce.invalid", 9));
        assert!(!smtp_accepts("a@flaky.invalid", 2));
        assert!(smtp_accepts("a@FLAKY.invalid", 3));
    }
}
