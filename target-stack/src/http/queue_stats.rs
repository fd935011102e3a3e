//! Queue stats for `/metrics` without waiting on the database.
//!
//! The stats are SQL counts that pass the database gate like any request. When the gate is
//! the bottleneck (a small pool, injected latency), a scrape that waited its turn would take
//! seconds, the scraper would miss seconds, and the diagnosis would lose the signals that
//! show the fault. So a scrape starts a read (one at a time), waits for it briefly, and
//! otherwise shows the last values read, with `queue_stats_fresh 0`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::store::{Queue, QueueStats, Stores};

/// How long a scrape waits for fresh stats when it has earlier ones to show.
pub const FRESH_WAIT: Duration = Duration::from_millis(50);
/// How long the first scrape waits, having nothing else to show.
pub const FIRST_WAIT: Duration = Duration::from_secs(1);

pub type Snapshot = Vec<(Queue, Option<QueueStats>)>;

pub struct QueueStatsCache {
    last: Mutex<Option<Snapshot>>,
    reading: AtomicBool,
    /// Counts completed reads; scrapes wait for it to move.
    done: watch::Sender<u64>,
}

impl Default for QueueStatsCache {
    fn default() -> Self {
        Self {
            last: Mutex::new(None),
            reading: AtomicBool::new(false),
            done: watch::channel(0).0,
        }
    }
}

impl QueueStatsCache {
    /// The stats of every queue and whether they were read for this call (`false`: the last
    /// values read, or none yet, because the database did not answer within [`FRESH_WAIT`], or
    /// [`FIRST_WAIT`] for the first read).
    pub async fn read(self: &Arc<Self>, stores: &Stores) -> (Snapshot, bool) {
        let mut done = self.done.subscribe();
        if !self.reading.swap(true, Ordering::AcqRel) {
            let me = self.clone();
            let stores = stores.clone();
            tokio::spawn(async move {
                let mut snapshot = Vec::with_capacity(Queue::ALL.len());
                for q in Queue::ALL {
                    snapshot.push((q, stores.queues.stats(q).await.ok()));
                }
                *me.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(snapshot);
                me.reading.store(false, Ordering::Release);
                me.done.send_modify(|n| *n += 1);
            });
        }
        let wait = if self
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
        {
            FRESH_WAIT
        } else {
            FIRST_WAIT
        };
        let fresh = tokio::time::timeout(wait, done.changed())
            .await
            .is_ok_and(|r| r.is_ok());
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let snapshot = last.unwrap_or_else(|| Queue::ALL.iter().map(|q| (*q, None)).collect());
        (snapshot, fresh)
    }
}
