//! The reference model's layout: VMAs in a `BTreeMap`, split and merged by Linux's rules
//! (`mm/vma.c`), written as directly as possible and independently of softmm.
//!
//! A VMA is `[start, end)` with `vm_flags`, `vm_pgoff` and a backing: private anonymous
//! memory with its anon_vma identity, or a shmem object (shared anonymous memory).
//!
//! * Merge: two adjacent VMAs merge when their flags are equal (VM_MAYBE_GUARD aside,
//!   which the merged VMA keeps), their page offsets continue, and their backings
//!   agree: the same shmem object, or anon identities that are not both set and
//!   different (`is_mergeable_anon_vma`; no fork here). When a change would join prev,
//!   the middle and next, prev and next must be compatible too, else only prev joins.
//! * Where: a new range (mmap, mremap's destination, in-place growth) tries both
//!   neighbours; a flag change on part of a VMA (mprotect, madvise, mlock) tries prev
//!   only when the part starts at the VMA's start, next only when it ends at its end,
//!   and splits the VMA where it does not merge.
//! * anon_vma: none until the first write fault (also a populating write fault, and
//!   MADV_GUARD_INSTALL), which reuses the next or else the previous VMA's when that one
//!   is adjacent, has the same flags but for access bits and continues the page offsets
//!   (`find_mergeable_anon_vma`), else makes a new one. Splits share it, merges keep the
//!   one that is set, moves carry it along.

use std::collections::{BTreeMap, BTreeSet};

use super::vmflags::*;

use super::memory::Object;

/// Size of a page.
pub const PAGE: u64 = 4096;

/// `VM_MAYBE_GUARD` ("gu", Linux 6.18): the VMA may hold guard markers. Sticky: merging
/// ignores it and the merged VMA has it when any part had it.
pub const VM_MAYBE_GUARD: u64 = 1 << 11;

/// What backs a model VMA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backing {
    /// Private anonymous memory and its anon_vma id (`None`: never write-faulted).
    Anon(Option<u32>),
    /// Shared anonymous memory: index of a shmem object in [`Space::objects`].
    Shm(usize),
}

/// One model VMA.
#[derive(Clone, Debug)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub flags: u64,
    pub pgoff: u64,
    pub backing: Backing,
}

impl Vma {
    pub fn pages(&self) -> u64 {
        (self.end - self.start) / PAGE
    }

    /// The page offset `addr` has in this VMA's object.
    pub fn pgoff_at(&self, addr: u64) -> u64 {
        self.pgoff + (addr - self.start) / PAGE
    }

    pub fn anon(&self) -> Option<u32> {
        match self.backing {
            Backing::Anon(a) => a,
            Backing::Shm(_) => None,
        }
    }

    pub fn is_private(&self) -> bool {
        matches!(self.backing, Backing::Anon(_))
    }

    /// The part `[start, end)` of this VMA, with the page offset carried along.
    pub fn part(&self, start: u64, end: u64) -> Vma {
        Vma {
            start,
            end,
            pgoff: self.pgoff_at(start),
            ..self.clone()
        }
    }
}

