//! Fault-around (`do_fault_around` + `filemap_map_pages`): a read fault on a file or
//! shmem VMA also maps the neighbouring pages that are already in the page cache.
//!
//! The block is `Config::fault_around_pages` pages of virtual addresses, aligned to its
//! size, clamped to the VMA and to the faulting page's page table (never past a PMD). Only
//! cached pages inside the object are mapped (nothing is allocated or read in), and only
//! over none entries (a private copy, a guard marker or a page mapped meanwhile stay).
//! The entries are what a read fault would install: read-only in a private VMA, writable
//! but clean in a shared writable one, young (x86 maps prefaulted pages young:
//! `arch_wants_old_prefaulted_pte` is false).
//!
//! Rules: each page-cache page is looked up (a reference taken under the page map lock)
//! before its PTL is taken, as a fault does; a truncation that races is ordered by the VMA
//! lock or `mmap_lock` the fault holds (see `mm/rmap.rs`).

use super::{FaultCtx, base_flags};
use crate::{
    addr::PageAddr,
    pgtable::{Pte, PteFlags},
    vma::VM_WRITE,
};

/// Entries in one page table (`PTRS_PER_PTE`).
const PTRS_PER_PTE: u64 = 512;

impl FaultCtx<'_> {
    /// The pages `[first, last]` (addresses) a read fault at `self.page` maps around
    /// itself, or `None` when fault-around is off.
    fn around_range(&self) -> Option<(PageAddr, PageAddr)> {
        let nr = self.mm.config.fault_around_pages();
        if nr <= 1 {
            return None;
        }
        let pte_off = self.page.vpn() % PTRS_PER_PTE;
        let vma_off = self.vma.start.pages_to(self.page);
        let vma_pages = self.vma.start.pages_to(self.vma.end);
        let from = (pte_off - pte_off % nr).max(pte_off - pte_off.min(vma_off));
        let to = (from + nr)
            .min(PTRS_PER_PTE)
            .min(pte_off + vma_pages - vma_off)
            - 1;
        let table = PageAddr::from_vpn(self.page.vpn() - pte_off);
        Some((table.add_pages(from), table.add_pages(to)))
    }

    /// Map the cached pages around a read fault; whether the faulting page itself was
    /// mapped (then the fault is done).
    pub(super) fn fault_around(&self) -> bool {
        let Some((first, last)) = self.around_range() else {
            return false;
        };
        let Some(obj) = self.vma.backing.object() else {
            return false;
        };
        let mut entry = base_flags(self.vma);
        if self.vma.flags.intersects(VM_WRITE) && self.vma.is_shared() {
            entry |= PteFlags::W;
        }
        let mut mapped_fault_page = false;
        let mut va = first;
        while va <= last {
            if let Some(page) = obj.get_cached(self.vma.pgoff_at(va))
                && let Ok(Some(l)) = self.walk.pte_lock(va, true)
                && l.get().is_none()
            {
                self.mm.pm.meta(page.pfn()).inc_mapcount();
                l.set(Pte::leaf(page.into_raw(), entry));
                mapped_fault_page |= va == self.page;
            }
            va = va.next_page();
        }
        mapped_fault_page
    }
}
