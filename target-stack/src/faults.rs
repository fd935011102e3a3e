//! Injected faults, for testing peakload's diagnosis against a known cause.
//!
//! A [`FaultSet`] comes from the command line at start and from `POST /admin/faults` at run
//! time; [`Faults`] holds the live values in atomics that the hot paths read without locks.
//! The database-side faults (latency, pool size) are applied by [`crate::store::gate::DbGate`],
//! the request-side ones by the HTTP middleware, the worker ones by the workers.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::store::gate::Limiter;

/// The whole set of faults, as shown by `GET /admin/faults`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSet {
    /// Added before every database operation.
    pub db_latency_ms: u64,
    /// At most this many database operations at once; `None` (or 0 when set) = no limit.
    pub db_pool_size: Option<u32>,
    /// Busy-looped on every API request.
    pub cpu_work_us: u64,
    /// Fraction (0..=1) of API requests answered 500.
    pub error_rate: f64,
    /// Workers claim nothing while set.
    pub worker_paused: bool,
    /// Added before each message a worker handles.
    pub worker_delay_ms: u64,
}

/// A partial update: fields left out keep their value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPatch {
    pub db_latency_ms: Option<u64>,
    pub db_pool_size: Option<u32>,
    pub cpu_work_us: Option<u64>,
    pub error_rate: Option<f64>,
    pub worker_paused: Option<bool>,
    pub worker_delay_ms: Option<u64>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FaultError {
    #[error("error_rate must be between 0 and 1, got {0}")]
    ErrorRate(f64),
    #[error("{field} is too large (max {max})")]
    TooLarge { field: &'static str, max: u64 },
}

const MAX_MS: u64 = 60_000;
const MAX_CPU_US: u64 = 1_000_000;

impl FaultSet {
    pub fn validate(&self) -> Result<(), FaultError> {
        if !(0.0..=1.0).contains(&self.error_rate) || self.error_rate.is_nan() {
            return Err(FaultError::ErrorRate(self.error_rate));
        }
        for (field, value, max) in [
            ("db_latency_ms", self.db_latency_ms, MAX_MS),
            ("worker_delay_ms", self.worker_delay_ms, MAX_MS),
            ("cpu_work_us", self.cpu_work_us, MAX_CPU_US),
        ] {
            if value > max {
                return Err(FaultError::TooLarge { field, max });
            }
        }
        Ok(())
    }

    fn patched(&self, patch: &FaultPatch) -> FaultSet {
        let mut next = self.clone();
        if let Some(v) = patch.db_latency_ms {
            next.db_latency_ms = v;
        }
        if let Some(v) = patch.db_pool_size {
            next.db_pool_size = (v > 0).then_some(v);
        }
        if let Some(v) = patch.cpu_work_us {
            next.cpu_work_us = v;
        }
        if let Some(v) = patch.error_rate {
            next.error_rate = v;
        }
        if let Some(v) = patch.worker_paused {
            next.worker_paused = v;
        }
        if let Some(v) = patch.worker_delay_ms {
            next.worker_delay_ms = v;
        }
        next
    }
}

/// The live faults. Reads are single atomic loads.
#[derive(Debug)]
pub struct Faults {
    db_latency_ms: AtomicU64,
    cpu_work_us: AtomicU64,
    /// Parts per million, so the fraction fits an integer.
    error_rate_ppm: AtomicU32,
    worker_paused: AtomicBool,
    worker_delay_ms: AtomicU64,
    /// The database concurrency limit lives in the limiter it drives.
    db_limiter: Arc<Limiter>,
    /// Serialises updates so a read of the whole set is consistent.
    update: std::sync::Mutex<()>,
}

impl Faults {
    pub fn new(initial: &FaultSet) -> Result<Arc<Faults>, FaultError> {
        initial.validate()?;
        let faults = Faults {
            db_latency_ms: AtomicU64::new(0),
            cpu_work_us: AtomicU64::new(0),
            error_rate_ppm: AtomicU32::new(0),
            worker_paused: AtomicBool::new(false),
            worker_delay_ms: AtomicU64::new(0),
            db_limiter: Arc::new(Limiter::new(None)),
            update: std::sync::Mutex::new(()),
        };
        faults.store(initial);
        Ok(Arc::new(faults))
    }

    fn store(&self, set: &FaultSet) {
        self.db_latency_ms
            .store(set.db_latency_ms, Ordering::Relaxed);
        self.cpu_work_us.store(set.cpu_work_us, Ordering::Relaxed);
        self.error_rate_ppm
            .store((set.error_rate * 1e6).round() as u32, Ordering::Relaxed);
        self.worker_paused
            .store(set.worker_paused, Ordering::Relaxed);
        self.worker_delay_ms
            .store(set.worker_delay_ms, Ordering::Relaxed);
        self.db_limiter
            .set_limit(set.db_pool_size.map(|n| n as usize));
    }

    /// Applies a partial update, all or nothing.
    pub fn apply(&self, patch: &FaultPatch) -> Result<FaultSet, FaultError> {
        let _guard = self.update.lock().unwrap_or_else(|e| e.into_inner());
        let next = self.current().patched(patch);
        next.validate()?;
        self.store(&next);
        Ok(next)
    }

    pub fn current(&self) -> FaultSet {
        FaultSet {
            db_latency_ms: self.db_latency_ms.load(Ordering::Relaxed),
            db_pool_size: self.db_limiter.limit().map(|n| n as u32),
            cpu_work_us: self.cpu_work_us.load(Ordering::Relaxed),
            error_rate: f64::from(self.error_rate_ppm.load(Ordering::Relaxed)) / 1e6,
            worker_paused: self.worker_paused.load(Ordering::Relaxed),
            worker_delay_ms: self.worker_delay_ms.load(Ordering::Relaxed),
        }
    }

    pub fn db_latency(&self) -> Duration {
        Duration::from_millis(self.db_latency_ms.load(Ordering::Relaxed))
    }

    pub fn db_limiter(&self) -> &Arc<Limiter> {
        &self.db_limiter
    }

    pub fn worker_paused(&self) -> bool {
        self.worker_paused.load(Ordering::Relaxed)
    }

    pub fn worker_delay(&self) -> Duration {
        Duration::from_millis(self.worker_delay_ms.load(Ordering::Relaxed))
    }

    /// Whether this request should fail on purpose.
    pub fn should_inject_error(&self) -> bool {
        let ppm = self.error_rate_ppm.load(Ordering::Relaxed);
        ppm > 0 && fastrand::u32(0..1_000_000) < ppm
    }

    /// Spins the CPU for the configured time (a blocking busy loop, on purpose).
    pub fn burn_cpu(&self) {
        let us = self.cpu_work_us.load(Ordering::Relaxed);
        if us == 0 {
            return;
        }
        let until = Instant::now() + Duration::from_micros(us);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        while Instant::now() < until {
            for _ in 0..64 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
            }
            std::hint::black_box(x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_changes_only_given_fields_and_validates() {
        let faults = Faults::new(&FaultSet::default()).unwrap();
        let set = faults
            .apply(&FaultPatch {
                db_latency_ms: Some(5),
                db_pool_size: Some(2),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(set.db_latency_ms, 5);
        assert_eq!(set.db_pool_size, Some(2));
        assert_eq!(faults.current(), set);
        let err = faults
            .apply(&FaultPatch {
                error_rate: Some(1.5),
                db_latency_ms: Some(9),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(err, FaultError::ErrorRate(1.5));
        assert_eq!(
            faults.current().db_latency_ms,
            5,
            "a rejected patch changes nothing"
        );
        let set = faults
            .apply(&FaultPatch {
                db_pool_size: Some(0),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(set.db_pool_size, None);
    }

    #[test]
    fn error_rate_round_trips() {
        let faults = Faults::new(&FaultSet {
            error_rate: 0.25,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(faults.current().error_rate, 0.25);
    }
}
