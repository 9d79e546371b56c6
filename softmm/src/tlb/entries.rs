//! The translations one CPU caches: a direct-mapped array indexed by virtual page
//! number, as a small hardware TLB or QEMU's softmmu table is.
//!
//! Each entry keeps one tag per kind of access (QEMU's `addr_read`, `addr_write`,
//! `addr_code`): the page's address when the translation allows that access, else
//! [`INVALID`]. A hit is one compare of the access's page with one word. The tags are
//! the only words another thread touches: a flusher reads them to learn what a CPU may
//! hold and stores [`INVALID`] to drop a translation (see the module rules of `tlb`).
//! The frame fields are written and read by the owning CPU only.

use std::ptr::NonNull;

use crate::{
    addr::{PAGE_SIZE, PageAddr},
    frame::Pfn,
    sync::{AtomicU64, Ordering},
};

/// Entries per CPU (a power of two; a few in model-checking builds, where each tag is a
/// modelled atomic).
#[cfg(not(any(loom, shuttle)))]
pub(crate) const ENTRIES: usize = 64;
/// Entries per CPU (a power of two; a few in model-checking builds, where each tag is a
/// modelled atomic).
#[cfg(any(loom, shuttle))]
pub(crate) const ENTRIES: usize = 4;

/// A tag no page address equals (page addresses have their low 12 bits clear).
pub(crate) const INVALID: u64 = 1;

bitflags::bitflags! {
    /// What a cached translation allows.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct Perm: u8 {
        /// Loads.
        const READ = 1;
        /// Stores (cached only once the entry is Dirty, so a store sets no bit).
        const WRITE = 2;
        /// Instruction fetches.
        const EXEC = 4;
    }
}

/// One cached translation (one cache line: a lookup touches one line).
#[derive(Debug)]
#[repr(C, align(64))]
pub(crate) struct Entry {
    /// Tags: the page's address where the translation allows a load, a store, an
    /// instruction fetch; [`INVALID`] where it does not.
    read: AtomicU64,
    write: AtomicU64,
    exec: AtomicU64,
    /// The frame's bytes (owner only; std atomic: no other thread touches it, so the
    /// model checkers need not see it).
    host: std::sync::atomic::AtomicPtr<u8>,
    /// The frame number, and bit 32 set for the zero frame (owner only).
    frame: std::sync::atomic::AtomicU64,
}

/// A translation to cache: the frame, where its bytes are, and whether it is the zero
/// frame.
#[derive(Clone, Copy, Debug)]
pub struct Hit {
    /// The frame.
    pub pfn: Pfn,
    /// Its first byte.
    pub host: NonNull<u8>,
    /// Whether it is the shared zero frame.
    pub zero: bool,
}

