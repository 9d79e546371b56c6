//! RCU over crossbeam-epoch: read sections, deferred callbacks, grace periods.
//!
//! * [`read_lock`] pins the current thread: everything reachable from an RCU-published
//!   pointer stays allocated until the guard is dropped.
//! * [`call_rcu`] defers a callback until every read section that was running when it
//!   was queued has ended. Callbacks run in whichever thread next pins or flushes, maybe
//!   while it holds our locks, so **a callback must take no lock** (it may free frames:
//!   the allocator is lock-free).
//! * [`synchronize`] waits for a full grace period: it queues a sentinel callback that
//!   sets a flag and flushes/yields until it has run. crossbeam seals a bag at epoch `e`
//!   and runs it once the global epoch reached `e + 2`, i.e. after every thread that was
//!   pinned at `e` unpinned — a real grace period, not a mere flush.
//! * [`barrier`] (tests, teardown checks) waits until every callback this thread queued
//!   earlier has run: the sentinel is sealed after them in this thread's bag.
//!
//! Do not call [`synchronize`] or [`barrier`] inside a read section: it would wait for
//! itself forever.

use std::sync::Arc;

pub use crossbeam_epoch::Guard as RcuGuard;

use super::{AtomicBool, Ordering};

/// Enter an RCU read section; it lasts until the guard is dropped.
#[cfg(not(shuttle))]
#[inline]
pub fn read_lock() -> RcuGuard {
    // Under loom (`--cfg crossbeam_loom`) crossbeam's default collector and its
    // per-thread handle are loom objects, reset for every explored execution.
    crossbeam_epoch::pin()
}

/// Enter an RCU read section; it lasts until the guard is dropped.
///
/// Shuttle runs every modelled thread on one OS thread, so crossbeam's default
/// per-thread handle would be shared by all of them (one thread's pin would count as
/// another's). Each shuttle thread registers its own handle in a collector that is
/// created afresh for each execution.
#[cfg(shuttle)]
pub fn read_lock() -> RcuGuard {
    use crossbeam_epoch::{Collector, LocalHandle};
    shuttle::lazy_static! {
        static ref COLLECTOR: Collector = Collector::new();
    }
    shuttle::thread_local! {
        static HANDLE: LocalHandle = COLLECTOR.register();
    }
    HANDLE.with(|h| h.pin())
}

std::thread_local! {
    /// Callbacks this thread queued (a statistic, not modelled).
    static QUEUED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Count one deferred callback (done by [`call_rcu`] and every other deferral site).
pub(crate) fn note_callback() {
    QUEUED.with(|q| q.set(q.get() + 1));
}

/// RCU callbacks (deferred frees included) this thread has queued so far: how tests
/// and benches show that a teardown batches its frees (per thread, so that other
/// threads' work does not blur the count).
pub fn callbacks_queued() -> u64 {
    QUEUED.with(std::cell::Cell::get)
}

/// Run `f` after a grace period (see the module rules: `f` must take no lock).
pub fn call_rcu<F: FnOnce() + Send + 'static>(f: F) {
    note_callback();
    let guard = read_lock();
    guard.defer(f);
}

/// Push this thread's pending callbacks to the global queue so other threads can run them.
pub fn flush() {
    read_lock().flush();
}

/// Wait for a full grace period (see the module docs).
pub fn synchronize() {
    if cfg!(mutant = "rcu_no_grace_period") {
        // MUTANT: return at once, as if every reader had already left.
        return;
    }
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    // Release pairs with the Acquire load below: whoever sees the flag also sees that
    // the sentinel ran after the grace period.
    call_rcu(move || flag.store(true, Ordering::Release));
    let mut spins = 0u32;
    while !done.load(Ordering::Acquire) {
        read_lock().flush();
        spins += 1;
        if spins > 16 || cfg!(any(loom, shuttle)) {
            super::yield_now();
        }
    }
}

/// Wait until every callback this thread queued before the call has run.
pub fn barrier() {
    // Callbacks queued earlier sit in this thread's bag in front of the sentinel, and
    // bags run in the order they were sealed, so `synchronize` is also a barrier for
    // this thread's own callbacks.
    synchronize();
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[test]
    fn callback_waits_for_reader() {
        let ran = Arc::new(AtomicBool::new(false));
        let reader = read_lock();
        let r = Arc::clone(&ran);
        let t = std::thread::spawn(move || {
            call_rcu(move || r.store(true, Ordering::SeqCst));
            for _ in 0..1000 {
                flush();
            }
        });
        t.join().unwrap();
        // Our read section began before the callback was queued: it cannot have run.
        assert!(!ran.load(Ordering::SeqCst));
        drop(reader);
        synchronize();
        assert!(ran.load(Ordering::SeqCst));
    }

    #[test]
    fn barrier_runs_earlier_callbacks() {
        let n = Arc::new(AtomicUsize::new(0));
        for _ in 0..100 {
            let n = Arc::clone(&n);
            call_rcu(move || {
                n.fetch_add(1, Ordering::SeqCst);
            });
        }
        barrier();
        assert_eq!(n.load(Ordering::SeqCst), 100);
    }
}
