//! The one place that names atomics, locks and thread primitives.
//!
//! Every other module imports them from here, so one cfg switches the crate between
//! `std` (with `parking_lot` locks), `loom` (`--cfg loom`) and `shuttle` (`--cfg shuttle`).
//! Guest bytes are an exception with a reason: they are accessed through [`bytes`] with
//! host atomics, because frame memory is plain host memory shared by all threads (design
//! decision 9), and the models never inspect guest bytes.

pub mod asym;
pub mod bytes;
pub mod percpu;
pub mod rcu;
mod spin;

#[cfg(not(any(loom, shuttle)))]
pub use std::sync::atomic::{
    AtomicBool, AtomicI64, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
};

#[cfg(loom)]
pub use loom::sync::atomic::{
    AtomicBool, AtomicI64, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
};

#[cfg(shuttle)]
pub use shuttle::sync::atomic::{
    AtomicBool, AtomicI64, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
};

pub use spin::{SpinGuard, SpinLock};

/// Reader-writer lock used for `mmap_lock` (parking_lot: fair enough, has `downgrade`).
#[cfg(not(any(loom, shuttle)))]
pub type RwLock<T> = parking_lot::RwLock<T>;
/// Write guard of [`RwLock`].
#[cfg(not(any(loom, shuttle)))]
pub type RwLockWriteGuard<'a, T> = parking_lot::RwLockWriteGuard<'a, T>;
/// Read guard of [`RwLock`].
#[cfg(not(any(loom, shuttle)))]
pub type RwLockReadGuard<'a, T> = parking_lot::RwLockReadGuard<'a, T>;
/// Mutex for state that is neither hot nor taken inside RCU callbacks.
#[cfg(not(any(loom, shuttle)))]
pub type Mutex<T> = parking_lot::Mutex<T>;
/// Interior mutability checked by the model checkers.
#[cfg(not(any(loom, shuttle)))]
pub use std::cell::UnsafeCell;
/// Spawn a thread (a modelled one under loom/shuttle).
#[cfg(not(any(loom, shuttle)))]
pub use std::thread::spawn;

#[cfg(loom)]
use loom::sync as model_sync;
#[cfg(loom)]
pub use loom::{cell::UnsafeCell, thread::spawn};
#[cfg(any(loom, shuttle))]
pub use model_locks::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
#[cfg(shuttle)]
use shuttle::sync as model_sync;
#[cfg(shuttle)]
pub use shuttle::thread::spawn;
#[cfg(shuttle)]
pub use std::cell::UnsafeCell;

/// The model checkers' locks behind parking_lot's API (no poisoning in the signatures).
#[cfg(any(loom, shuttle))]
mod model_locks {
    use super::model_sync;

    /// See the std-build alias.
    #[derive(Debug, Default)]
    pub struct Mutex<T>(model_sync::Mutex<T>);
    /// See the std-build alias.
    #[derive(Debug, Default)]
    pub struct RwLock<T>(model_sync::RwLock<T>);
    /// See the std-build alias.
    pub type RwLockReadGuard<'a, T> = model_sync::RwLockReadGuard<'a, T>;
    /// See the std-build alias.
    pub type RwLockWriteGuard<'a, T> = model_sync::RwLockWriteGuard<'a, T>;

    impl<T> Mutex<T> {
        /// A new mutex.
        pub fn new(v: T) -> Self {
            Self(model_sync::Mutex::new(v))
        }
        /// Lock it.
        pub fn lock(&self) -> model_sync::MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }
        /// Exclusive access without locking.
        pub fn get_mut(&mut self) -> &mut T {
            self.0.get_mut().unwrap_or_else(|e| e.into_inner())
        }
    }

    impl<T> RwLock<T> {
        /// A new lock.
        pub fn new(v: T) -> Self {
            Self(model_sync::RwLock::new(v))
        }
        /// Shared access.
        pub fn read(&self) -> RwLockReadGuard<'_, T> {
            self.0.read().unwrap_or_else(|e| e.into_inner())
        }
        /// Shared access if it can be had without waiting (parking_lot's `try_read`).
        pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
            self.0.try_read().ok()
        }
        /// Exclusive access.
        pub fn write(&self) -> RwLockWriteGuard<'_, T> {
            self.0.write().unwrap_or_else(|e| e.into_inner())
        }
    }
}

/// Tell the scheduler (or the model checker) that this thread is waiting.
#[inline]
pub fn yield_now() {
    #[cfg(not(any(loom, shuttle)))]
    std::thread::yield_now();
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(shuttle)]
    shuttle::thread::yield_now();
}

/// Busy-wait hint inside a spin loop.
#[inline]
pub fn spin_loop() {
    #[cfg(not(any(loom, shuttle)))]
    std::hint::spin_loop();
    #[cfg(any(loom, shuttle))]
    yield_now();
}
