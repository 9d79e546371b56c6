//! Software TLB shootdown: after a call that removes or downgrades translations
//! returns, no CPU uses an old one, and nothing a CPU might still reach is freed before
//! every such CPU has let go of it; without interrupts, and without a shared write on
//! the CPU's access path.
//!
//! The state:
//! * Each [`Cpu`](crate::mm::Cpu) owns a [`CpuTlb`]: its cached translations (touched by
//!   its own thread only) and a [`CpuShared`] the flushers see: `active`, odd while the
//!   CPU is inside an access window, written only by the CPU; `requested`, a count that
//!   flushers bump; `pending`, the ranges they asked to be flushed.
//! * Each address space owns a [`Shootdown`]: the CPUs that may hold its translations.
//!
//! The protocol (the memory-ordering argument is the Dekker pattern of [`asym`]):
//!
//! ```text
//! CPU (every access window)              flusher (after clearing/downgrading entries)
//!   active = odd            (Relaxed)      push range into cpu.pending  (lock)
//!   asym::light()                          cpu.requested += 1           (SeqCst)
//!   requested != handled? -> take pending, asym::heavy()
//!       drop those translations            a = cpu.active               (Acquire)
//!   look up / walk, use the translation    if a is odd: wait while cpu.active == a
//!   active = even           (Release)      ... then free what was unmapped
//! ```
//!
//! Either the CPU's `active = odd` is ordered before the flusher's barrier, and the
//! flusher sees the window open and waits for it to close (the accesses in it happened
//! before the call returned: they linearize before it), or the CPU's load of
//! `requested` is ordered after it, and the CPU sees the request and drops the stale
//! translation before it looks up anything (and a walk then sees the cleared entry,
//! cleared before the request). The Release of `active = even` pairs with the
//! flusher's Acquire load: every access made in the window happens before what the
//! flusher does next (freeing the frame, letting its next owner zero it).
//!
//! A flush involves only the CPUs that may hold a translation of its range: each CPU
//! publishes, per TLB slot, which page the slot may hold, before it walks to fill it,
//! and runs a `SeqCst` fence between the two; the flusher runs one before it reads the
//! tags (after clearing the entries). Either it sees the tag, or the walk sees the
//! cleared entry. A CPU with no tag in the range is not asked, and when no CPU is, the
//! heavy barrier is skipped (`skipped` in the statistics).
//!
//! An idle CPU (no window open: `active` even) never delays a flusher; a CPU never
//! blocks inside a window (no lock but its own `pending`, which flushers hold only to
//! push), so waiting for one always ends. A miss leaves the window before it faults:
//! the fault path takes locks a flusher may hold.

mod entries;

use std::sync::{Arc, Weak};

use crossbeam_utils::CachePadded;

pub use entries::Perm;

use crate::{
    addr::PageAddr,
    frame::Pfn,
    sync::{AtomicU64, Mutex, Ordering, asym},
};

/// Past this many pages a range flush drops every translation instead (Linux's
/// `tlb_single_page_flush_ceiling`, 33).
pub(crate) const FLUSH_CEILING_PAGES: u64 = 33;

/// What flushers asked a CPU to drop.
#[derive(Debug, Default)]
struct Pending {
    all: bool,
    ranges: Vec<(PageAddr, PageAddr)>,
}

/// The part of a CPU's TLB state that flushers read and write.
#[derive(Debug)]
pub struct CpuShared {
    /// Odd while an access window is open; written only by the CPU.
    active: CachePadded<AtomicU64>,
    /// Flush requests made (flushers bump it after pushing to `pending`).
    requested: AtomicU64,
    pending: Mutex<Pending>,
    /// The page each TLB slot may hold a translation of (`entries::tag_of`, 0: none),
    /// published before the walk that fills it: a flush skips a CPU none of whose
    /// tags falls in its range.
    published: [AtomicU64; entries::ENTRIES],
}

impl Default for CpuShared {
    fn default() -> Self {
        Self {
            active: CachePadded::default(),
            requested: AtomicU64::new(0),
            pending: Mutex::new(Pending::default()),
            published: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
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
    /// Flushes that found no CPU that may hold a translation of the range.
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
        // SeqCst fence: pairs with the one a CPU runs between publishing a tag and
        // walking (`Window::reserve`): either this flush sees the tag, or that walk sees
        // the entries the caller cleared or downgraded before calling.
        crate::sync::fence(Ordering::SeqCst);
        let cpus: Vec<Arc<CpuShared>> = self
            .cpus
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|c| c.may_hold(range))
            .collect();
        let stat = match range {
            _ if cpus.is_empty() => &self.skipped,
            FlushRange::Pages(s, e) if s.pages_to(e) <= FLUSH_CEILING_PAGES => &self.targeted,
            _ => &self.full,
        };
        // Relaxed: statistics.
        stat.fetch_add(1, Ordering::Relaxed);
        if cpus.is_empty() {
            return;
        }
        for c in &cpus {
            c.pending.lock().push(range);
            // SeqCst: ordered before the heavy barrier below (the flusher's side of the
            // Dekker pattern with the CPU's `active` store and `requested` load).
            c.requested.fetch_add(1, Ordering::SeqCst);
        }
        asym::heavy();
        for c in &cpus {
            c.wait_window();
        }
    }
}

