//! One walker over a [`PageTable`], with what it may assume in its type (DESIGN.md
//! decision 4, protocol reference §1.3).
//!
//! A [`Walk`] is made by one of three constructors, each asking for the proof its mode
//! needs, so that a walk without its lock does not compile:
//!
//! * [`Lockless`] ([`PageTable::lockless`], an RCU guard; or, unsafely,
//!   [`PageTable::lockless_pinned`], a CPU's TLB access window, which table frees wait
//!   for): no lock at all. Every table it reaches stays allocated until the guard drops
//!   (tables are freed only through RCU), but may be unlinked and its entries cleared meanwhile: what it reads is a
//!   snapshot, acted on only after re-validation (re-reading the entry after taking a
//!   speculative reference, as GUP-fast does). It changes nothing but the Accessed and
//!   Dirty bits, which the MMU sets the same way.
//! * [`Semi`] ([`PageTable::semi`], a [`LayoutLock`]: `mmap_lock` on either side, or
//!   a VMA read lock): no table the walk reaches is unlinked while the lock is held,
//!   but leaf entries may change under it. It only reads.
//! * [`Locked`] ([`PageTable::locked`], a [`LayoutLock`]): as `Semi`, and it changes
//!   entries, each under its table's PTL (`pte_lock`, `change`, `zap`). Unlinking
//!   tables ([`Walk::free_tables`]) needs the layout exclusively: a [`LayoutWrite`].
//!
//! Where a leaf table cannot be reached (an upper entry is none, or a huge leaf covers
//! the address) the walk says so (`None`, or the range is skipped) and the caller
//! decides: retry, fault, or skip. [`Walk::pte_lock`] re-checks the parent entry after
//! taking the PTL and starts over when the table was replaced meanwhile.
//!
//! A walk that holds the layout may lock and change entries:
//!
//! ```
//! use softmm::{PageAddr, PhysMem, testing::{AssumeLayoutHeld, PageTable, Pte, sync::rcu}};
//! let pm = PhysMem::new(4 << 20).unwrap();
//! let pt: PageTable = PageTable::new(&pm).unwrap();
//! // SAFETY: one thread; no table is unlinked.
//! let layout = unsafe { AssumeLayoutHeld::new() };
//! let l = pt.locked(&layout).pte_lock(PageAddr::down(0x1000), true).unwrap().unwrap();
//! assert_eq!(l.get(), Pte::NONE);
//! drop(l);
//! let g = rcu::read_lock();
//! assert!(pt.lockless(&g).lookup(0x1000).is_none());
//! ```
//!
//! A lockless one may not, and does not compile:
//!
//! ```compile_fail
//! use softmm::{PageAddr, PhysMem, testing::{PageTable, sync::rcu}};
//! let pm = PhysMem::new(4 << 20).unwrap();
//! let pt: PageTable = PageTable::new(&pm).unwrap();
//! let g = rcu::read_lock();
//! let _ = pt.lockless(&g).pte_lock(PageAddr::down(0x1000), true);
//! ```

use std::marker::PhantomData;

use super::{Geometry, Level, MmGeometry, PageTable, Pte, PteFlags, PteLocked, TableOom};
use crate::{
    addr::PageAddr,
    pgtable::Gather,
    sync::{AtomicU64, Ordering, rcu::RcuGuard},
};

mod sealed {
    pub trait Sealed {}
}

/// A walker mode: [`Lockless`], [`Semi`] or [`Locked`].
pub trait Mode: sealed::Sealed {}

/// RCU only: reads snapshots, sets Accessed/Dirty.
#[derive(Debug)]
pub enum Lockless {}
/// Layout held: reads entries that may change.
#[derive(Debug)]
pub enum Semi {}
/// Layout held: changes entries under their PTLs.
#[derive(Debug)]
pub enum Locked {}

impl sealed::Sealed for Lockless {}
impl sealed::Sealed for Semi {}
impl sealed::Sealed for Locked {}
impl Mode for Lockless {}
impl Mode for Semi {}
impl Mode for Locked {}

