//! Software TLB shootdown: after a call that removes or downgrades translations
//! returns, no CPU uses an old one, and nothing a CPU might still reach is freed before
//! every such CPU has let go of it; without interrupts, and without a shared write on
//! the CPU's access path.
//!
//! The state:
//! * Each [`Cpu`](crate::mm::Cpu) owns a [`CpuTlb`] whose [`CpuShared`] flushers see:
//!   the cached translations (`entries`: per entry one tag word per kind of access,
//!   which flushers read and invalidate; the frame fields only the CPU touches) and
//!   `active`, odd while the CPU is inside an access window, written only by the CPU.
//! * Each address space owns a [`Shootdown`]: the CPUs that may hold its translations.
//!
//! The protocol (the orderings are the Dekker pattern, run twice):
//!
//! ```text
//! CPU, access window                      flusher (after clearing/downgrading entries)
//!   active = odd               (Relaxed)    fence                         (SeqCst)
//!   light fence (asym)                      for each CPU, each entry of the range:
//!   hit: tag == page? use the frame           tag in range? invalidate   (Relaxed)
//!   miss: walk (RCU), take the leaf           (none anywhere: done, "skipped")
//!     store the entry, tags last (Relaxed)  asym::heavy()
//!     fence                    (SeqCst)     for each CPU it invalidated in:
//!     leaf changed? invalidate, retry         a = active                 (Acquire)
//!     use the frame                           a odd: wait while active == a
//!   active = even              (Release)    ... then free what was unmapped
//! ```
//!
//! * A hit in a window: either the window's `active = odd` is ordered before the heavy
//!   barrier, and the flusher sees the window open and waits for it (its accesses
//!   linearize before the call), or the CPU's tag load is ordered after the barrier and
//!   sees the invalidation (a miss). The Release of `active = even` pairs with the
//!   flusher's Acquire: the accesses happen before the frame is freed and reused.
//! * A fill racing a flush: the CPU stores its tags, fences, re-reads the leaf; the
//!   flusher clears the leaf, fences, reads the tags. Either the CPU sees the leaf
//!   changed and drops what it stored before using it, or the flusher sees the tag,
//!   invalidates it (after the CPU's store, in the tag's modification order) and waits
//!   for the window. No stale tag survives a flush, so a flusher never needs the CPU's
//!   help, and an idle CPU (no window open: `active` even) never delays it.
//! * A CPU never blocks inside a window (a miss leaves it before it faults: the fault
//!   path takes locks a flusher may hold), so waiting for one always ends.
//!
//! A translation without bytes ([`CpuTlb::peek`], `Cpu::translate`) needs no window: it
//! returns a frame number, which names a frame and reaches nothing; a flush that returned
//! before the look-up began has invalidated the tag.

mod entries;

use std::{
    ptr::NonNull,
    sync::{Arc, Weak},
};

use crossbeam_utils::CachePadded;

pub use entries::{Hit, Perm};

use crate::{
    addr::PageAddr,
    sync::{AtomicU64, Mutex, Ordering, asym},
};

/// Past this many pages a range flush drops every translation instead (Linux's
/// `tlb_single_page_flush_ceiling`, 33).
pub(crate) const FLUSH_CEILING_PAGES: u64 = 33;

/// The part of a CPU's TLB that flushers read and write (`repr(C)`: the entries first,
/// so a hit addresses them from the pointer it loads with no offset to add).
#[derive(Debug, Default)]
#[repr(C)]
pub struct CpuShared {
    /// The cached translations.
    entries: entries::Entries,
    /// Odd while an access window is open; written only by the CPU.
    active: CachePadded<AtomicU64>,
}

/// A flush to request: some pages, or every translation of the address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushRange {
    /// `[start, end)`.
    Pages(PageAddr, PageAddr),
    /// Everything.
    All,
}

/// The CPUs that may hold translations of one address space, and flush statistics.
#[derive(Debug, Default)]
pub struct Shootdown {
    cpus: Mutex<Vec<Weak<CpuShared>>>,
    /// Flushes of a range.
    pub(crate) targeted: AtomicU64,
    /// Flushes of everything (asked for, or a range past the ceiling).
    pub(crate) full: AtomicU64,
    /// Flushes that found no CPU holding a translation of the range.
    pub(crate) skipped: AtomicU64,
}

