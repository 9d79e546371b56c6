//! The per-VMA lock (protocol reference §4; Linux's `vm_lock_seq` + `vm_refcnt`).
//!
//! A VMA can be read-locked by a page fault without `mmap_lock`, and write-locked by a
//! writer that holds `mmap_lock` for write. State:
//!
//! * `seq`: the `mmap_lock` write epoch in which the VMA was last write-locked
//!   ([`NEVER`] at first). The address space's `mm_lock_seq` is odd while `mmap_lock` is
//!   held for write; "write-locked" ⇔ `seq == mm_lock_seq`. Releasing `mmap_lock` makes
//!   the mm sequence even again, which releases every VMA write lock of that epoch at
//!   once (nothing to undo per VMA).
//! * `refcnt`: 0 = detached (never lockable again), 1 = attached, `1 + n` = attached
//!   with `n` readers (or readers backing off), plus [`EXCLUDE`] while a writer or a
//!   detacher waits for readers to drain. A reader's increment is "increment if non-zero
//!   and below [`LIMIT`]", so it fails while `EXCLUDE` is set.
//!
//! Rules:
//!
//! 1. [`VmaLock::start_write`] only under `mmap_lock` write, with the current odd
//!    sequence: set `EXCLUDE`, wait until only the attached reference is left (readers
//!    drained), store `seq`, clear `EXCLUDE` with Release.
//! 2. [`VmaLock::try_read`]: increment (Acquire), then compare `seq` with the mm sequence
//!    (Acquire); equal ⇒ back off. So a reader never holds a VMA that a writer has
//!    write-locked in the current epoch (false "locked" answers are allowed: they cost
//!    a fallback; false "unlocked" answers are not). The caller re-checks the address
//!    range after locking (the VMA found may have been replaced meanwhile).
//!    A reader that sees `seq` is [`NEVER`] or below `seen` (rule 5) needs no load of the
//!    mm sequence: that epoch is over (and it was never locked in the current one).
//! 3. [`VmaLock::end_read`] decrements with Release, so everything the reader did under
//!    the lock happens before the writer's drain completes.
//! 4. [`VmaLock::detach`] (a VMA leaving the tree, under its write lock) drops the
//!    attached reference and waits for readers that incremented meanwhile (they back off
//!    at rule 2's check), so once it returns no reader can lock the VMA ever again —
//!    not even after the epoch ends.
//! 5. `seen`: the highest mm sequence a reader of this VMA has loaded (Acquire) and
//!    recorded (Release). The mm sequence only grows, so `seq < seen` proves the epoch
//!    `seq` over: the answer a load of the mm sequence would give, and the
//!    happens-before too (the recording reader's Acquire load synchronised with that
//!    epoch's end; our Acquire load of `seen` with its record). The mm sequence's line is
//!    written by every `mmap_lock` writer of the address space; `seen` sits on the VMA's
//!    own line, which only this VMA's readers and writers touch. So a fault in a VMA
//!    that no writer touched since its last fault reads no line that a writer elsewhere
//!    in the address space keeps dirtying (`softmm bench fault-churn`: one cross-core miss
//!    per fault on the mm sequence was a quarter of the fault's cost). Linux reads
//!    `mm->mm_lock_seq` on every `vma_start_read`.
//!
//! Memory: VMAs are freed through RCU only after they are detached, so a reader that
//! found one under an RCU guard may touch its lock word.

use crate::sync::{AtomicU32, AtomicU64, Ordering, yield_now};

/// `seq` of a VMA never write-locked (the mm sequence is never all ones).
pub const NEVER: u64 = u64::MAX;
/// The flag a writer or detacher adds to `refcnt` to keep new readers out.
pub const EXCLUDE: u32 = 1 << 30;
/// Readers may increment only below this.
pub const LIMIT: u32 = EXCLUDE - 1;

/// Why a read lock was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadFail {
    /// The VMA left the tree: look it up again.
    Detached,
    /// Write-locked in the current epoch (or a writer is draining): fall back.
    Locked,
}

/// The lock words of one VMA.
#[derive(Debug)]
pub struct VmaLock {
    seq: AtomicU64,
    refcnt: AtomicU32,
    /// Rule 5: a lower bound of the mm sequence, recorded by readers.
    seen: AtomicU64,
}

impl Default for VmaLock {
    fn default() -> Self {
        Self::new()
    }
}

