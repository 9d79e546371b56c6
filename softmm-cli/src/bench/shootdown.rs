//! `shootdown`: what one `munmap` costs when other CPUs hold translations of the
//! address space, so that the TLB flush has to reach them.
//!
//! One cell per reader count: thread 0 (the unmapper, the only timed thread) and 0, 1,
//! 2 or 4 readers, all in one address space (softmm: one `Cpu` each) or in this process
//! (host):
//! * each reader maps and writes a page of its own (its home page, untimed) and then,
//!   until the unmapper is done, reads a word of it again and again, so its TLB stays
//!   warm and it keeps entering the memory manager's access path as a busy thread does;
//! * the unmapper, per operation: maps the target (one page for `targeted`, 34 for
//!   `full`), writes every page of it, lends its first page to every reader
//!   ([`Thread::lend`]) and waits until each has read it once, so that every reader's
//!   TLB holds the page (all untimed); then `munmap`s the target, timed. Only the
//!   `munmap` is timed: its zap, its TLB flush (softmm: the flush request, the
//!   membarrier and the wait for each asked reader's open access window; host: the
//!   IPIs and their acknowledgements) and its frees.
//!
//! `full` unmaps 34 pages: one past the flush ceiling of both softmm and Linux (33
//! pages, `tlb_single_page_flush_ceiling`), so the flush drops every translation of
//! every CPU asked, instead of one page. All 34 pages are written, because Linux
//! flushes only the range of the entries it cleared; so `full`'s `munmap` also zaps and
//! frees 34 pages where `targeted`'s zaps one: compare `full` rows with each other
//! across reader counts, not with `targeted`. The softmm rows report the flushes the
//! timed `munmap`s made (`tlb_flushes`), which shows which kind each one was.
//!
//! Where the pages land (softmm): the readers map their home pages first and the
//! target goes just below them (top-down placement, into the gap the previous target
//! left), so the target's pages and the home pages are at most 38 consecutive pages:
//! they never share a slot of softmm's 64-entry direct-mapped TLB, and reading the home
//! page never evicts the target from a reader's TLB before the flush.
//!
//! Scheduling: the machine this was written on has two CPUs, so with two or four
//! spinning readers the unmapper competes for a CPU. Readers yield the CPU after every
//! 64 reads (`sched_yield`), so that the unmapper and the other readers get to run
//! within microseconds rather than a time slice; the unmapper spins 64 times, then
//! yields, while it waits for the readers' reads. With more threads than CPUs the
//! figures measure the scheduler as much as the flush (a reader that was preempted
//! inside an access window delays a softmm flush until it runs again); the rows'
//! `preemptions` say how often the unmapper lost its CPU inside a timed `munmap`.

use std::sync::{
    Barrier, Mutex, MutexGuard,
    atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
};

use super::{
    machine::{Machine, OpError, Thread},
    report::TlbFlushes,
    stats::Recorder,
    workload::{PAGE, Workload},
};

/// Pages `full` maps and unmaps per operation: one past the flush ceiling of softmm
/// (`tlb::FLUSH_CEILING_PAGES`) and Linux (`tlb_single_page_flush_ceiling`), 33.
const FULL_PAGES: u64 = 34;
/// Reads of its home page a reader makes between two yields.
const READS_PER_YIELD: u32 = 64;
/// Spins of a waiting unmapper before each yield.
const SPINS: u32 = 64;

/// What one run of `shootdown` measured.
#[derive(Debug)]
pub(crate) struct ShootdownRun {
    /// The unmapper's `munmap` timings.
    pub munmaps: Recorder,
    /// The address space's TLB flushes during the timed loop (softmm).
    pub tlb_flushes: Option<TlbFlushes>,
}

/// What the unmapper and the readers share.
#[derive(Debug)]
struct Board<L> {
    /// Per reader: the loan of the page to read once before the next `munmap`.
    slots: Vec<Mutex<Option<L>>>,
    /// Targets posted so far: a reader looks into its slot when this moves.
    posted: AtomicU64,
    /// Readers that have read the current target (and dropped its loan).
    read: AtomicUsize,
    /// Set when the unmapper's timed loop has ended, or a reader failed.
    stop: AtomicBool,
}

impl<L> Board<L> {
    fn new(readers: usize) -> Self {
        Self {
            slots: (0..readers).map(|_| Mutex::new(None)).collect(),
            posted: AtomicU64::new(0),
            read: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        }
    }