/// Proof that the caller holds a lock under which no table of this page table is
/// unlinked: `mmap_lock` (either side), or a VMA read lock for walks inside that VMA
/// (tables are unlinked only under `mmap_lock` write, after every VMA covering them
/// was write-locked, which waits for that VMA's readers).
///
/// # Safety
///
/// An implementor guarantees that while a value of it is borrowed, no table that a walk
/// of the page table it guards reaches is unlinked (by [`Walk::free_tables`]) by another
/// thread.
pub unsafe trait LayoutLock {}

/// Proof that the caller holds the layout exclusively (`mmap_lock` for write): it may
/// unlink tables.
///
/// # Safety
///
/// As [`LayoutLock`], and no other thread walks the page table in `Semi` or `Locked`
/// mode while a value of it is borrowed.
pub unsafe trait LayoutWrite: LayoutLock {}

/// A walk over one page table in mode `M`, valid for `'a` (the life of its proof).
#[derive(Debug)]
pub struct Walk<'a, M: Mode, G: Geometry = MmGeometry> {
    pt: &'a PageTable<G>,
    _mode: PhantomData<M>,
}

impl<G: Geometry> PageTable<G> {
    /// A lockless walk inside the read section of `rcu`.
    #[inline]
    pub fn lockless<'a>(&'a self, _rcu: &'a RcuGuard) -> Walk<'a, Lockless, G> {
        Walk::new(self)
    }

    /// A lockless walk whose tables stay allocated while `proof` is borrowed, by a
    /// rule other than RCU: a CPU's TLB access window, which every free of unlinked
    /// tables waits for (`tlb`, `Shootdown::shoot`).
    ///
    /// # Safety
    ///
    /// 1. No table page of `self` is freed while `proof` is borrowed.
    #[inline]
    pub unsafe fn lockless_pinned<'a, P>(&'a self, proof: &'a P) -> Walk<'a, Lockless, G> {
        let _ = proof;
        Walk::new(self)
    }

    /// A read walk under a lock that keeps the layout.
    #[inline]
    pub fn semi<'a>(&'a self, _layout: &'a impl LayoutLock) -> Walk<'a, Semi, G> {
        Walk::new(self)
    }

    /// A walk that changes entries, under a lock that keeps the layout.
    #[inline]
    pub fn locked<'a>(&'a self, _layout: &'a impl LayoutLock) -> Walk<'a, Locked, G> {
        Walk::new(self)
    }
}

impl<'a, M: Mode, G: Geometry> Walk<'a, M, G> {
    #[inline]
    fn new(pt: &'a PageTable<G>) -> Self {
        Self {
            pt,
            _mode: PhantomData,
        }
    }

    /// The leaf mapping `va`, `(entry, level)`, or `None` when a level on the way is
    /// none. In `Lockless` mode a snapshot: act on it only after re-validating.
    #[inline]
    pub fn lookup(&self, va: u64) -> Option<(Pte, Level)> {
        self.pt.lookup(va)
    }
}

/// A leaf a lockless walk read, and the slot it was read from (in a table that stays
/// allocated for the walk's RCU section).
#[derive(Debug)]
pub struct Leaf<'a> {
    slot: &'a AtomicU64,
    /// The entry as read.
    pub pte: Pte,
    /// Its level.
    pub level: Level,
}

impl Leaf<'_> {
    /// Whether the slot still holds the entry as read.
    #[inline]
    pub fn still(&self) -> bool {
        // Acquire: as the walk's loads (pairs with the Release stores that change it).
        self.slot.load(Ordering::Acquire) == self.pte.0
    }

    /// Set Accessed (and Dirty for `write`) if the entry is still as read, as the MMU
    /// does on use; the entry then is as set.
    #[inline]
    pub fn mark_used(&mut self, write: bool) {
        let bit = if write {
            PteFlags::A | PteFlags::D
        } else {
            PteFlags::A
        };
        if self.pte.has(bit) {
            return;
        }
        let new = Pte(self.pte.0 | bit.bits());
        // AcqRel CAS: only if unchanged; the A/D bits pair with the zap/change swaps,
        // which return them to whoever clears the entry.
        if self
            .slot
            .compare_exchange(self.pte.0, new.0, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            self.pte = new;
        }
    }
}

