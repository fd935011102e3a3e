//! Turns on the CPU. The tests share one process and often two cores: a run that loads the
//! CPU (a load run, the bundled stack, a browser) takes [`shared_cpu`]; a run whose figures
//! depend on timing — coordinated omission, a diagnosis that must find a planted fault and
//! nothing else — takes [`exclusive_cpu`], so that it runs while no other load does. Quick
//! tests that send nothing take neither.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

static LOAD: RwLock<()> = RwLock::new(());

/// Held while a test loads the CPU alongside others.
pub fn shared_cpu() -> RwLockReadGuard<'static, ()> {
    LOAD.read().unwrap_or_else(|e| e.into_inner())
}

/// Held while a test needs the CPU to itself.
pub fn exclusive_cpu() -> RwLockWriteGuard<'static, ()> {
    LOAD.write().unwrap_or_else(|e| e.into_inner())
}
