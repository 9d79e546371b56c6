//! Four-level page tables in frames of [`PhysMem`], and the walkers over them.
//!
//! Rules (protocol reference §1, §2; Appendix A items 1–4):
//! * Entries are `AtomicU64`s inside table frames. Readers `load(Acquire)`; a cleared
//!   or modified present entry is changed with `swap`/`compare_exchange` (the MMU may set
//!   Accessed/Dirty concurrently, a plain load-modify-store would lose them).
//! * Install: a new table is allocated and zeroed outside any lock, then stored with
//!   `Release` under the parent table's PTL after re-checking the slot is still none.
//!   The Release pairs with every walker's Acquire load: whoever sees the table pointer
//!   sees zeroed entries.
//! * The PTL of a table lives in that table's `PageMeta`. A leaf table is locked through
//!   [`PageTable::pte_lock`], which derives the lock from the table pointer it *read* and
//!   re-checks the parent slot after locking (`map_pte_lock`), retrying if it changed.
//! * Table pages are freed only by [`PageTable::free_tables`] (which unlinks them under
//!   the parent's PTL) through a [`Gather`]: TLB flush, then an RCU grace period.
//!
//! Walker classes (`walk.rs`): every walk outside this module is a [`Walk`] whose mode
//! type says what it may assume and do: [`Lockless`] (an RCU guard; snapshots to
//! re-validate), [`Semi`] (a [`LayoutLock`]: reads entries that may change), [`Locked`]
//! (a [`LayoutLock`]: changes entries under their PTLs; unlinking tables takes a
//! [`LayoutWrite`]).

mod entry;
mod gather;
mod geometry;
mod walk;

use std::{marker::PhantomData, sync::Arc};

pub use entry::{Pte, PteFlags, PteView};
pub use gather::Gather;
pub use geometry::{Geometry, Level, MmGeometry, Model, Tiny, X86_4K};
pub use walk::{LayoutLock, LayoutWrite, Locked, Lockless, Semi, Walk};

use crate::{
    addr::PageAddr,
    frame::{PageFlags, Pfn, PhysMem},
    sync::{AtomicU64, Ordering, SpinGuard},
};

/// Allocation of a table page failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("out of frames for a page table")]
pub struct TableOom;

/// A page table (one address space's `pgd`).
#[derive(Debug)]
pub struct PageTable<G: Geometry = MmGeometry> {
    pm: Arc<PhysMem>,
    root: Pfn,
    /// Table pages below the root that are linked (`nr_ptes` + upper levels).
    nr_tables: AtomicU64,
    _g: PhantomData<G>,
}

/// A leaf entry with its table's PTL held.
#[derive(Debug)]
pub struct PteLocked<'a> {
    slot: &'a AtomicU64,
    table: Pfn,
    pm: &'a PhysMem,
    _ptl: SpinGuard<'a>,
}

impl PteLocked<'_> {
    /// The current entry (stable but for MMU Accessed/Dirty updates).
    pub fn get(&self) -> Pte {
        // Acquire pairs with the Release store that installed the entry.
        Pte(self.slot.load(Ordering::Acquire))
    }

    /// Replace the entry, keeping the table's used count right.
    pub fn set(&self, new: Pte) -> Pte {
        // AcqRel: Release publishes the frame contents behind `new` to walkers that
        // Acquire-load it; Acquire returns an old value with any MMU A/D bits.
        let old = Pte(self.slot.swap(new.0, Ordering::AcqRel));
        let used = &self.pm.meta(self.table).table_used;
        // Relaxed: the used count is only changed under this PTL.
        match (old.is_none(), new.is_none()) {
            (true, false) => {
                used.fetch_add(1, Ordering::Relaxed);
            }
            (false, true) => {
                used.fetch_sub(1, Ordering::Relaxed);
            }
            _ => {}
        }
        old
    }

    /// The table page this entry lives in.
    pub fn table(&self) -> Pfn {
        self.table
    }
}

