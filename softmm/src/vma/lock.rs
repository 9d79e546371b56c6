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
//! 3. [`VmaLock::end_read`] decrements with Release, so everything the reader did under
//!    the lock happens before the writer's drain completes.
//! 4. [`VmaLock::detach`] (a VMA leaving the tree, under its write lock) drops the
//!    attached reference and waits for readers that incremented meanwhile (they back off
//!    at rule 2's check), so once it returns no reader can lock the VMA ever again —
//!    not even after the epoch ends.
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
        // is caught by the Acquire re-check below).
        if self.seq.load(Ordering::Relaxed) == mm_seq.load(Ordering::Relaxed) {
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
        // Acquire on the mm sequence: pairs with the Release that ends a write epoch, so
        // a reader that sees the epoch over sees every change made in it.
        if self.seq.load(Ordering::Relaxed) == mm_seq.load(Ordering::Acquire) {
            self.end_read();
            return Err(ReadFail::Locked);
        }
        Ok(())
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
}