impl Shootdown {
    /// A registry with no CPU.
    pub fn new() -> Self {
        asym::init();
        Self::default()
    }

    /// A new CPU of this address space.
    pub fn register(&self) -> Arc<CpuShared> {
        let shared = Arc::new(CpuShared::default());
        let mut cpus = self.cpus.lock();
        cpus.retain(|c| c.strong_count() > 0);
        cpus.push(Arc::downgrade(&shared));
        shared
    }

    /// Make every CPU of this address space drop its translations of `range`, and wait
    /// until none can still be using one (see the module rules). The caller has already
    /// cleared or downgraded the entries; it frees what they mapped only after this.
    pub fn flush(&self, range: FlushRange) {
        self.shoot(Some(range), false);
    }

    /// As [`flush`](Self::flush) (nothing to flush for `None`); with `walkers`, also
    /// wait for every access window open now, on every CPU: the caller unlinked page
    /// tables, and a CPU walks them inside its windows with no other protection. A walk
    /// in a window that opens later starts after the barrier below, and finds the tables
    /// unlinked (the Dekker pattern again, the unlinking store against `active`).
    pub fn shoot(&self, range: Option<FlushRange>, walkers: bool) {
        // The MUTANT waits only for CPUs holding a translation of the range: a CPU in
        // the middle of a walk holds none yet, and the tables it reads are freed.
        let walkers = walkers && !cfg!(mutant = "tlb_table_free_no_wait");
        if range.is_none() && !walkers {
            // No entry changed and no table was unlinked (an mmap, an unmap of pages
            // never touched): no CPU has anything to drop or to finish reading.
            return;
        }
        let range = match range {
            Some(FlushRange::Pages(s, e)) if s.pages_to(e) > FLUSH_CEILING_PAGES => {
                Some(FlushRange::All)
            }
            r => r,
        };
        // SeqCst fence: pairs with the one a CPU runs between storing a tag and
        // re-reading the leaf (`Window::fill`): either this flush sees the tag, or that
        // CPU sees the entries the caller cleared or downgraded before calling.
        crate::sync::fence(Ordering::SeqCst);
        let mut held = false;
        let cpus: Vec<Arc<CpuShared>> = self
            .cpus
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|c| {
                let h = range.is_some_and(|r| c.invalidate(r));
                held |= h;
                h || walkers
            })
            .collect();
        if let Some(range) = range {
            let stat = match range {
                _ if !held => &self.skipped,
                FlushRange::Pages(..) => &self.targeted,
                FlushRange::All => &self.full,
            };
            // Relaxed: statistics.
            stat.fetch_add(1, Ordering::Relaxed);
        }
        if cpus.is_empty() {
            return;
        }
        asym::heavy();
        for c in &cpus {
            c.wait_window();
        }
    }
}

impl CpuShared {
    /// Invalidate this CPU's translations in `range`; whether it held any.
    fn invalidate(&self, range: FlushRange) -> bool {
        let mut held = false;
        let mut drop_in = |e: &entries::Entry, lo: u64, hi: u64| {
            if e.page().is_some_and(|p| p >= lo && p < hi) {
                e.invalidate();
                held = true;
            }
        };
        match range {
            FlushRange::Pages(s, e) => {
                let (lo, hi) = (s.get(), e.get());
                self.entries.covering(s, e).for_each(|x| drop_in(x, lo, hi));
            }
            FlushRange::All => self.entries.iter().for_each(|x| drop_in(x, 0, u64::MAX)),
        }
        held
    }