/// Library divergences from Linux that are confirmed (with `linux-run`) and reported.
/// With a quirk set the model reproduces softmm's (wrong) behaviour so that the property
/// test keeps checking everything else; `SOFTMM_MODEL_STRICT=1` clears them all and the
/// model is Linux's. The numbers are those of `model.rs`, "Known library bugs".
#[derive(Clone, Copy, Debug, Default)]
pub struct Quirks {
    /// Bug 1: the first write fault of a VMA always makes a new anon_vma; Linux first
    /// tries to reuse an adjacent compatible VMA's (`find_mergeable_anon_vma`).
    pub no_anon_reuse: bool,
    /// Bug 2: mremap(MREMAP_DONTUNMAP) unlocks only the moved range of the source VMA,
    /// splitting it; Linux clears VM_LOCKED on the whole source VMA, without a split.
    pub dontunmap_splits: bool,
    /// Bugs 3 to 6: softmm's mremap with FIXED or DONTUNMAP unmaps the FIXED
    /// destination and shrinks the source before it validates the source. Linux
    /// validates first (`check_prep_vma`): with no VMA at the source (3), or a part to
    /// move running past its VMA (6), it fails with EFAULT having changed nothing, where
    /// softmm has unmapped the destination (3) or, for a FIXED shrink, moves every VMA
    /// part of the shrunk range (6). Linux's FIXED move of several VMAs unmaps only each
    /// part's destination, not the destination opposite the source's holes (4), and
    /// also works with DONTUNMAP, where softmm fails with EFAULT (5).
    pub remap_to_order: bool,
    /// Bug 7: mremap without a resize (and without FIXED/DONTUNMAP) splits the VMA at
    /// `addr + old_len`; Linux changes nothing.
    pub noresize_splits: bool,
    /// Bug 8: mlock of length 0 at an address inside (not at the start of) a PROT_NONE
    /// VMA fails with ENOMEM (it populates that VMA); Linux returns 0.
    pub mlock_len0_populates: bool,
    /// Bug 9: MADV_POPULATE_READ accepts a VMA without VM_READ (write-only, exec-only);
    /// Linux's GUP refuses it (EINVAL).
    pub populate_read_any_access: bool,
    /// Bug 10: MADV_COLD (and MADV_PAGEOUT) succeed on VM_LOCKED memory; Linux refuses
    /// them with EINVAL (`can_madv_lru_vma`).
    pub cold_ignores_locked: bool,
    /// Bug 11: an access to a guard marker past the end of a shmem object is SIGBUS;
    /// Linux finds the marker first: SIGSEGV.
    pub sigbus_before_guard: bool,
    /// Bug 12: MADV_GUARD_INSTALL does not give a private VMA an anon_vma; Linux does
    /// (`anon_vma_prepare`), which keeps VM_ACCOUNT on a later mprotect and decides
    /// merges.
    pub guard_no_anon: bool,
    /// Bug 13: a VMA moved by mremap merges with both its new neighbours even when
    /// their anon_vmas differ (one VMA then holds pages of two anon_vmas); Linux merges
    /// it with prev only (`can_vma_merge_right`).
    pub move_merges_both: bool,
    /// Bug 14: softmm has no VM_MAYBE_GUARD ("gu"), which Linux 6.18 sets on a VMA that
    /// had guard markers installed; it is sticky (kept by splits, merges, mprotect,
    /// guard removal) and ignored by merging. With the quirk the model never sets it.
    pub no_maybe_guard: bool,
    /// Bug 15: mprotect making a private read-only mlocked VMA writable does not
    /// populate it; Linux breaks COW at once (`mprotect_fixup` calls
    /// `populate_vma_page_range`), so the VMA gets an anon_vma.
    pub mprotect_no_locked_cow: bool,
}

impl Quirks {
    /// The divergences the library still has: none (all 15 found were fixed). A new
    /// confirmed one gets a field above and is switched on here until it is fixed.
    pub fn library() -> Self {
        Quirks::default()
    }
}

/// The model address space.
#[derive(Clone, Debug)]
pub struct Space {
    pub vmas: BTreeMap<u64, Vma>,
    pub quirks: Quirks,
    /// Top of the top-down mmap area (`mm->mmap_base`).
    pub mmap_base: u64,
    /// `vm.mmap_min_addr`.
    pub mmap_min_addr: u64,
    next_anon: u32,
    /// Contents of private anonymous pages that were written (absent: zero), by address.
    pub anon_pages: BTreeMap<u64, Box<[u8]>>,
    /// Pages that hold a guard marker (MADV_GUARD_INSTALL).
    pub guards: BTreeSet<u64>,
    /// Shmem objects, by id.
    pub objects: Vec<Object>,
}

/// Whether a VMA with (`lflags`, `lback`, `lpgoff`, `lpages`) can be followed, in one VMA,
/// by one with (`rflags`, `rback`, `rpgoff`).
fn joinable(l: (u64, Backing, u64, u64), r: (u64, Backing, u64)) -> bool {
    let backing = match (l.1, r.1) {
        (Backing::Anon(a), Backing::Anon(b)) => a.is_none() || b.is_none() || a == b,
        (Backing::Shm(a), Backing::Shm(b)) => a == b,
        _ => false,
    };
    (l.0 ^ r.0) & !VM_MAYBE_GUARD == 0 && backing && l.2 + l.3 == r.2
}

