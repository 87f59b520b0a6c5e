//! Locking shared state.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks a mutex, carrying on past poisoning: every critical section here leaves the data
/// consistent between statements, so a panicking handler must not take the simulator down.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
