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

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

pub use crossbeam_epoch::Guard as RcuGuard;

/// Enter an RCU read section; it lasts until the guard is dropped.
#[inline]
pub fn read_lock() -> RcuGuard {
    crossbeam_epoch::pin()
}

/// Run `f` after a grace period (see the module rules: `f` must take no lock).
pub fn call_rcu<F: FnOnce() + Send + 'static>(f: F) {
    let guard = crossbeam_epoch::pin();
    guard.defer(f);
}

/// Push this thread's pending callbacks to the global queue so other threads can run them.
pub fn flush() {
    crossbeam_epoch::pin().flush();
}

/// Wait for a full grace period (see the module docs).
pub fn synchronize() {
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    // Release pairs with the Acquire load below: whoever sees the flag also sees that
    // the sentinel ran after the grace period.
    call_rcu(move || flag.store(true, Ordering::Release));
    let mut spins = 0u32;
    while !done.load(Ordering::Acquire) {
        crossbeam_epoch::pin().flush();
        spins += 1;
        if spins > 16 {
            std::thread::yield_now();
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

#[cfg(test)]
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