impl Pending {
    fn push(&mut self, range: FlushRange) {
        match range {
            FlushRange::Pages(s, e) if !self.all && s.pages_to(e) <= FLUSH_CEILING_PAGES => {
                self.ranges.push((s, e));
            }
            _ => {
                self.all = true;
                self.ranges.clear();
            }
        }
    }
}

impl CpuShared {
    /// Whether a published tag falls in `range`.
    fn may_hold(&self, range: FlushRange) -> bool {
        self.published.iter().any(|t| {
            // Acquire: pairs with the Release store of the tag, so that the accesses the
            // CPU made through the translation its slot held before happen before what
            // the flusher does next when it sees the slot reused.
            let t = t.load(Ordering::Acquire);
            t != 0
                && match range {
                    FlushRange::All => true,
                    FlushRange::Pages(s, e) => {
                        t >= entries::tag_of(s.vpn()) && t < entries::tag_of(e.vpn())
                    }
                }
        })
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
    /// The cached translations.
    entries: entries::Entries,
    /// The last flush request handled.
    handled: std::cell::Cell<u64>,
    /// Batches of requests handled (each may drop translations).
    flushes: std::cell::Cell<u64>,
}

/// An open access window (see the module rules); closed on drop.
#[must_use = "the window closes when this is dropped"]
#[derive(Debug)]
pub struct Window<'a> {
    tlb: &'a CpuTlb,
}

impl CpuTlb {
    /// The TLB of a new CPU of the address space `shootdown` serves.
    pub fn new(shootdown: &Shootdown) -> Self {
        Self {
            shared: shootdown.register(),
            entries: entries::Entries::default(),
            handled: std::cell::Cell::new(0),
            flushes: std::cell::Cell::new(0),
        }
    }

    /// Open an access window, after handling the flush requests made so far: until the
    /// window drops, a flush that starts meanwhile waits for it, and one that started
    /// before has had its translations dropped.
    #[inline]
    pub fn enter(&self) -> Window<'_> {
        // Relaxed load: only this CPU writes `active`. Relaxed store: ordered before the
        // load below by the light barrier.
        let v = self.shared.active.load(Ordering::Relaxed) + 1;
        self.shared.active.store(v, Ordering::Relaxed);
        asym::light();
        // Relaxed: ordered after the store above by the light barrier; a request seen
        // here is read from `pending` under its lock.
        if self.shared.requested.load(Ordering::Relaxed) != self.handled.get() {
            self.handle_requests();
        }
        Window { tlb: self }
    }

    #[cold]
    fn handle_requests(&self) {
        // Acquire: the pending ranges pushed before each counted request.
        let req = self.shared.requested.load(Ordering::Acquire);
        let p = std::mem::take(&mut *self.shared.pending.lock());
        // Release (the tag stores): the accesses made through the dropped translations
        // happen before a flusher that sees the slot empty goes on.
        let unpublish = |i: usize| self.shared.published[i].store(0, Ordering::Release);
        if p.all {
            self.entries.drop_all();
            (0..entries::ENTRIES).for_each(unpublish);
        } else {
            for (s, e) in p.ranges {
                self.entries.drop_range(s, e, unpublish);
            }
        }
        self.handled.set(req);
        self.flushes.set(self.flushes.get() + 1);
    }

    /// How many batches of flush requests this CPU has handled: a translation it cached
    /// when the count was `n` may be used only while the count is still `n`.
    pub fn flushes(&self) -> u64 {
        self.flushes.get()
    }
}

impl Window<'_> {
    /// The frame this CPU caches for the page of `va`, if the translation allows
    /// `need`. The frame stays allocated until the window closes (module rules).
    #[inline]
    pub fn lookup(&self, va: u64, need: Perm) -> Option<Pfn> {
        self.tlb.entries.get(va, need)
    }

    /// Before walking for `page`: evict whatever the page's slot holds and publish that
    /// the slot may now hold `page`, so that a flush of it that starts after the walk
    /// reads the page-table entry cannot miss this CPU (the Dekker pattern with
    /// `Shootdown::flush`'s fence). A walk that finds nothing usable leaves the tag: a
    /// flush then asks this CPU for nothing it holds, which is only slower.
    #[inline]
    pub fn reserve(&self, page: PageAddr) {
        let tlb = self.tlb;
        tlb.entries.evict(page);
        let slot = &tlb.shared.published[entries::slot_of(page.vpn())];
        // Release: pairs with `may_hold`'s Acquire (see there).
        slot.store(entries::tag_of(page.vpn()), Ordering::Release);
        // SeqCst: the publication above before the walk's loads (pairs with the fence
        // at the start of `Shootdown::flush`).
        crate::sync::fence(Ordering::SeqCst);
    }

    /// Cache a translation found by a walk made inside this window after
    /// [`reserve`](Self::reserve)`(page)`: any flush of it that starts after the walk read
    /// the entry sees the tag, waits for this window and drops it at the next.
    #[inline]
    pub fn fill(&self, page: PageAddr, pfn: Pfn, perm: Perm) {
        self.tlb.entries.set(page, pfn, perm);
    }
}

impl Drop for Window<'_> {
    #[inline]
    fn drop(&mut self) {
        // Relaxed load: only this CPU writes `active`.
        let v = self.tlb.shared.active.load(Ordering::Relaxed) + 1;
        // Release: pairs with the flusher's Acquire in `wait_window`: everything done in
        // the window happens before the flusher proceeds.
        self.tlb.shared.active.store(v, Ordering::Release);
    }
}

#[cfg(test)]
mod tests;
