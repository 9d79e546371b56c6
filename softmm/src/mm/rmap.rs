//! Unmapping an object's pages from every address space (`unmap_mapping_range`).
//!
//! Truncation and hole punching change an object under all its mappings. The object's
//! reverse map ([`PageCache::mappers`]) names the address spaces; each is visited in
//! turn under its own `mmap_lock` for write (never two at once; the caller holds
//! none), and each VMA it zaps is write-locked first (faults on the per-VMA fast path). Order: the object changes first (size, pages), then the mappings go, so a
//! fault that raced with the change and still installed an old page is zapped too: it
//! ran under the address space's `mmap_lock` read side, which the write lock waits for;
//! a later fault sees the new object.

use std::sync::Arc;

use super::AddressSpace;
use crate::addr::{PAGE_SHIFT, pages};
use crate::{
    frame::PageFlags,
    pagecache::{Mapper, PageCache},
    pgtable::Gather,
    sync::rcu,
};

/// Punch `[first, last)` (page offsets) out of `obj` (`MADV_REMOVE`, fallocate
/// `PUNCH_HOLE`): the pages read as zeros afterwards in every mapping; private copies
/// made by copy-on-write stay (`even_cows` false).
pub fn punch_hole(obj: &Arc<PageCache>, first: u64, last: u64) {
    obj.remove(first, last);
    for mm in obj.mappers() {
        mm.unmap_object(obj, first, last, false);
    }
}

/// `ftruncate`: set `obj`'s size; on shrink, every mapping of the pages past the new
/// end goes, private copies included (`truncate_pagecache`, `even_cows`), so accesses
/// there raise SIGBUS.
pub fn truncate(obj: &Arc<PageCache>, size: u64) {
    let old = obj.size();
    obj.set_size(size);
    if size < old {
        let first = size.div_ceil(crate::addr::PAGE_SIZE);
        for mm in obj.mappers() {
            mm.unmap_object(obj, first, u64::MAX, true);
        }
    }
}

impl Mapper for AddressSpace {
    /// Zap the entries of every VMA of `obj` that map page offsets `[first, last)`:
    /// page-cache pages always, copy-on-write copies when `even_cows`; guard markers
    /// stay.
    fn unmap_object(&self, obj: &Arc<PageCache>, first: u64, last: u64, even_cows: bool) {
        let state = self.write_lock();
        let mut gather = Gather::new(&self.pm);
        let vmas: Vec<_> = {
            let g = rcu::read_lock();
            self.tree
                .iter(&g)
                .filter(|v| v.backing.object().is_some_and(|o| Arc::ptr_eq(o, obj)))
                .cloned()
                .collect()
        };
        for v in vmas {
            let npages = pages(v.len());
            let (lo_pg, hi_pg) = (first.max(v.pgoff), last.min(v.pgoff + npages));
            if lo_pg >= hi_pg {
                continue;
            }
            let lo = v.start + ((lo_pg - v.pgoff) << PAGE_SHIFT);
            let hi = v.start + ((hi_pg - v.pgoff) << PAGE_SHIFT);
            // A fault under the VMA's read lock may hold a page it found before the
            // object changed: it finishes before the zap (later ones see the new object).
            self.vma_start_write(&v);
            let pm = &self.pm;
            let keep = |pte: crate::pgtable::Pte| {
                pte.is_guard()
                    || (!even_cows
                        && pte.has_frame()
                        && !pte.has(crate::pgtable::PteFlags::SPECIAL)
                        && pm.meta(pte.pfn()).has(PageFlags::ANON))
            };
            self.zap_pages_except(&state, (lo, hi), keep, &mut gather);
        }
        drop(state);
        self.tlb_finish(gather);
    }
}
