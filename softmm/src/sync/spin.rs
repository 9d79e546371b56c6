//! A one-word spin lock whose all-zero state is "unlocked".
//!
//! Page-table locks (PTLs) live in per-frame metadata that is created by zero-filled
//! host memory, so the lock must be valid when zeroed (parking_lot's raw mutex does not
//! document that). Critical sections under a PTL are a handful of entry updates; after a
//! short spin the waiter yields so that two threads on two cores never livelock.
//!
//! Orderings: the acquiring CAS is `Acquire` and the releasing store `Release`; together
//! they order everything done inside one critical section before the next one.

use super::{AtomicU32, Ordering, spin_loop, yield_now};

/// A spin lock protecting nothing by itself (`lock()` returns a guard without data).
#[derive(Debug, Default)]
pub struct SpinLock {
    /// 0 = unlocked, 1 = locked. Invariant: only the guard's holder stores 0.
    word: AtomicU32,
}

/// Holding this guard means holding the lock; dropping it releases the lock.
#[derive(Debug)]
#[must_use = "the lock is released when the guard is dropped"]
pub struct SpinGuard<'a> {
    lock: &'a SpinLock,
}

impl SpinLock {
    /// A new, unlocked lock (model builds; normal builds find locks in zero-filled
    /// metadata, where all-zero is unlocked).
    #[cfg(any(loom, shuttle))]
    pub fn new() -> Self {
        Self {
            word: AtomicU32::new(0),
        }
    }

    /// Take the lock, spinning then yielding while another thread holds it.
    pub fn lock(&self) -> SpinGuard<'_> {
        let mut spins = 0u32;
        loop {
            // Acquire pairs with the Release store in `SpinGuard::drop`.
            if self
                .word
                .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return SpinGuard { lock: self };
            }
            // Relaxed: only a hint to avoid hammering the line with CASes.
            while self.word.load(Ordering::Relaxed) != 0 {
                spins += 1;
                if spins < 64 {
                    spin_loop();
                } else {
                    yield_now();
                }
            }
        }
    }
}

impl Drop for SpinGuard<'_> {
    fn drop(&mut self) {
        // Release: publishes the critical section to the next Acquire in `lock`.
        self.lock.word.store(0, Ordering::Release);
    }
}
