//! MADV_COLD and MADV_PAGEOUT (`madvise_cold_or_pageout_pte_range`).
//!
//! Both forget that a page was used: the page's `REFERENCED` flag is cleared
//! (`folio_clear_referenced`), and MADV_COLD also clears the entry's Accessed bit
//! (`clear_young_dirty_ptes`), so smaps `Referenced` drops until the next access through
//! a [`Cpu`](super::Cpu) sets Accessed again. MADV_PAGEOUT leaves the Accessed bit to
//! reclaim, which unmaps the page or, for anonymous memory without swap, keeps it as it
//! is. Only pages this one entry maps are touched (`folio_mapcount ==
//! 1`): a page shared with another mapping, a copy-on-write page after fork included,
//! keeps its state. The zero page is never touched. softmm has no LRU lists, so the
//! deactivation that goes with it in Linux has nothing to move.
//!
//! MADV_PAGEOUT then reclaims what reclaim without swap can (`reclaim_pages`): anonymous
//! pages stay (no swap to write them to), except in a droppable VMA, whose pages are
//! dropped, dirty or not (they read back as zeros); page-cache pages (shmem, memfd, file) are
//! unmapped, and a clean one leaves the cache too, so it reads back as zeros (a tmpfs page
//! that was never written is a hole), while a dirty one stays cached (`shmem_writeout`
//! cannot write it anywhere).

use std::sync::Arc;

use super::AddressSpace;
use crate::{
    addr::PageAddr,
    frame::{PageFlags, Pfn},
    pagecache::PageCache,
    pgtable::{Gather, LayoutWrite, Pte, PteFlags},
    vma::{VM_DROPPABLE, Vma},
};

/// A page-cache page that MADV_PAGEOUT unmapped: it leaves the cache once the unmap's
/// references are dropped, if it is still clean and nobody else uses it.
pub(super) type Evict = (Arc<PageCache>, u64, Pfn);

impl AddressSpace {
    /// Whether MADV_COLD/PAGEOUT may act on the page behind `pte`: a frame (present or
    /// PROT_NONE) that is not special, mapped by this entry alone.
    fn cold_candidate(&self, pte: Pte) -> bool {
        pte.has_frame() && !pte.has(PteFlags::SPECIAL) && self.pm.meta(pte.pfn()).mapcount() == 1
    }

    /// MADV_COLD (`pageout` false) or MADV_PAGEOUT on `[lo, hi)` of `v`; the caller
    /// holds `mmap_lock` for write and has checked the VMA (`can_madv_lru_vma`). Page-cache
    /// pages that PAGEOUT unmapped are pushed on `evict`, to be dropped after `gather`
    /// is finished.
    #[expect(
        clippy::too_many_arguments,
        reason = "the range, the lock and the deferred work"
    )]
    pub(super) fn cold_or_pageout(
        &self,
        layout: &impl LayoutWrite,
        v: &Vma,
        lo: PageAddr,
        hi: PageAddr,
        pageout: bool,
        gather: &mut Gather,
        evict: &mut Vec<Evict>,
    ) {
        let droppable = v.flags.intersects(VM_DROPPABLE);
        let mut unmap = Vec::new();
        let walk = self.pt.locked(layout);
        // Accessed bits cleared (COLD) and entries unmapped (PAGEOUT): flush.
        gather.cover(lo, hi);
        walk.change(lo, hi, |va, pte| {
            if !self.cold_candidate(pte) {
                return pte;
            }
            let m = self.pm.meta(pte.pfn());
            m.clear_flags(PageFlags::REFERENCED);
            if !pageout {
                return pte.with_flags(pte.flags() - PteFlags::A);
            }
            if !m.has(PageFlags::ANON) || droppable {
                unmap.push(va);
            }
            pte
        });
        let obj = v.backing.object();
        for va in unmap {
            // Re-checked under the PTL: the entry may have changed since the walk above
            // (a concurrent fault cannot install over it, but a racing zap could clear it).
            walk.zap_except(
                va,
                va.next_page(),
                |pte| {
                    !self.cold_candidate(pte)
                        || (!droppable && self.pm.meta(pte.pfn()).has(PageFlags::ANON))
                },
                |_, pte| {
                    if let Some(obj) = obj.filter(|_| !self.pm.meta(pte.pfn()).has(PageFlags::ANON))
                    {
                        evict.push((Arc::clone(obj), v.pgoff_at(va), pte.pfn()));
                    }
                    self.unmap_frame(pte, gather);
                },
            );
        }
    }
}

/// Drop the clean, unused page-cache pages that MADV_PAGEOUT unmapped (`__remove_mapping`
/// of a clean folio). Called after the unmap's gather has dropped its references.
pub(super) fn evict_clean(evict: Vec<Evict>) {
    for (obj, index, pfn) in evict {
        obj.evict_clean(index, pfn);
    }
}

impl AddressSpace {
    /// Memory pressure: drop every page of this address space's droppable VMAs that
    /// only it maps, as reclaim would (they read back as zeros). Takes `mmap_lock` for
    /// write; the caller holds no lock of this address space. Returns whether a page
    /// was freed.
    pub(crate) fn reclaim_droppable(&self) -> bool {
        let state = self.write_lock();
        let droppable: Vec<_> = {
            let g = crate::sync::rcu::read_lock();
            self.tree
                .iter(&g)
                .filter(|v| v.flags.intersects(VM_DROPPABLE))
                .cloned()
                .collect()
        };
        let mut gather = Gather::new(&self.pm);
        let mut evict = Vec::new();
        for v in &droppable {
            self.cold_or_pageout(&state, v, v.start, v.end, true, &mut gather, &mut evict);
        }
        let freed = !gather.is_empty();
        drop(state);
        self.tlb_finish(gather);
        evict_clean(evict);
        freed
    }
}
