//! Per-frame metadata (`struct page` / folio fields that softmm needs).
//!
//! One [`PageMeta`] per 4 KiB frame, in an array that lives as long as the
//! [`PhysMem`](super::PhysMem): a speculative reader (the access path, GUP-fast) may always read
//! the metadata of any pfn, even of a frame that was just freed.
//!
//! The all-zero bit pattern is the valid state of a never-used frame: the array is
//! zero-filled host memory.
//!
//! Reference counting: `refcount` counts every reference, one per page-table mapping plus
//! one per other holder (the allocator's caller, a page-cache slot, a pin). A frame
//! returns to the allocator when it drops to zero. [`PageMeta::try_get`] is
//! increment-unless-zero for speculative lookups.

use crate::sync::{AtomicU32, AtomicU64, Ordering, SpinLock};

bitflags::bitflags! {
    /// Flags of a frame ([`PageMeta::flags`]).
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
    pub struct PageFlags: u32 {
        /// Anonymous memory (not page cache).
        const ANON = 1 << 0;
        /// Anonymous and mapped by exactly one process: may be reused on a write fault
        /// without a copy (Linux `PageAnonExclusive`).
        const ANON_EXCLUSIVE = 1 << 1;
        /// A page-table page.
        const PAGETABLE = 1 << 2;
        /// First frame of a compound (2 MiB) frame.
        const HEAD = 1 << 3;
        /// A non-first frame of a compound frame.
        const TAIL = 1 << 4;
        /// Written since it was last cleaned.
        const DIRTY = 1 << 5;
        /// The shared zero frame: never freed, never counted.
        const ZERO = 1 << 6;
        /// Shared memory (shmem / page cache): owned by a file object.
        const SHMEM = 1 << 7;
        /// MADV_FREE'd: may be discarded while clean.
        const LAZYFREE = 1 << 8;
        /// Debug: a page-table page that has been unlinked from its parent.
        const DETACHED = 1 << 9;
        /// Accessed since it was mapped (`folio_test_referenced`): smaps `Referenced`
        /// counts it even after the PTE's Accessed bit was cleared (MADV_FREE).
        const REFERENCED = 1 << 10;
    }
}

/// Metadata of one 4 KiB frame.
#[derive(Debug)]
#[repr(C)]
pub struct PageMeta {
    /// References (see module docs). 0 = free.
    refcount: AtomicU32,
    /// Number of page-table entries mapping this frame.
    mapcount: AtomicU32,
    /// [`PageFlags`] bits.
    flags: AtomicU32,
    /// Allocator free-list link: pfn + 1 of the next free frame, 0 = end.
    pub(super) next: AtomicU32,
    /// Page-table lock (PTL) when this frame is a table page.
    ptl: SpinLock,
    /// Number of non-none entries when this frame is a page-table page.
    pub(crate) table_used: AtomicU32,
    /// Free for the owner's use (file index for page-cache pages).
    pub(crate) private: AtomicU64,
}

impl PageMeta {
    /// A never-used frame's metadata (what zero-filled memory holds in normal builds;
    /// the model checkers' atomics must be constructed).
    #[cfg(any(loom, shuttle))]
    pub(super) fn new() -> Self {
        Self {
            refcount: AtomicU32::new(0),
            mapcount: AtomicU32::new(0),
            flags: AtomicU32::new(0),
            next: AtomicU32::new(0),
            ptl: SpinLock::new(),
            table_used: AtomicU32::new(0),
            private: AtomicU64::new(0),
        }
    }

    /// Current reference count (a snapshot).
    pub fn refcount(&self) -> u32 {
        // Relaxed: diagnostic/accounting snapshot; decisions use RMW operations.
        self.refcount.load(Ordering::Relaxed)
    }

    /// Current map count (a snapshot).
    pub fn mapcount(&self) -> u32 {
        // Relaxed: smaps-style statistics; a snapshot is all they promise.
        self.mapcount.load(Ordering::Relaxed)
    }

