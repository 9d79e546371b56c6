//! The one place that names atomics, locks and thread primitives.
//!
//! Every other module imports them from here, so one cfg switches the crate between
//! `std` (with `parking_lot` locks), `loom` (`--cfg loom`) and `shuttle` (`--cfg shuttle`).
//! Guest bytes are an exception with a reason: they are accessed through [`bytes`] with
//! host atomics, because frame memory is plain host memory shared by all threads (design
//! decision 9), and the models never inspect guest bytes.

pub mod bytes;
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
/// Read guard of [`RwLock`].
#[cfg(not(any(loom, shuttle)))]
pub type RwLockReadGuard<'a, T> = parking_lot::RwLockReadGuard<'a, T>;
/// Write guard of [`RwLock`].
#[cfg(not(any(loom, shuttle)))]
pub type RwLockWriteGuard<'a, T> = parking_lot::RwLockWriteGuard<'a, T>;
/// Mutex for state that is neither hot nor taken inside RCU callbacks.
#[cfg(not(any(loom, shuttle)))]
pub type Mutex<T> = parking_lot::Mutex<T>;

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