impl<G: Geometry> PageTable<G> {
    /// A page table with an empty root.
    pub fn new(pm: &Arc<PhysMem>) -> Result<Self, TableOom> {
        // The table owns the root's count until `Drop` hands it to RCU.
        let root = pm
            .alloc_zeroed(PageFlags::PAGETABLE)
            .ok_or(TableOom)?
            .into_raw();
        pm.clear_table_entries(root);
        Ok(Self {
            pm: Arc::clone(pm),
            root,
            nr_tables: AtomicU64::new(0),
            _g: PhantomData,
        })
    }

    /// The physical memory this table lives in.
    pub fn phys(&self) -> &Arc<PhysMem> {
        &self.pm
    }

    /// Number of linked table pages below the root.
    pub fn nr_tables(&self) -> u64 {
        // Relaxed: a statistic, exact at quiescent points.
        self.nr_tables.load(Ordering::Relaxed)
    }

    /// The entry `idx` of table page `table`.
    fn slot(&self, table: Pfn, idx: usize) -> &AtomicU64 {
        assert!(idx < G::ENTRIES);
        // SAFETY: (1) `slot` is private to this module, and every caller passes the root
        // or a table pointer it read from an entry of this page table, inside an RCU read
        // section or under the lock of the parent that keeps it linked; table pages are
        // freed only through RCU (`Gather`, `Drop`), so the page is still a table.
        unsafe { self.pm.table_entry(table, idx) }
    }

    /// A zeroed page for a new table.
    fn alloc_table(&self) -> Result<Pfn, TableOom> {
        // The count moves into the parent entry that links the table.
        let pfn = self
            .pm
            .alloc_zeroed(PageFlags::PAGETABLE)
            .ok_or(TableOom)?
            .into_raw();
        self.pm.clear_table_entries(pfn);
        Ok(pfn)
    }

    /// Lockless lookup of the leaf mapping `va`: `(entry, level)`, or `None` when a
    /// level is none. The result is a snapshot; act on it only after re-validating.
    fn lookup(&self, va: u64) -> Option<(Pte, Level)> {
        self.lookup_slot(va).map(|(_, e, level)| (e, level))
    }

    /// As [`lookup`](Self::lookup), with the slot the leaf was read from. (The TLB
    /// miss path: written as one loop over the levels, with no decoded view.)
    #[inline]
    fn lookup_slot(&self, va: u64) -> Option<(&AtomicU64, Pte, Level)> {
        if va >= G::top() {
            return None;
        }
        let mem = self.pm.table_mem();
        let mut table = self.root;
        let mut level = G::root();
        loop {
            // SAFETY: (1) as in `slot`.
            let slot = unsafe { mem.entry(table, G::index(va, level)) };
            // Acquire pairs with the Release store of `install_table` / `PteLocked::set`.
            let e = Pte(slot.load(Ordering::Acquire));
            #[cfg(any(loom, shuttle))]
            assert_ne!(e.0, PhysMem::TABLE_POISON, "walked a freed table");
            if e.is_none() {
                return None;
            }
            // A leaf: at the PTE level, a huge one above it, or a non-present one (as
            // `Pte::decode` classifies).
            if level == Level::PTE || e.has(PteFlags::PS) || !e.present() {
                return Some((slot, e, level));
            }
            table = e.pfn();
            level = level.below();
        }
    }