    /// Wait until the access window open now (if any) has closed.
    fn wait_window(&self) {
        // Acquire: pairs with the CPU's Release store closing the window: its accesses
        // happen before what the flusher does after this returns.
        let a = self.active.load(Ordering::Acquire);
        // The MUTANT returns without waiting: a window open now may still use a
        // translation to memory the caller frees next.
        if a.is_multiple_of(2) || cfg!(mutant = "tlb_flush_no_wait") {
            return;
        }
        // Acquire: as above. A window is short (no lock, no fault inside), but its
        // thread may be preempted: spin a little, then yield.
        let mut spins = 0u32;
        while self.active.load(Ordering::Acquire) == a {
            if spins < 64 {
                spins += 1;
                crate::sync::spin_loop();
            } else {
                crate::sync::yield_now();
            }
        }
    }
}

/// A CPU's TLB: the translations it caches and its side of the shootdown protocol.
/// Owned by one thread (the `Cpu` is not `Sync`).
#[derive(Debug)]
pub struct CpuTlb {
    shared: Arc<CpuShared>,
    light: asym::Light,
}

/// An open access window (see the module rules); closed on drop.
#[must_use = "the window closes when this is dropped"]
#[derive(Debug)]
pub struct Window<'a> {
    shared: &'a CpuShared,
}

impl CpuTlb {
    /// The TLB of a new CPU of the address space `shootdown` serves.
    pub fn new(shootdown: &Shootdown) -> Self {
        Self {
            shared: shootdown.register(),
            light: asym::Light::current(),
        }
    }

    /// Open an access window: until it drops, a flush that starts meanwhile waits for
    /// it, and one that started before has invalidated what it flushes.
    #[inline]
    pub fn enter(&self) -> Window<'_> {
        let active = &self.shared.active;
        // Relaxed load: only this CPU writes `active`. Relaxed store: ordered before the
        // window's tag loads by the light barrier (the flusher's heavy one pairs).
        active.store(active.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        self.light.fence();
        Window {
            shared: &self.shared,
        }
    }

    /// The translation cached for the page of `va` if it allows `need`, outside any
    /// window: the frame number and zero-frame flag (bit 32) in one word, good to report;
    /// the bytes must not be touched (nothing keeps the frame allocated).
    #[inline]
    pub fn peek(&self, va: u64, need: Perm) -> Option<u64> {
        self.shared.entries.get(va, need, 1).map(|e| e.frame_word())
    }
}

impl Window<'_> {
    /// The first byte of the frame this CPU caches for the page of `va`, if the
    /// translation allows `need`. The frame stays allocated until the window closes
    /// (module rules).
    #[inline]
    pub fn lookup(&self, va: u64, need: Perm) -> Option<NonNull<u8>> {
        self.lookup_aligned(va, need, 1)
    }

    /// As [`lookup`](Self::lookup), missing also when `va` is not a multiple of
    /// `align` (a power of two below the page size), at no extra cost.
    #[inline]
    pub fn lookup_aligned(&self, va: u64, need: Perm, align: u64) -> Option<NonNull<u8>> {
        self.shared.entries.get(va, need, align).map(|e| e.host())
    }

    /// Cache a translation found by a walk made inside this window, then check with
    /// `still()` (a re-read of the entry the walk used) that it still holds: if it does,
    /// a flush of it that started after the re-read sees the tag and waits for this
    /// window; if not, the translation is dropped and `false` returned (walk again).
    #[inline]
    pub fn fill(&self, page: PageAddr, hit: Hit, perm: Perm, still: impl FnOnce() -> bool) -> bool {
        let e = self.shared.entries.slot(page.get());
        self.shared.entries.set(page, hit, perm);
        // SeqCst: the tags stored above before the re-read (pairs with the fence at the
        // start of `Shootdown::flush`). The MUTANT skips the re-check: a flush that
        // cleared the entry after the walk and read the tags before the store above
        // leaves the stale translation cached.
        crate::sync::fence(Ordering::SeqCst);
        if cfg!(mutant = "tlb_fill_no_recheck") || still() {
            return true;
        }
        e.invalidate();
        false
    }
}

impl Drop for Window<'_> {
    #[inline]
    fn drop(&mut self) {
        let active = &self.shared.active;
        // Relaxed load: only this CPU writes `active`. Release: pairs with the flusher's
        // Acquire in `wait_window`: everything done in the window happens before the
        // flusher proceeds.
        active.store(active.load(Ordering::Relaxed) + 1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests;
