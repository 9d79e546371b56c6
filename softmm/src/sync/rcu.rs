//! RCU over crossbeam-epoch: read sections, deferred callbacks, grace periods.
//!
//! * [`read_lock`] pins the current thread: everything reachable from an RCU-published
//!   pointer stays allocated until the guard is dropped.
//! * [`call_rcu`] defers a callback until every read section that was running when it
//!   was queued has ended. **The callback runs in the thread that queued it** (as Linux
//!   runs RCU callbacks on the CPU that queued them), at its next `call_rcu`, `flush`,
//!   `synchronize` or `barrier` after the grace period, or when that thread exits.
//!   Readers never run them: crossbeam collects garbage in whichever thread pins, so
//!   handing it the callbacks themselves would make a faulting thread free the VMA-tree
//!   nodes of a thread that churns mmap/munmap (`softmm bench fault-churn`). Crossbeam only
//!   gets a one-word closure per batch of callbacks that marks it ripe (one batch in
//!   flight per thread: see `Queue`); readers that collect run those stores and nothing
//!   else. A callback may still run while its thread holds our
//!   locks, so **a callback must take no lock** (it may free frames: the allocator is
//!   lock-free).
//! * [`synchronize`] waits for a full grace period: it queues a sentinel callback and
//!   flushes/yields until it has run. crossbeam seals a bag at epoch `e` and runs it once
//!   the global epoch reached `e + 2`, i.e. after every thread that was pinned at `e`
//!   unpinned — a real grace period, not a mere flush.
//! * [`barrier`] (tests, teardown checks) waits until every callback this thread queued
//!   earlier has run: this thread runs its callbacks in the order it queued them, so the
//!   sentinel runs last.
//!
//! Do not call [`synchronize`] or [`barrier`] inside a read section: it would wait for
//! itself forever.
//!
//! Ordering: a batch is ripe when its flag, stored with Release by the crossbeam closure
//! after the grace period, is loaded with Acquire by the queuing thread; so its callbacks
//! happen after the grace period, which happens after every read section it waited for
//! (crossbeam's epoch protocol). The closure is deferred when the batch is closed, after
//! each of its callbacks was queued, so the grace period covers every reader that could
//! still see what they free.
//!
//! Storage: **no allocation per callback.** A callback's closure (at most
//! `INLINE_WORDS` words, checked at compile time) is moved into a slot of this
//! thread's queue (`Callback`: the closure's bytes and the function that runs them),
//! and the vectors of slots are reused from batch to batch; only closing a batch
//! allocates (its flag, and crossbeam's bag once per flush). The slots add no ordering
//! of their own: a closure is written into its slot and run by the same thread, which
//! holds its queue through a thread-local `RefCell` (program order). The one exception,
//! a thread exiting with batches not yet ripe, hands them to crossbeam as before, whose
//! deferral publishes them to the collecting thread (its global queue's Release push
//! and Acquire pop).

use std::{
    cell::RefCell,
    collections::VecDeque,
    mem::{ManuallyDrop, MaybeUninit},
    sync::Arc,
};

pub use crossbeam_epoch::Guard as RcuGuard;

use super::{AtomicBool, Ordering};

#[cfg(loom)]
use loom::thread_local as model_thread_local;
#[cfg(shuttle)]
use shuttle::thread_local as model_thread_local;
#[cfg(not(any(loom, shuttle)))]
use std::thread_local as model_thread_local;

/// Enter an RCU read section; it lasts until the guard is dropped.
#[cfg(not(shuttle))]
#[inline]
pub fn read_lock() -> RcuGuard {
    // Under loom (`--cfg crossbeam_loom`) crossbeam's default collector and its
    // per-thread handle are loom objects, reset for every explored execution. When this
    // thread's handle is already destroyed (thread exit), crossbeam registers a
    // temporary one.
    crossbeam_epoch::pin()
}