impl Default for Entry {
    fn default() -> Self {
        Self {
            read: AtomicU64::new(INVALID),
            write: AtomicU64::new(INVALID),
            exec: AtomicU64::new(INVALID),
            host: std::sync::atomic::AtomicPtr::new(std::ptr::null_mut()),
            frame: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl Entry {
    /// The first byte of the frame. Meaningful only for an entry [`Entries::get`] found
    /// (its tag was valid), read by the owning CPU.
    #[inline]
    pub(crate) fn host(&self) -> NonNull<u8> {
        // Relaxed: written only by this CPU.
        let p = self.host.load(Ordering::Relaxed);
        debug_assert!(!p.is_null());
        // SAFETY: a valid tag was stored by `Entries::set` after this field, from a
        // `NonNull`, on this thread; the field is never reset to null.
        unsafe { NonNull::new_unchecked(p) }
    }

    /// The frame number, and bit 32 set for the zero frame (as `host`).
    #[inline]
    pub(crate) fn frame_word(&self) -> u64 {
        // Relaxed: written only by this CPU.
        self.frame.load(Ordering::Relaxed)
    }

    /// The tag for accesses that need `need` (exactly one of the bits).
    #[inline]
    fn tag(&self, need: Perm) -> &AtomicU64 {
        if need == Perm::WRITE {
            &self.write
        } else if need == Perm::EXEC {
            &self.exec
        } else {
            &self.read
        }
    }

    /// The page this entry may translate (every cached translation allows loads), or
    /// `None`.
    #[inline]
    pub(crate) fn page(&self) -> Option<u64> {
        // Relaxed: a snapshot; the flusher's fences order it (tlb module rules).
        let t = self.read.load(Ordering::Relaxed);
        (t != INVALID).then_some(t)
    }

    /// Drop the translation. Relaxed stores: ordered for other CPUs by the fences of the
    /// shootdown protocol (tlb module rules); only loads are affected (`write` and `exec`
    /// are dropped before `read`, so `page` never shows an entry that still allows
    /// something but loads).
    #[inline]
    pub(crate) fn invalidate(&self) {
        self.write.store(INVALID, Ordering::Relaxed);
        self.exec.store(INVALID, Ordering::Relaxed);
        self.read.store(INVALID, Ordering::Relaxed);
    }
}

/// A CPU's cached translations (kept inline in the CPU's shared state: a hit loads one
/// pointer, to that state).
#[derive(Debug)]
pub(crate) struct Entries([Entry; ENTRIES]);

impl Default for Entries {
    fn default() -> Self {
        Self(std::array::from_fn(|_| Entry::default()))
    }
}

impl Entries {
    /// The entry that may cache the page of `va`.
    #[inline]
    pub(crate) fn slot(&self, va: u64) -> &Entry {
        &self.0[slot_of(va >> crate::addr::PAGE_SHIFT)]
    }

    /// The entry caching the page of `va` if its translation allows `need` (one bit)
    /// and `va` is a multiple of `align` (a power of two below the page size): the
    /// alignment bits are kept in the compared address, so a misaligned `va` misses at
    /// no extra cost.
    #[inline]
    pub(crate) fn get(&self, va: u64, need: Perm, align: u64) -> Option<&Entry> {
        debug_assert!(align.is_power_of_two() && align < PAGE_SIZE);
        let e = self.slot(va);
        // Relaxed: the owner's own stores, or a flusher's invalidation, ordered by the
        // protocol's fences (tlb module rules).
        let key = va & (!(PAGE_SIZE - 1) | (align - 1));
        (e.tag(need).load(Ordering::Relaxed) == key).then_some(e)
    }

    /// Cache `page → frame` with `perm`, replacing what shared its slot. The tags are
    /// stored last: a flusher that sees one finds the whole entry.
    #[inline]
    pub(crate) fn set(&self, page: PageAddr, hit: Hit, perm: Perm) {
        let e = self.slot(page.get());
        let tag = |p: Perm| {
            if perm.contains(p) {
                page.get()
            } else {
                INVALID
            }
        };
        // Relaxed (all): the frame fields are the owner's; the tags are ordered for
        // flushers by the fence the filler runs next (`Window::fill`).
        e.host.store(hit.host.as_ptr(), Ordering::Relaxed);
        let frame = u64::from(hit.pfn.0) | (u64::from(hit.zero) << 32);
        e.frame.store(frame, Ordering::Relaxed);
        e.exec.store(tag(Perm::EXEC), Ordering::Relaxed);
        e.write.store(tag(Perm::WRITE), Ordering::Relaxed);
        e.read.store(tag(Perm::READ), Ordering::Relaxed);
    }

    /// The entries a flush of `[start, end)` pages may need to drop (every one when the
    /// range covers the whole array).
    pub(crate) fn covering(&self, start: PageAddr, end: PageAddr) -> impl Iterator<Item = &Entry> {
        let n = (start.pages_to(end) as usize).min(ENTRIES);
        let first = slot_of(start.vpn());
        (0..n).map(move |i| &self.0[(first + i) % ENTRIES])
    }

    /// Every entry.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.0.iter()
    }
}

/// The slot of virtual page number `vpn`.
#[inline]
pub(crate) fn slot_of(vpn: u64) -> usize {
    vpn as usize % ENTRIES
}