    /// Reader `k`'s slot. A thread that panicked holding it left nothing half-done
    /// (the slot is an `Option` set or taken whole), so a poisoned lock is used as is.
    fn slot(&self, k: usize) -> MutexGuard<'_, Option<L>> {
        self.slots[k]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One run of `w` (`shootdown` targeted or full) on `m` with `readers` readers.
pub(crate) fn run<M: Machine>(
    m: &M,
    w: Workload,
    readers: usize,
    quick: bool,
) -> Result<ShootdownRun, OpError> {
    let barrier = Barrier::new(readers + 1);
    let board = Board::new(readers);
    std::thread::scope(|s| {
        let (barrier, board) = (&barrier, &board);
        let handles: Vec<_> = (0..readers)
            .map(|k| s.spawn(move || reader(m, board, k, barrier)))
            .collect();
        let timed = unmapper(m, w, quick, board, barrier);
        // Join every reader; the first reader's error comes first: the unmapper stops
        // early because of it.
        let mut read = Ok(());
        for h in handles {
            let r = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            read = read.and(r);
        }
        read.and(timed)
    })
}

/// Thread 0: after the readers' setup, per operation map, write, lend and wait
/// (untimed), then `munmap` (timed); sets `stop` after the loop. Both barriers are
/// reached on every path, so an error cannot strand a reader.
fn unmapper<M: Machine>(
    m: &M,
    w: Workload,
    quick: bool,
    board: &Board<<M::Thread as Thread>::Loan>,
    barrier: &Barrier,
) -> Result<ShootdownRun, OpError> {
    let mut t = m.thread();
    let len = match w {
        Workload::ShootdownFull => FULL_PAGES * PAGE,
        _ => PAGE,
    };
    barrier.wait();
    let ops = w.ops(quick);
    let mut rec = Recorder::with_capacity(ops as usize);
    let before = t.tlb_flushes();
    let timed = munmaps(&mut t, board, len, ops, &mut rec);
    let tlb_flushes = before.zip(t.tlb_flushes()).map(|(b, a)| a.since(b));
    // Relaxed: the flag only ends the readers' loops; the barrier orders the rest.
    board.stop.store(true, Ordering::Relaxed);
    barrier.wait();
    timed.map(|()| ShootdownRun {
        munmaps: rec,
        tlb_flushes,
    })
}

/// The timed loop: `ops` times, post a target of `len` bytes (untimed) and unmap it
/// (timed). Preemptions are counted around each `munmap` only: waiting for the readers
/// yields the CPU, which counts as an involuntary switch too.
fn munmaps<T: Thread>(
    t: &mut T,
    board: &Board<T::Loan>,
    len: u64,
    ops: u64,
    rec: &mut Recorder,
) -> Result<(), OpError> {
    for _ in 0..ops {
        // None: a reader failed; its error is the run's.
        let Some(addr) = post(t, board, len)? else {
            break;
        };
        rec.batch_watched(1, || t.unmap(addr, len))?;
    }
    Ok(())
}

/// Untimed: map `len` bytes, write every page, lend the first page to every reader and
/// wait until each has read it. The target's address, or `None` when a reader stopped.
fn post<T: Thread>(t: &mut T, board: &Board<T::Loan>, len: u64) -> Result<Option<u64>, OpError> {
    let addr = t.map(len)?;
    (addr..addr + len)
        .step_by(PAGE as usize)
        .try_for_each(|p| t.touch(p))?;
    // Relaxed: every reader has counted the previous target (waited for below), and
    // the Release below publishes this reset with the loans.
    board.read.store(0, Ordering::Relaxed);
    for k in 0..board.slots.len() {
        *board.slot(k) = Some(t.lend(addr)?);
    }
    // Release: the loans and the reset above are visible to a reader that sees the
    // new count (the slot's lock orders the loans too).
    board.posted.fetch_add(1, Ordering::Release);
    let mut spins = 0u32;
    // Acquire: pairs with each reader's Release increment: its read of the target
    // happened before the `munmap` that follows.
    while board.read.load(Ordering::Acquire) < board.slots.len() {
        // Relaxed: a reader sets it after failing, then returns its error itself.
        if board.stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        spins += 1;
        if spins.is_multiple_of(SPINS) {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
    Ok(Some(addr))
}

/// A reader: map and write its home page, then read it until `stop`, and each posted
/// target once; unmap the home page. Sets `stop` when it fails, so that the unmapper
/// does not wait for it; both barriers are reached on every path.
fn reader<M: Machine>(
    m: &M,
    board: &Board<<M::Thread as Thread>::Loan>,
    k: usize,
    barrier: &Barrier,
) -> Result<(), OpError> {
    let mut t = m.thread();
    let home = t.map(PAGE).and_then(|a| t.touch(a).map(|()| a));
    barrier.wait();
    let read = match &home {
        Ok(a) => read_loop(&mut t, *a, board, k),
        Err(e) => Err(e.clone()),
    };
    if read.is_err() {
        // Relaxed: only ends the unmapper's wait; the barrier orders the rest.
        board.stop.store(true, Ordering::Relaxed);
    }
    barrier.wait();
    let down = home.and_then(|a| t.unmap(a, PAGE));
    read.and(down)
}

/// Reader `k`'s loop: 64 reads of `home`, then the current target if one was posted
/// since the last look, then a yield; until `stop`.
fn read_loop<T: Thread>(
    t: &mut T,
    home: u64,
    board: &Board<T::Loan>,
    k: usize,
) -> Result<(), OpError> {
    let mut seen = 0;
    // Relaxed: the flag only ends the loop; the barrier after it orders the rest.
    while !board.stop.load(Ordering::Relaxed) {
        for _ in 0..READS_PER_YIELD {
            t.load_u64(home)?;
        }
        // Acquire: pairs with the unmapper's Release: the loan and the reset of `read`
        // made before the new count are visible.
        let posted = board.posted.load(Ordering::Acquire);
        if posted != seen {
            seen = posted;
            let loan = board.slot(k).take();
            if let Some(loan) = loan {
                t.load_lent(&loan)?;
                drop(loan);
                // Release: this read (and the loan's drop) before the unmapper's munmap.
                board.read.fetch_add(1, Ordering::Release);
            }
        }
        std::thread::yield_now();
    }
    Ok(())
}
