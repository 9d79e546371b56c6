//! mmu_gather: what a zap or unmap took out of the page tables, freed after the flush.
//!
//! Order (DESIGN.md decision 7, protocol §2.1): entries are cleared under the PTL, the
//! cleared frames and the unlinked table pages are collected here, then [`Gather::finish`]
//! is where the frames' references are dropped and the table pages handed to RCU, so
//! that a lockless walker that loaded a pointer to one before it was unlinked may still
//! read it until its read section ends. The caller (`AddressSpace::tlb_finish`) first
//! flushes the TLBs that may cache a translation of the range and waits for the CPUs
//! that may be walking the unlinked tables.

use std::sync::Arc;

use crate::{
    addr::PageAddr,
    frame::{PageFlags, Pfn, PhysMem},
    sync::rcu,
};

/// Frames and tables waiting for a TLB flush.
#[derive(Debug)]
#[must_use = "unmapped frames stay allocated until the gather is finished"]
pub struct Gather {
    pm: Arc<PhysMem>,
    pages: Vec<Pfn>,
    tables: Vec<Pfn>,
    /// The addresses whose translations changed: what the TLB flush must cover.
    range: Option<(PageAddr, PageAddr)>,
}

impl Gather {
    /// An empty gather over `pm`.
    pub fn new(pm: &Arc<PhysMem>) -> Self {
        Self {
            pm: Arc::clone(pm),
            pages: Vec::new(),
            tables: Vec::new(),
            range: None,
        }
    }

    /// A cleared leaf held a reference to `pfn`: drop it after the flush.
    pub fn add_page(&mut self, pfn: Pfn) {
        self.pages.push(pfn);
    }

    /// Entries in `[start, end)` were cleared or downgraded: CPUs must drop their
    /// translations of it before anything collected here is freed.
    pub fn cover(&mut self, start: PageAddr, end: PageAddr) {
        if start < end {
            self.range = Some(match self.range {
                Some((s, e)) => (s.min(start), e.max(end)),
                None => (start, end),
            });
        }
    }

    /// Whether table pages were unlinked: CPUs that may be walking them (inside an
    /// access window, with no RCU read section) must be waited for before they are
    /// freed.
    pub fn has_tables(&self) -> bool {
        !self.tables.is_empty()
    }

    /// The range the flush before [`finish`](Self::finish) must cover, `None` when no
    /// entry changed.
    pub fn flush_range(&self) -> Option<(PageAddr, PageAddr)> {
        self.range
    }

    /// `pfn` is a table page that was unlinked from its parent: free it after the flush
    /// and a grace period.
    pub fn add_table(&mut self, pfn: Pfn) {
        self.pm.meta(pfn).set_flags(PageFlags::DETACHED);
        self.tables.push(pfn);
    }

    /// Number of frames and tables collected.
    pub fn len(&self) -> (usize, usize) {
        (self.pages.len(), self.tables.len())
    }

    /// Whether nothing was collected.
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty() && self.tables.is_empty()
    }

    /// Free what was collected: pages now, tables through one RCU callback. The caller
    /// has flushed the TLBs over [`flush_range`](Self::flush_range) (mm's `tlb_finish`).
    pub fn finish(mut self) {
        self.release();
    }

    fn release(&mut self) {
        // After the TLB flush: no CPU can still use a translation of these pages.
        for pfn in self.pages.drain(..) {
            // SAFETY: (1) each page was added with the count of the entry zap cleared.
            unsafe { self.pm.put(pfn) };
        }
        if cfg!(mutant = "early_table_free") {
            // MUTANT: free unlinked tables at once, skipping the grace period.
            for t in self.tables.drain(..) {
                self.pm
                    .meta(t)
                    .clear_flags(PageFlags::PAGETABLE | PageFlags::DETACHED);
                self.pm.poison_table_entries(t);
                // SAFETY: (1) the gather owns the count of the parent entry it cleared
                // (the mutant only frees too early, not twice).
                unsafe { self.pm.put(t) };
            }
        }
        if !self.tables.is_empty() {
            let tables = std::mem::take(&mut self.tables);
            let pm = Arc::clone(&self.pm);
            // One callback per batch, not per table. The callback takes no lock: `put`
            // goes to the lock-free allocator.
            rcu::call_rcu(move || {
                for t in tables {
                    debug_assert_eq!(
                        pm.meta(t).table_used.load(crate::sync::Ordering::Relaxed),
                        0
                    );
                    pm.meta(t)
                        .clear_flags(PageFlags::PAGETABLE | PageFlags::DETACHED);
                    pm.poison_table_entries(t);
                    // SAFETY: (1) the gather owned the count of the parent entry it
                    // cleared; a grace period has passed since, so no walker holds it.
                    unsafe { pm.put(t) };
                }
            });
        }
    }
}

impl Drop for Gather {
    fn drop(&mut self) {
        self.release();
    }
}