/// prev and next may both join (their anon identities are not both set and different).
fn anon_compatible(a: &Vma, b: &Vma) -> bool {
    match (a.anon(), b.anon()) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    }
}

impl Space {
    pub fn new(mmap_base: u64, mmap_min_addr: u64, quirks: Quirks) -> Self {
        Space {
            vmas: BTreeMap::new(),
            quirks,
            mmap_base,
            mmap_min_addr,
            next_anon: 1,
            anon_pages: BTreeMap::new(),
            guards: BTreeSet::new(),
            objects: Vec::new(),
        }
    }

    /// The VMA containing `addr`.
    pub fn find(&self, addr: u64) -> Option<&Vma> {
        self.vmas
            .range(..=addr)
            .next_back()
            .map(|(_, v)| v)
            .filter(|v| addr < v.end)
    }

    /// The VMAs intersecting `[start, end)`, in order.
    pub fn intersecting(&self, start: u64, end: u64) -> Vec<Vma> {
        let first = self.find(start).map_or(start, |v| v.start);
        self.vmas
            .range(first..end)
            .map(|(_, v)| v.clone())
            .filter(|v| v.end > start)
            .collect()
    }

    pub fn is_free(&self, start: u64, end: u64) -> bool {
        self.intersecting(start, end).is_empty()
    }

    fn ending_at(&self, addr: u64) -> Option<Vma> {
        self.vmas
            .range(..addr)
            .next_back()
            .map(|(_, v)| v.clone())
            .filter(|v| v.end == addr)
    }

    fn starting_at(&self, addr: u64) -> Option<Vma> {
        self.vmas.get(&addr).cloned()
    }

    /// Top-down placement: the highest free `len` bytes ending at or below `mmap_base`.
    pub fn top_down(&self, len: u64) -> Option<u64> {
        let low = PAGE.max(self.mmap_min_addr);
        let mut limit = self.mmap_base;
        for v in self.vmas.values().rev() {
            if v.start >= limit {
                continue;
            }
            if v.end <= limit && limit - v.end >= len {
                break;
            }
            limit = v.start;
        }
        (limit >= low + len).then(|| limit - len)
    }

    /// A new anon_vma for the VMA at `start` on its first write fault (`anon_vma_prepare`),
    /// reusing the next or else the previous VMA's when that VMA is adjacent, private,
    /// has the same flags but for access bits, and continues the page offsets.
    pub fn anon_prepare(&mut self, start: u64) {
        let v = self.vmas[&start].clone();
        if !v.is_private() || v.anon().is_some() {
            return;
        }
        let compatible = |a: &Vma, b: &Vma| {
            a.is_private()
                && b.is_private()
                && (a.flags ^ b.flags) & !(VM_ACCESS_FLAGS | VM_MAYBE_GUARD) == 0
                && b.pgoff == a.pgoff + a.pages()
        };
        let mut reuse = None;
        if !self.quirks.no_anon_reuse {
            let next = self.starting_at(v.end).filter(|n| compatible(&v, n));
            let prev = self.ending_at(v.start).filter(|p| compatible(p, &v));
            reuse = next.and_then(|n| n.anon()).or(prev.and_then(|p| p.anon()));
        }
        let id = reuse.unwrap_or_else(|| {
            self.next_anon += 1;
            self.next_anon
        });
        self.vmas.get_mut(&start).expect("VMA").backing = Backing::Anon(Some(id));
    }

    /// Split the VMA strictly containing `addr` (if any) at `addr`.
    pub fn split(&mut self, addr: u64) {
        let Some(v) = self.find(addr).cloned() else {
            return;
        };
        if v.start == addr {
            return;
        }
        self.vmas.insert(v.start, v.part(v.start, addr));
        self.vmas.insert(addr, v.part(addr, v.end));
    }