    /// Set Accessed (and Dirty for writes) on the leaf for `va` if it still equals
    /// `seen`, as the hardware MMU does on use.
    fn mark_used(&self, va: u64, seen: Pte, write: bool) {
        let bit = if write {
            PteFlags::A | PteFlags::D
        } else {
            PteFlags::A
        };
        if seen.has(bit) {
            return;
        }
        if let Some(slot) = self.leaf_slot(va) {
            // AcqRel CAS: only if unchanged; the A/D bits pair with the zap/change
            // swaps, which return them to whoever clears the entry.
            let _ = slot.compare_exchange(
                seen.0,
                seen.0 | bit.bits(),
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
    }

    fn leaf_slot(&self, va: u64) -> Option<&AtomicU64> {
        let mut table = self.root;
        for level in Level::down(G::root(), Level::PMD) {
            // Acquire: as in `lookup`.
            match Pte(self
                .slot(table, G::index(va, level))
                .load(Ordering::Acquire))
            .decode(level)
            {
                PteView::Table(child) => table = child,
                _ => return None,
            }
        }
        Some(self.slot(table, G::index(va, Level::PTE)))
    }

    /// Link a new zeroed table into `parent[idx]` unless someone did first. Returns the
    /// entry now in the slot.
    fn install_table(&self, parent: Pfn, idx: usize) -> Result<Pte, TableOom> {
        let new = self.alloc_table()?;
        let slot = self.slot(parent, idx);
        let ptl = self.pm.meta(parent).ptl().lock();
        // Acquire: see a racing installer's table fully.
        let cur = Pte(slot.load(Ordering::Acquire));
        if !cur.is_none() {
            drop(ptl);
            // SAFETY: (1) `alloc_table` gave us the only count; the table was never
            // published, so no walker can have reached it: free directly.
            unsafe { self.pm.put(new) };
            return Ok(cur);
        }
        let e = Pte::table(new);
        // Release: the zeroed table (and its zeroed PTL) happen-before any walker that
        // Acquire-loads this entry.
        slot.store(e.0, Ordering::Release);
        // Relaxed: counters changed under the parent's PTL / statistics.
        self.pm
            .meta(parent)
            .table_used
            .fetch_add(1, Ordering::Relaxed);
        self.nr_tables.fetch_add(1, Ordering::Relaxed);
        drop(ptl);
        Ok(e)
    }

    /// Lock the leaf entry for `va`, allocating missing tables when `alloc` is set.
    /// `Ok(None)`: a table on the way is missing (and `alloc` is false) or a huge leaf
    /// covers `va`.
    fn pte_lock(&self, va: PageAddr, alloc: bool) -> Result<Option<PteLocked<'_>>, TableOom> {
        if va >= G::top() {
            return Ok(None); // beyond what this geometry maps (model builds only)
        }
        let va = va.get();
        loop {
            let mut table = self.root;
            let mut parent_slot = None;
            let mut seen = Pte::NONE;
            for level in Level::down(G::root(), Level::PMD) {
                let idx = G::index(va, level);
                let slot = self.slot(table, idx);
                // Acquire: as in `lookup`.
                let mut e = Pte(slot.load(Ordering::Acquire));
                if e.is_none() {
                    if !alloc {
                        return Ok(None);
                    }
                    e = self.install_table(table, idx)?;
                }
                match e.decode(level) {
                    PteView::Table(child) => {
                        table = child;
                        parent_slot = Some(slot);
                        seen = e;
                    }
                    _ => return Ok(None),
                }
            }
            let ptl = self.pm.meta(table).ptl().lock();
            // Retry: the leaf table was unlinked or replaced between our read of the
            // parent entry and taking its PTL (`map_pte_lock` re-check, §1.4).
            if let Some(ps) = parent_slot {
                // Acquire: as in `lookup`.
                if ps.load(Ordering::Acquire) != seen.0 {
                    drop(ptl);
                    continue;
                }
            }
            return Ok(Some(PteLocked {
                slot: self.slot(table, G::index(va, Level::PTE)),
                table,
                pm: &self.pm,
                _ptl: ptl,
            }));
        }
    }

    /// Visit every leaf table intersecting `[start, end)`: `f(table, lo, hi)` with the
    /// part of the range it covers. Upper-level entries that are none are skipped.
    fn for_each_leaf_table(
        &self,
        start: PageAddr,
        end: PageAddr,
        f: &mut dyn FnMut(Pfn, u64, u64),
    ) {
        let (start, end) = (start.get(), end.get().min(G::top()));
        self.visit(self.root, G::root(), 0, start, end, f);
    }

    fn visit(
        &self,
        table: Pfn,
        level: Level,
        base: u64,
        start: u64,
        end: u64,
        f: &mut dyn FnMut(Pfn, u64, u64),
    ) {
        if level == Level::PTE {
            f(table, start, end);
            return;
        }
        let span = G::entry_span(level);
        let mut va = start;
        while va < end {
            let idx = G::index(va, level);
            let slot_lo = base + idx as u64 * span;
            let slot_hi = slot_lo + span;
            // Acquire: as in `lookup`.
            if let PteView::Table(child) =
                Pte(self.slot(table, idx).load(Ordering::Acquire)).decode(level)
            {
                self.visit(child, level.below(), slot_lo, va, end.min(slot_hi), f);
            }
            va = slot_hi;
        }
    }

    /// Semi-locked read walk: `f(va, entry)` for every non-none leaf in `[start, end)`.
    /// The caller holds `mmap_lock` (the layout is stable); entries may change under it.
    fn for_each_leaf(&self, start: PageAddr, end: PageAddr, mut f: impl FnMut(PageAddr, Pte)) {
        self.for_each_leaf_table(start, end, &mut |table, lo, hi| {
            let mut va = lo;
            while va < hi {
                // Acquire: as in `lookup`.
                let e = Pte(self
                    .slot(table, G::index(va, Level::PTE))
                    .load(Ordering::Acquire));
                if !e.is_none() {
                    f(PageAddr::down(va), e);
                }
                va += 1 << G::PAGE_SHIFT;
            }
        });
    }

    /// Locked walk: for every non-none leaf in `[start, end)`, under its table's PTL,
    /// replace it with `f(va, old)` (atomically against MMU A/D updates).
    fn change(&self, start: PageAddr, end: PageAddr, mut f: impl FnMut(PageAddr, Pte) -> Pte) {
        self.for_each_leaf_table(start, end, &mut |table, lo, hi| {
            let _ptl = self.pm.meta(table).ptl().lock();
            let mut va = lo;
            while va < hi {
                let slot = self.slot(table, G::index(va, Level::PTE));
                // Acquire: as in `lookup`; the CAS below retries if the MMU set A/D.
                let mut cur = slot.load(Ordering::Acquire);
                while cur != 0 {
                    let new = f(PageAddr::down(va), Pte(cur));
                    debug_assert!(!new.is_none(), "change() never clears; use zap()");
                    // AcqRel: as in `PteLocked::set`.
                    match slot.compare_exchange(cur, new.0, Ordering::AcqRel, Ordering::Acquire) {
                        Ok(_) => break,
                        Err(v) => cur = v,
                    }
                }
                va += 1 << G::PAGE_SHIFT;
            }
        });
    }

    /// Locked walk: clear every leaf in `[start, end)` and hand `f(va, old)` each old
    /// entry (with its final A/D bits). Tables stay linked.
    fn zap(&self, start: PageAddr, end: PageAddr, f: impl FnMut(PageAddr, Pte)) {
        self.zap_except(start, end, |_| false, f);
    }

    /// As [`zap`](Self::zap), but entries for which `keep` is true stay (guard markers
    /// survive MADV_DONTNEED).
    fn zap_except(
        &self,
        start: PageAddr,
        end: PageAddr,
        keep: impl Fn(Pte) -> bool,
        mut f: impl FnMut(PageAddr, Pte),
    ) {
        self.for_each_leaf_table(start, end, &mut |table, lo, hi| {
            let _ptl = self.pm.meta(table).ptl().lock();
            let mut va = lo;
            while va < hi {
                let slot = self.slot(table, G::index(va, Level::PTE));
                // Relaxed pre-check: skipping a none entry needs no ordering; a non-none
                // one is taken with the AcqRel swap. Entries to keep never change under
                // this PTL except for A/D PteFlags, which markers do not have.
                let cur = slot.load(Ordering::Relaxed);
                if cur != 0 && !keep(Pte(cur)) {
                    // The MUTANT drops the entry's reference before the clear below.
                    let dropped = cfg!(mutant = "zap_put_before_clear") && self.put_early(Pte(cur));
                    // AcqRel: Acquire returns the final A/D bits; Release orders the clear
                    // before the reference drop that follows (GUP-fast pairing, §3.3).
                    let old = Pte(slot.swap(0, Ordering::AcqRel));
                    if !old.is_none() {
                        // Relaxed: changed under this PTL.
                        self.pm
                            .meta(table)
                            .table_used
                            .fetch_sub(1, Ordering::Relaxed);
                        if !dropped {
                            f(PageAddr::down(va), old);
                        }
                    }
                }
                va += 1 << G::PAGE_SHIFT;
            }
        });
    }

    /// The MUTANT of `zap_except` (`zap_put_before_clear`): drop the reference the leaf
    /// `pte` holds while the entry still maps the frame, so the frame can be freed and
    /// reused before the clear, and a lockless reader can still find it there. Returns
    /// whether it dropped one; the caller then hands the cleared entry to nobody (the
    /// frame's mapcount stays as it was: the frame is free, its next owner resets it).
    fn put_early(&self, pte: Pte) -> bool {
        if !pte.has_frame() || pte.has(PteFlags::SPECIAL) {
            return false;
        }
        // SAFETY: (1) the entry owns one count of its frame; the mutant gives it up
        // before clearing the entry (the bug it models) and never hands it on.
        unsafe { self.pm.put(pte.pfn()) };
        true
    }

    /// Unlink and free (through `gather`) every table that maps only addresses inside
    /// `[start, end)` widened to `[floor, ceiling)`: a table is freed only if the whole
    /// span it covers lies within `[floor, ceiling)`, so tables shared with neighbouring
    /// mappings survive (`free_pgtables` floor/ceiling rule, §2.3). The caller has zapped
    /// the range and holds `mmap_lock` for write.
    fn free_tables(
        &self,
        start: PageAddr,
        end: PageAddr,
        floor: PageAddr,
        ceiling: PageAddr,
        gather: &mut Gather,
    ) {
        let end = end.get().min(G::top());
        let (floor, ceiling) = (floor.get(), ceiling.get());
        self.free_level(
            self.root,
            G::root(),
            0,
            start.get(),
            end,
            floor,
            ceiling,
            gather,
        );
    }

    #[expect(clippy::too_many_arguments, reason = "a recursive walk over one range")]
    fn free_level(
        &self,
        table: Pfn,
        level: Level,
        base: u64,
        start: u64,
        end: u64,
        floor: u64,
        ceiling: u64,
        gather: &mut Gather,
    ) {
        let span = G::entry_span(level);
        let mut va = start;
        while va < end {
            let idx = G::index(va, level);
            let lo = base + idx as u64 * span;
            let hi = lo + span;
            let slot = self.slot(table, idx);
            // Acquire: as in `lookup`.
            if let PteView::Table(child) = Pte(slot.load(Ordering::Acquire)).decode(level) {
                if level > Level::PMD {
                    self.free_level(
                        child,
                        level.below(),
                        lo,
                        va,
                        end.min(hi),
                        floor,
                        ceiling,
                        gather,
                    );
                }
                if lo >= floor && hi <= ceiling {
                    let _ptl = self.pm.meta(table).ptl().lock();
                    // AcqRel: as in `zap`.
                    slot.swap(0, Ordering::AcqRel);
                    // Relaxed: counters changed under the parent's PTL / statistics.
                    self.pm
                        .meta(table)
                        .table_used
                        .fetch_sub(1, Ordering::Relaxed);
                    self.nr_tables.fetch_sub(1, Ordering::Relaxed);
                    gather.add_table(child);
                }
            }
            va = hi;
        }
    }
}

impl<G: Geometry> Drop for PageTable<G> {
    fn drop(&mut self) {
        // The owner zapped every leaf (exit); unlink what is left and free the root.
        let mut gather = Gather::new(&self.pm);
        let mut leaked = Vec::new();
        let top = PageAddr::down(G::top());
        self.zap(PageAddr::ZERO, top, |_, pte| leaked.push(pte));
        debug_assert!(
            leaked.is_empty(),
            "page table dropped with mapped leaves: {leaked:?}"
        );
        self.free_tables(PageAddr::ZERO, top, PageAddr::ZERO, top, &mut gather);
        let root = self.root;
        gather.finish();
        let pm = Arc::clone(&self.pm);
        // The root goes through RCU too: a lockless walker may have loaded it.
        crate::sync::rcu::call_rcu(move || {
            pm.meta(root).clear_flags(PageFlags::PAGETABLE);
            // SAFETY: (1) the table owned the root's count since `new`.
            unsafe { pm.put(root) };
        });
    }
}

#[cfg(test)]
mod tests;