/// Enter an RCU read section; it lasts until the guard is dropped.
///
/// Shuttle runs every modelled thread on one OS thread, so crossbeam's default
/// per-thread handle would be shared by all of them (one thread's pin would count as
/// another's). Each shuttle thread registers its own handle in a collector that is
/// created afresh for each execution (a temporary one once the thread's is destroyed).
#[cfg(shuttle)]
pub fn read_lock() -> RcuGuard {
    use crossbeam_epoch::{Collector, LocalHandle};
    shuttle::lazy_static! {
        static ref COLLECTOR: Collector = Collector::new();
    }
    shuttle::thread_local! {
        static HANDLE: LocalHandle = COLLECTOR.register();
    }
    HANDLE
        .try_with(|h| h.pin())
        .unwrap_or_else(|_| COLLECTOR.register().pin())
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

/// Words a callback's closure may take: it is stored in the queue itself (the
/// callers' closures hold a `Vec` and an `Arc` at most).
pub(crate) const INLINE_WORDS: usize = 4;

/// Storage of one closure, word-aligned.
type Slot = MaybeUninit<[usize; INLINE_WORDS]>;

/// A deferred callback stored inline: the closure's bytes and the function that moves
/// them out and runs them. Dropped without being run (only while unwinding from a
/// panicking callback, or by the model builds' leak at thread exit), the closure leaks.
struct Callback {
    /// `run_slot::<F>` for the type `F` that `slot` holds.
    run: unsafe fn(*mut Slot),
    slot: Slot,
}

// SAFETY: a `Callback` holds only a closure `F: Send` (`Callback::new`), which may move
// to and run in another thread.
unsafe impl Send for Callback {}

impl Callback {
    fn new<F: FnOnce() + Send + 'static>(f: F) -> Self {
        const {
            assert!(
                size_of::<F>() <= size_of::<Slot>() && align_of::<F>() <= align_of::<Slot>(),
                "an RCU callback's closure must fit INLINE_WORDS words"
            );
        }
        let mut slot = Slot::uninit();
        // SAFETY: `slot` is valid for writes of an `F` (size and alignment checked
        // above) and holds nothing yet.
        unsafe { slot.as_mut_ptr().cast::<F>().write(f) };
        Self {
            run: run_slot::<F>,
            slot,
        }
    }

    /// Run the closure (moving it out of the slot).
    fn call(self) {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: (1) `run` was made for the type `new` wrote into `slot`; (2) `this`
        // is consumed here and never used again, so the closure is read once.
        unsafe { (this.run)(&raw mut this.slot) }
    }
}

/// Move the `F` out of `slot` and run it.
///
/// # Safety
/// 1. `slot` holds an `F` written by `Callback::new`.
/// 2. Nothing reads that `F` again.
unsafe fn run_slot<F: FnOnce()>(slot: *mut Slot) {
    // SAFETY: (1) an initialized, aligned `F`; (2) moved out once.
    let f = unsafe { slot.cast::<F>().read() };
    f();
}

/// Emptied vectors of callbacks a thread keeps for its next batches (more are freed).
const KEEP_SPARE: usize = 4;

/// Callbacks a batch gathers before it is closed (unless a [`flush`] closes it first):
/// closing costs a crossbeam flush (a global-queue push and a collection, whose epoch
/// advance also costs every pinned reader a cache miss on its next pin), which a batch
/// of one would add to every munmap. 64 (a crossbeam bag's worth) measured better than 8
/// for `fault-churn`. 1 in model builds, which explore each step.
const CLOSE_AT: usize = if cfg!(any(loom, shuttle)) { 1 } else { 64 };

/// Callbacks whose grace period began together: one crossbeam closure marks the whole
/// batch ripe.
struct Batch {
    /// Set (Release) by the crossbeam closure once the grace period has passed.
    ripe: Arc<AtomicBool>,
    fns: Vec<Callback>,
}

/// This thread's callbacks, in the order queued (Linux's segmented callback list, two
/// segments): `next` holds those whose grace period has not begun, `waiting` the closed
/// batches. A batch is closed when none is waiting and [`CLOSE_AT`] callbacks are
/// queued (or on [`flush`]), so a thread has one batch in flight at a time and readers
/// that collect run one crossbeam closure per grace period of each writer, not one per
/// callback. Until then its callbacks wait in `next`: at most `CLOSE_AT - 1` callbacks
/// and one batch per idle thread, run at its next call or exit.
#[derive(Default)]
struct Queue {
    next: Vec<Callback>,
    waiting: VecDeque<Batch>,
    /// Emptied vectors of batches that ran, to become `next` again (no regrowth).
    spare: Vec<Vec<Callback>>,
}

impl Drop for Queue {
    /// Thread exit: run the ripe batches, hand the others to crossbeam (they then run
    /// in whichever thread collects, after a grace period that began no earlier than
    /// theirs).
    ///
    /// Model builds leak them instead: loom drops the main thread's locals after it has
    /// torn down the execution (its statics, crossbeam's collector among them), when no
    /// modelled object may be touched. Models that check frees call [`barrier`] first.
    fn drop(&mut self) {
        if cfg!(any(loom, shuttle)) {
            std::mem::forget(std::mem::take(&mut self.next));
            std::mem::forget(std::mem::take(&mut self.waiting));
            return;
        }
        let next = std::mem::take(&mut self.next);
        for b in self
            .waiting
            .drain(..)
            .chain((!next.is_empty()).then(|| Batch {
                ripe: Arc::new(AtomicBool::new(false)),
                fns: next,
            }))
        {
            // Acquire: pairs with the Release store of the crossbeam closure.
            if b.ripe.load(Ordering::Acquire) {
                b.fns.into_iter().for_each(Callback::call);
            } else {
                read_lock().defer(move || b.fns.into_iter().for_each(Callback::call));
            }
        }
    }
}

model_thread_local! {
    static QUEUE: RefCell<Queue> = RefCell::new(Queue::default());
}

/// Run `f` after a grace period, in this thread (see the module rules: `f` must take no
/// lock). `f` may hold at most `INLINE_WORDS` (4) words (a compile-time check): it is
/// stored in this thread's queue, not allocated.
pub fn call_rcu<F: FnOnce() + Send + 'static>(f: F) {
    note_callback();
    let mut f = Some(Callback::new(f));
    if QUEUE
        .try_with(|q| q.borrow_mut().next.extend(f.take()))
        .is_err()
    {
        // This thread is exiting and its queue is gone (a callback run by `Queue::drop`
        // queued another): let crossbeam run it.
        if let Some(f) = f {
            read_lock().defer(move || f.call());
        }
        return;
    }
    // Its grace period begins once no batch is in flight and enough are queued, or at
    // the next `flush`.
    run_ripe();
}