impl VmaLock {
    /// Attached, never write-locked (VMAs are created to be inserted).
    pub fn new() -> Self {
        Self {
            seq: AtomicU64::new(NEVER),
            refcnt: AtomicU32::new(1),
            seen: AtomicU64::new(0),
        }
    }

    /// Wait until `refcnt == target` (a writer's drain).
    fn wait_for(&self, target: u32) {
        let mut spins = 0u32;
        // Acquire: pairs with the readers' Release decrement in `end_read`, so their
        // faults happen before whatever the writer does next.
        while self.refcnt.load(Ordering::Acquire) != target {
            spins += 1;
            if spins > 64 || cfg!(any(loom, shuttle)) {
                yield_now();
            }
        }
    }

    /// Write-lock in epoch `mm_seq` (odd; caller holds `mmap_lock` for write). Returns
    /// at once if already locked in this epoch or detached.
    pub fn start_write(&self, mm_seq: u64) {
        debug_assert!(mm_seq % 2 == 1, "start_write outside a write epoch");
        // Relaxed: only writers (serialised by mmap_lock) store `seq`.
        if self.seq.load(Ordering::Relaxed) == mm_seq {
            return;
        }
        // Acquire: as in `wait_for`.
        let old = self.refcnt.fetch_add(EXCLUDE, Ordering::Acquire);
        if old & !EXCLUDE == 0 {
            // Detached: nothing to lock (attaching needs mmap_lock write too).
            // Relaxed: undoes our own flag; readers fail on 0 and on the flag alike.
            self.refcnt.fetch_sub(EXCLUDE, Ordering::Relaxed);
            return;
        }
        self.wait_for(EXCLUDE + 1);
        if cfg!(mutant = "vma_lock_skip_seq") {
            // MUTANT: drain readers but never record the epoch: readers get in at once.
        } else {
            // Relaxed: published by the Release below (and readers' Acquire on it).
            self.seq.store(mm_seq, Ordering::Relaxed);
        }
        // Release: a reader whose increment (Acquire) follows sees `seq`.
        self.refcnt.fetch_sub(EXCLUDE, Ordering::Release);
    }

    /// Try to read-lock against the mm sequence `mm_seq` (rule 2).
    pub fn try_read(&self, mm_seq: &AtomicU64) -> Result<(), ReadFail> {
        // Cheap pessimistic pre-check (Relaxed: a stale answer only costs a fallback or
        // is caught by the re-check below). Skipped where rule 5 answers it.
        let s = self.seq.load(Ordering::Relaxed);
        if !self.epoch_over(s) && s == mm_seq.load(Ordering::Relaxed) {
            return Err(ReadFail::Locked);
        }
        let mut cur = self.refcnt.load(Ordering::Relaxed);
        loop {
            if cur == 0 {
                return Err(ReadFail::Detached);
            }
            if cur >= LIMIT {
                return Err(ReadFail::Locked);
            }
            // Acquire: pairs with the writer's Release flag removal (we then see its
            // `seq`) and with attach/detach.
            match self.refcnt.compare_exchange_weak(
                cur,
                cur + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(v) => cur = v,
            }
        }
        // Relaxed: after the Acquire increment, which pairs with the Release that
        // published the writer's `seq`.
        let s = self.seq.load(Ordering::Relaxed);
        if self.epoch_over(s) {
            return Ok(());
        }
        // Acquire on the mm sequence: pairs with the Release that ends a write epoch, so
        // a reader that sees the epoch over sees every change made in it.
        let cur = mm_seq.load(Ordering::Acquire);
        if s == cur {
            self.end_read();
            return Err(ReadFail::Locked);
        }
        // Relaxed load: only decides whether to store; the store is Release (rule 5:
        // pairs with the Acquire load in `epoch_over`).
        if cur > self.seen.load(Ordering::Relaxed) {
            self.seen.store(cur, Ordering::Release);
        }
        Ok(())
    }

    /// Rule 5: whether the epoch `s` (a VMA's `seq`) is known to be over without a load
    /// of the mm sequence.
    #[inline]
    fn epoch_over(&self, s: u64) -> bool {
        if cfg!(mutant = "vma_lock_seen_inclusive") {
            // MUTANT: `seen` may be the sequence of the epoch in progress (odd): taking
            // `seq == seen` for over lets a reader in during the writer's epoch.
            // Acquire: as below.
            return s == NEVER || s <= self.seen.load(Ordering::Acquire);
        }
        // Acquire: pairs with the Release store of `seen` in `try_read`, which came after
        // an Acquire load of the mm sequence that saw epoch `s` over.
        s == NEVER || s < self.seen.load(Ordering::Acquire)
    }