    /// Remove `[start, end)` from the layout, with its pages and guard markers.
    pub fn unmap(&mut self, start: u64, end: u64) {
        if start == end {
            return;
        }
        self.split(start);
        self.split(end);
        let inside: Vec<u64> = self.vmas.range(start..end).map(|(&s, _)| s).collect();
        for s in inside {
            self.vmas.remove(&s);
        }
        self.anon_pages.retain(|&a, _| a < start || a >= end);
        self.guards.retain(|&a| a < start || a >= end);
    }

    /// Insert `new` (its range is free), merged with compatible neighbours (Linux
    /// `vma_merge_new_range`). Returns the start of the VMA now covering it.
    pub fn insert_merged(&mut self, new: Vma) -> u64 {
        self.insert_merged_checked(new, true)
    }

    /// [`Self::insert_merged`]; `both_checked` false skips the check that prev and next
    /// may join each other (bug 13).
    pub fn insert_merged_checked(&mut self, new: Vma, both_checked: bool) -> u64 {
        let key = |v: &Vma| (v.flags, v.backing, v.pgoff, v.pages());
        let prev = self
            .ending_at(new.start)
            .filter(|p| joinable(key(p), (new.flags, new.backing, new.pgoff)));
        let next = self
            .starting_at(new.end)
            .filter(|n| joinable(key(&new), (n.flags, n.backing, n.pgoff)))
            .filter(|n| !both_checked || prev.as_ref().is_none_or(|p| anon_compatible(p, n)));
        self.join(prev, new, next)
    }

    /// Replace `prev`, `mid` and `next` (adjacent, known to be joinable) by one VMA.
    fn join(&mut self, prev: Option<Vma>, mid: Vma, next: Option<Vma>) -> u64 {
        let mut merged = prev.clone().unwrap_or_else(|| mid.clone());
        merged.end = next.as_ref().map_or(mid.end, |n| n.end);
        let sticky = [prev.as_ref(), next.as_ref()]
            .into_iter()
            .flatten()
            .fold(0, |f, v| f | (v.flags & VM_MAYBE_GUARD));
        merged.flags = mid.flags | sticky;
        if let Backing::Anon(None) = merged.backing {
            let anon = [Some(&mid), next.as_ref()]
                .into_iter()
                .flatten()
                .find_map(|v| v.anon());
            merged.backing = Backing::Anon(anon);
        }
        for v in [prev.as_ref(), Some(&mid), next.as_ref()]
            .into_iter()
            .flatten()
        {
            self.vmas.remove(&v.start);
        }
        let start = merged.start;
        self.vmas.insert(start, merged);
        start
    }

    /// Give `[s, e)`, which lies inside the VMA starting at `vstart`, the flags `flags`:
    /// merge with prev/next where the range touches the VMA's edge and they fit, else
    /// split (Linux `vma_modify_flags`). Returns the start of the VMA covering `[s, e)`.
    pub fn modify(&mut self, vstart: u64, s: u64, e: u64, flags: u64) -> u64 {
        let v = self.vmas[&vstart].clone();
        if flags == v.flags {
            return vstart;
        }
        let mid = Vma {
            flags,
            ..v.part(s, e)
        };
        let key = |x: &Vma| (x.flags, x.backing, x.pgoff, x.pages());
        let prev = (s == v.start)
            .then(|| self.ending_at(s))
            .flatten()
            .filter(|p| joinable(key(p), (flags, mid.backing, mid.pgoff)));
        let next = (e == v.end)
            .then(|| self.starting_at(e))
            .flatten()
            .filter(|n| joinable(key(&mid), (n.flags, n.backing, n.pgoff)))
            .filter(|n| prev.as_ref().is_none_or(|p| anon_compatible(p, n)));
        self.split(s);
        self.split(e);
        self.vmas.insert(s, mid.clone());
        if prev.is_none() && next.is_none() {
            return s;
        }
        self.join(prev, mid, next)
    }

    /// Set new flags on the whole VMA at `start` without trying to merge (Linux
    /// `vm_flags_clear`, as mremap's DONTUNMAP does).
    pub fn set_flags_in_place(&mut self, start: u64, flags: u64) {
        self.vmas.get_mut(&start).expect("VMA").flags = flags;
    }
}
