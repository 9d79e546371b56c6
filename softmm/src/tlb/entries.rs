//! The translations one CPU caches: a direct-mapped array indexed by virtual page
//! number, as a small hardware TLB or QEMU's softmmu table is. Touched only by the CPU's
//! own thread (plain `Cell`s: no atomics, no shared cache line).

use std::cell::Cell;

use crate::{addr::PageAddr, frame::Pfn};

/// Entries per CPU (a power of two; a few in model-checking builds, where each of the
/// published tags is a modelled atomic).
#[cfg(not(any(loom, shuttle)))]
pub(crate) const ENTRIES: usize = 64;
/// Entries per CPU (a power of two; a few in model-checking builds, where each of the
/// published tags is a modelled atomic).
#[cfg(any(loom, shuttle))]
pub(crate) const ENTRIES: usize = 4;

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

/// One cached translation; `tag` is the virtual page number plus one (0: empty).
#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    tag: u64,
    pfn: u32,
    perm: Perm,
}

/// A CPU's cached translations (boxed: a `Cpu` stays small to move).
#[derive(Debug)]
pub(crate) struct Entries(Box<[Cell<Entry>; ENTRIES]>);

impl Default for Entries {
    fn default() -> Self {
        Self(Box::new(std::array::from_fn(|_| {
            Cell::new(Entry::default())
        })))
    }
}

impl Entries {
    #[inline]
    fn slot(&self, vpn: u64) -> &Cell<Entry> {
        &self.0[slot_of(vpn)]
    }

    /// The frame cached for the page of `va` if its translation allows `need`.
    #[inline]
    pub(crate) fn get(&self, va: u64, need: Perm) -> Option<Pfn> {
        let vpn = va >> crate::addr::PAGE_SHIFT;
        let e = self.slot(vpn).get();
        (e.tag == vpn + 1 && e.perm.contains(need)).then_some(Pfn(e.pfn))
    }

    /// Cache `page → pfn` with `perm`, evicting what shared its slot.
    #[inline]
    pub(crate) fn set(&self, page: PageAddr, pfn: Pfn, perm: Perm) {
        let vpn = page.vpn();
        self.slot(vpn).set(Entry {
            tag: vpn + 1,
            pfn: pfn.0,
            perm,
        });
    }

    /// Drop the translation in the slot of `page`, whatever page it is for.
    #[inline]
    pub(crate) fn evict(&self, page: PageAddr) {
        self.slot(page.vpn()).set(Entry::default());
    }

    /// Drop the translations of `[start, end)`; `dropped(slot)` for each.
    pub(crate) fn drop_range(
        &self,
        start: PageAddr,
        end: PageAddr,
        mut dropped: impl FnMut(usize),
    ) {
        let (lo, hi) = (start.vpn() + 1, end.vpn() + 1);
        for (i, c) in self.0.iter().enumerate() {
            let t = c.get().tag;
            if t >= lo && t < hi {
                c.set(Entry::default());
                dropped(i);
            }
        }
    }

    /// Drop every translation.
    pub(crate) fn drop_all(&self) {
        for c in self.0.iter() {
            c.set(Entry::default());
        }
    }
}

/// The slot of virtual page number `vpn`.
#[inline]
pub(crate) fn slot_of(vpn: u64) -> usize {
    vpn as usize % ENTRIES
}

/// The tag a slot holds for `vpn` (0: none).
#[inline]
pub(crate) fn tag_of(vpn: u64) -> u64 {
    vpn + 1
}