/// Close `next` into a batch and start its grace period: a crossbeam closure, deferred
/// after every callback of the batch was queued (so after every unlink they free),
/// marks it ripe; the flush hands it to the global queue at once, where any thread
/// that collects can run it. Whether there was anything to close.
fn close_batch() -> bool {
    let guard = read_lock();
    let closed = QUEUE.try_with(|q| {
        let mut q = q.borrow_mut();
        if q.next.is_empty() {
            return None;
        }
        let ripe = Arc::new(AtomicBool::new(false));
        let empty = q.spare.pop().unwrap_or_default();
        let fns = std::mem::replace(&mut q.next, empty);
        q.waiting.push_back(Batch {
            ripe: Arc::clone(&ripe),
            fns,
        });
        Some(ripe)
    });
    let Ok(Some(ripe)) = closed else {
        return false;
    };
    // Release: pairs with the Acquire loads in `run_ripe` and `Queue::drop`.
    guard.defer(move || ripe.store(true, Ordering::Release));
    guard.flush();
    true
}

/// Run this thread's ripe batches, oldest first, stopping at the first unripe one; then
/// close `next` if no batch is left in flight.
fn run_ripe() {
    loop {
        let next = QUEUE.try_with(|q| {
            let mut q = q.borrow_mut();
            // Acquire: pairs with the Release store of the crossbeam closure.
            match q.waiting.front() {
                Some(b) if b.ripe.load(Ordering::Acquire) => q.waiting.pop_front(),
                _ => None,
            }
        });
        // Run them with the queue not borrowed: they may queue callbacks of their own.
        let Ok(Some(Batch { mut fns, .. })) = next else {
            break;
        };
        fns.drain(..).for_each(Callback::call);
        // Keep the emptied vector for a later batch.
        let _ = QUEUE.try_with(|q| {
            let mut q = q.borrow_mut();
            if q.spare.len() < KEEP_SPARE {
                q.spare.push(fns);
            }
        });
    }
    let idle = QUEUE.try_with(|q| {
        let q = q.borrow();
        q.waiting.is_empty() && q.next.len() >= CLOSE_AT
    });
    if matches!(idle, Ok(true)) {
        close_batch();
    }
}

/// Start the grace period of every callback this thread queued, push its pending
/// crossbeam closures to the global queue so that other threads can mark batches ripe,
/// and run this thread's ripe batches.
pub fn flush() {
    // Closing a batch flushes crossbeam already.
    if !close_batch() {
        read_lock().flush();
    }
    run_ripe();
}

/// Wait for a full grace period (see the module docs).
pub fn synchronize() {
    if cfg!(mutant = "rcu_no_grace_period") {
        // MUTANT: return at once, as if every reader had already left.
        return;
    }
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    // Relaxed: the sentinel runs in this thread, in `flush` below.
    call_rcu(move || flag.store(true, Ordering::Relaxed));
    let mut spins = 0u32;
    while !done.load(Ordering::Relaxed) {
        flush();
        spins += 1;
        if spins > 16 || cfg!(any(loom, shuttle)) {
            super::yield_now();
        }
    }
}

/// Wait until every callback this thread queued before the call has run.
pub fn barrier() {
    // This thread runs its callbacks in the order queued, so the sentinel of
    // `synchronize` runs after all of them.
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

    /// A callback queued while its thread's batch is in flight joins the next batch,
    /// whose grace period begins later: it waits for readers that began after the
    /// batch in flight was closed.
    #[test]
    fn a_callback_behind_a_batch_in_flight_waits_for_later_readers() {
        use std::sync::mpsc::channel;
        let (a, b) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let (to_writer, writer_rx) = channel::<()>();
        let (to_main, main_rx) = channel::<()>();
        let (a2, b2) = (Arc::clone(&a), Arc::clone(&b));
        let writer = std::thread::spawn(move || {
            call_rcu(move || a2.store(true, Ordering::SeqCst));
            flush(); // a's batch closed: in flight
            to_main.send(()).unwrap();
            writer_rx.recv().unwrap(); // main now reads
            call_rcu(move || b2.store(true, Ordering::SeqCst)); // behind the batch
            for _ in 0..1000 {
                flush();
            }
            to_main.send(()).unwrap();
            writer_rx.recv().unwrap(); // main has left its read section
            barrier();
        });
        main_rx.recv().unwrap();
        let reader = read_lock();
        to_writer.send(()).unwrap();
        main_rx.recv().unwrap();
        assert!(
            !b.load(Ordering::SeqCst),
            "ran before a reader older than it left"
        );
        drop(reader);
        to_writer.send(()).unwrap();
        writer.join().unwrap();
        assert!(a.load(Ordering::SeqCst) && b.load(Ordering::SeqCst));
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