impl<'a, G: Geometry> Walk<'a, Lockless, G> {
    /// The leaf mapping `va` and its slot, or `None` when a level on the way is none.
    #[inline]
    pub fn leaf(&self, va: u64) -> Option<Leaf<'a>> {
        let (slot, pte, level) = self.pt.lookup_slot(va)?;
        Some(Leaf { slot, pte, level })
    }

    /// Set Accessed (and Dirty for a write) on the leaf for `va` if it still equals
    /// `seen`, as the hardware MMU does on use.
    #[inline]
    pub fn mark_used(&self, va: u64, seen: Pte, write: bool) {
        self.pt.mark_used(va, seen, write);
    }
}

/// Reads under a held layout: `Semi` and `Locked` walks.
impl<M: Mode, G: Geometry> Walk<'_, M, G>
where
    M: HeldLayout,
{
    /// `f(page, entry)` for every non-none leaf in `[start, end)`; upper levels that
    /// are none are skipped. Entries may change under the walk (unless `Locked` callers
    /// hold the PTL some other way, they are a moment's view).
    pub fn for_each_leaf(&self, start: PageAddr, end: PageAddr, f: impl FnMut(PageAddr, Pte)) {
        self.pt.for_each_leaf(start, end, f);
    }
}

/// The modes whose walks hold the layout.
pub trait HeldLayout: Mode {}
impl HeldLayout for Semi {}
impl HeldLayout for Locked {}

impl<'a, G: Geometry> Walk<'a, Locked, G> {
    /// Lock the leaf entry for `va`, allocating missing tables when `alloc` is set.
    /// `Ok(None)`: a table on the way is missing (and `alloc` is false) or a huge leaf
    /// covers `va`.
    #[inline]
    pub fn pte_lock(&self, va: PageAddr, alloc: bool) -> Result<Option<PteLocked<'a>>, TableOom> {
        self.pt.pte_lock(va, alloc)
    }

    /// For every non-none leaf in `[start, end)`, under its table's PTL, replace it with
    /// `f(page, old)` (atomically against the MMU's Accessed/Dirty updates; `f` may be
    /// called again for the same entry when they race).
    pub fn change(&self, start: PageAddr, end: PageAddr, f: impl FnMut(PageAddr, Pte) -> Pte) {
        self.pt.change(start, end, f);
    }

    /// Clear every leaf in `[start, end)` under its PTL and hand `f(page, old)` each old
    /// entry with its final Accessed/Dirty bits. Tables stay linked.
    pub fn zap(&self, start: PageAddr, end: PageAddr, f: impl FnMut(PageAddr, Pte)) {
        self.pt.zap(start, end, f);
    }

    /// As [`zap`](Self::zap), but entries for which `keep` is true stay (guard markers
    /// survive MADV_DONTNEED).
    pub fn zap_except(
        &self,
        start: PageAddr,
        end: PageAddr,
        keep: impl Fn(Pte) -> bool,
        f: impl FnMut(PageAddr, Pte),
    ) {
        self.pt.zap_except(start, end, keep, f);
    }

    /// Unlink and free (through `gather`, after its flush and a grace period) every
    /// table that maps only addresses inside `[start, end)` widened to `[floor,
    /// ceiling)` (`free_pgtables`' floor/ceiling rule, §2.3). The range was zapped;
    /// `layout` proves nobody else walks with the layout held.
    pub fn free_tables(
        &self,
        _layout: &impl LayoutWrite,
        (start, end): (PageAddr, PageAddr),
        (floor, ceiling): (PageAddr, PageAddr),
        gather: &mut Gather,
    ) {
        self.pt.free_tables(start, end, floor, ceiling, gather);
    }
}