    /// Drop a read lock (rule 3).
    pub fn end_read(&self) {
        // Release: pairs with the writer's Acquire drain.
        self.refcnt.fetch_sub(1, Ordering::Release);
    }

    /// The VMA leaves the tree (rule 4). Caller holds `mmap_lock` write and has
    /// write-locked the VMA (or it was never published).
    pub fn detach(&self) {
        // Drop the attached reference once: a second detach (a VMA held by two trees,
        // as in the tree's differential test) finds 0 and does nothing.
        // Acquire: as in `wait_for`.
        let mut old = self.refcnt.load(Ordering::Acquire);
        loop {
            if old & !EXCLUDE == 0 {
                return;
            }
            // AcqRel: Release so readers that see 0 see everything before; Acquire as
            // in `wait_for`.
            match self.refcnt.compare_exchange_weak(
                old,
                old - 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(v) => old = v,
            }
        }
        if old & !EXCLUDE <= 1 {
            return;
        }
        // Readers incremented meanwhile (they will back off): keep new ones out and
        // wait for these to leave, then drop the flag (leaving 0).
        self.refcnt.fetch_add(EXCLUDE, Ordering::Acquire);
        self.wait_for(EXCLUDE);
        // Relaxed: only our flag is left; readers fail on it and on the 0 alike.
        self.refcnt.fetch_sub(EXCLUDE, Ordering::Relaxed);
    }

    /// Whether it was detached.
    pub fn is_detached(&self) -> bool {
        // Acquire: pairs with `detach`.
        self.refcnt.load(Ordering::Acquire) & !EXCLUDE == 0
    }

    /// Whether write-locked in epoch `mm_seq` (for assertions).
    pub fn is_write_locked(&self, mm_seq: u64) -> bool {
        // Relaxed: a writer asking about its own epoch.
        self.seq.load(Ordering::Relaxed) == mm_seq
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use super::*;

    #[test]
    fn readers_fail_in_the_write_epoch_and_succeed_after() {
        let mm = AtomicU64::new(0);
        let l = VmaLock::new();
        assert_eq!(l.try_read(&mm), Ok(()));
        l.end_read();
        mm.store(1, Ordering::SeqCst); // mmap_write_lock
        l.start_write(1);
        assert!(l.is_write_locked(1));
        assert_eq!(l.try_read(&mm), Err(ReadFail::Locked));
        mm.store(2, Ordering::SeqCst); // mmap_write_unlock: every lock released
        assert_eq!(l.try_read(&mm), Ok(()));
        l.end_read();
        mm.store(3, Ordering::SeqCst);
        l.start_write(3);
        l.detach();
        l.detach(); // idempotent
        mm.store(4, Ordering::SeqCst);
        assert!(l.is_detached());
        assert_eq!(l.try_read(&mm), Err(ReadFail::Detached));
    }

    #[test]
    fn a_reader_records_the_epoch_it_saw_over() {
        let mm = AtomicU64::new(1);
        let l = VmaLock::new();
        l.start_write(1);
        assert_eq!(l.try_read(&mm), Err(ReadFail::Locked));
        mm.store(2, Ordering::SeqCst);
        assert_eq!(l.try_read(&mm), Ok(()));
        l.end_read();
        // White box (rule 5): the reader recorded 2, so epoch 1 is over whatever the mm
        // sequence says now; a real one never goes back, this one proves it is not read.
        mm.store(1, Ordering::SeqCst);
        assert_eq!(l.try_read(&mm), Ok(()));
        l.end_read();
        // Locked again in epoch 3: 3 is not below 2, so the mm sequence decides.
        mm.store(3, Ordering::SeqCst);
        l.start_write(3);
        assert_eq!(l.try_read(&mm), Err(ReadFail::Locked));
        // A reader that saw epoch 5 in progress (before the writer locked this VMA)
        // recorded 5; that does not make epoch 5 over.
        let m = VmaLock::new();
        mm.store(1, Ordering::SeqCst);
        m.start_write(1);
        mm.store(5, Ordering::SeqCst);
        assert_eq!(m.try_read(&mm), Ok(()));
        m.end_read();
        m.start_write(5);
        assert_eq!(m.try_read(&mm), Err(ReadFail::Locked));
    }
}