    /// Current flags.
    pub fn flags(&self) -> PageFlags {
        // Acquire pairs with the Release in `set_flags`/`clear_flags`.
        PageFlags::from_bits_retain(self.flags.load(Ordering::Acquire))
    }

    /// Whether all of `f` are set.
    pub fn has(&self, f: PageFlags) -> bool {
        self.flags().contains(f)
    }

    /// Set flag bits.
    pub fn set_flags(&self, f: PageFlags) {
        // Release: publishes prior writes to whoever observes the flag with Acquire.
        self.flags.fetch_or(f.bits(), Ordering::Release);
    }

    /// Clear flag bits.
    pub fn clear_flags(&self, f: PageFlags) {
        // Release: as in `set_flags`.
        self.flags.fetch_and(!f.bits(), Ordering::Release);
    }

    /// Take one more reference; the caller already holds one (or the frame is mapped and
    /// the caller holds the PTL of a table mapping it).
    pub fn get(&self) {
        // Relaxed: a new reference derived from an existing one needs no ordering (as
        // Arc::clone).
        let old = self.refcount.fetch_add(1, Ordering::Relaxed);
        debug_assert!(old > 0, "get() on a free frame");
    }

    /// Increment unless zero: a speculative reference for lockless lookups. SeqCst pairs
    /// with the zap side (clear the PTE, then drop the reference), see protocol §3.3.
    pub fn try_get(&self) -> bool {
        let mut cur = self.refcount.load(Ordering::SeqCst);
        loop {
            if cur == 0 {
                return false;
            }
            match self.refcount.compare_exchange_weak(
                cur,
                cur + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return true,
                Err(v) => cur = v,
            }
        }
    }

    /// Drop a reference; returns true when it was the last one (the caller frees).
    pub(super) fn put_ref(&self) -> bool {
        // Release: our uses of the frame happen-before the freeing thread's Acquire.
        if self.refcount.fetch_sub(1, Ordering::Release) == 1 {
            // Acquire pairs with every other holder's Release decrement (they form one
            // release sequence). TSan does not model fences, so its builds load the
            // count instead, as `std::sync::Arc` does under TSan: the same
            // synchronisation, through the last decrement.
            #[cfg(not(softmm_tsan))]
            crate::sync::fence(Ordering::Acquire);
            #[cfg(softmm_tsan)]
            let _ = self.refcount.load(Ordering::Acquire);
            return true;
        }
        false
    }

    /// Initialise a frame just taken from the allocator: one reference, no mappings.
    pub(super) fn init_allocated(&self, flags: PageFlags) {
        // Relaxed: the frame is exclusively ours; publication to others happens through
        // a Release store of a PTE (or another Release), which orders these.
        self.mapcount.store(0, Ordering::Relaxed);
        self.table_used.store(0, Ordering::Relaxed);
        self.private.store(0, Ordering::Relaxed);
        self.flags.store(flags.bits(), Ordering::Relaxed);
        self.refcount.store(1, Ordering::Release);
    }

    /// Record one more page-table mapping.
    pub fn inc_mapcount(&self) {
        // Relaxed: mapcount changes happen under the PTL of the table that maps; readers
        // treat it as a statistic or read it under that PTL.
        self.mapcount.fetch_add(1, Ordering::Relaxed);
    }

    /// Record one page-table mapping fewer; returns the new count.
    pub fn dec_mapcount(&self) -> u32 {
        // Relaxed: as in `inc_mapcount`.
        let old = self.mapcount.fetch_sub(1, Ordering::Relaxed);
        debug_assert!(old > 0, "mapcount underflow");
        old - 1
    }

    /// The page-table lock of this (table) frame.
    pub fn ptl(&self) -> &SpinLock {
        &self.ptl
    }

    /// Used by the refcount stress knob of the zero frame.
    pub(super) fn set_refcount(&self, v: u32) {
        // Relaxed: only at PhysMem construction, before it is shared.
        self.refcount.store(v, Ordering::Relaxed);
    }
}
