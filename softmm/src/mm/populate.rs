//! Populate: fault pages in ahead of use (MAP_POPULATE, mlock, MADV_POPULATE_*).

use super::AddressSpace;
use crate::{
    addr::PageAddr,
    mm::fault::{Access, Fault},
    pgtable::LayoutLock,
    sync::rcu,
    vma::flags::*,
};

impl AddressSpace {
    /// Fault in `[start, end)` VMA by VMA, ignoring errors (`mm_populate`: mmap with
    /// MAP_POPULATE or VM_LOCKED, mlockall, brk and mremap of locked memory).
    /// The caller holds `mmap_lock` (either side).
    pub(crate) fn populate_range(&self, layout: &impl LayoutLock, start: PageAddr, end: PageAddr) {
        let _ = self.populate(layout, start, end, true);
    }

    /// `__mm_populate`: write faults for private writable memory, read faults
    /// otherwise; lock-on-fault VMAs are skipped; a PROT_NONE VMA is `EFAULT` (GUP's
    /// `check_vma_flags` without FOLL_FORCE), a failed fault `EFAULT` or `ENOMEM`. With
    /// `ignore_errors` a failing VMA is skipped, else the first error is returned. Holes
    /// are skipped, as `__mm_populate` does (mlockall(MCL_CURRENT) populates every VMA
    /// from address 0 up; the other callers' ranges have no holes: mlock and mprotect
    /// fail on them first).
    pub(crate) fn populate(
        &self,
        layout: &impl LayoutLock,
        start: PageAddr,
        end: PageAddr,
        ignore_errors: bool,
    ) -> Result<(), crate::error::Errno> {
        let g = rcu::read_lock();
        let vmas: Vec<_> = self
            .tree
            .intersecting(start.get(), end.get(), &g)
            .into_iter()
            .cloned()
            .collect();
        drop(g);
        for v in vmas {
            if v.flags.intersects(VM_LOCKONFAULT) || v.flags.intersects(VM_IO | VM_PFNMAP) {
                continue;
            }
            let r = if !v.flags.intersects(VM_ACCESS_FLAGS) {
                Err(crate::error::Errno::EFAULT)
            } else {
                let write = v.flags & (VM_WRITE | VM_SHARED) == VM_WRITE;
                let access = if write { Access::Write } else { Access::Read };
                let mut a = start.max(v.start);
                let mut r = Ok(());
                while a < end.min(v.end) {
                    if let Err(f) = self.fault_in(layout, a.get(), access) {
                        r = Err(match f {
                            Fault::Oom { .. } => crate::error::Errno::ENOMEM,
                            _ => crate::error::Errno::EFAULT,
                        });
                        break;
                    }
                    a = a.next_page();
                }
                r
            };
            if r.is_err() && !ignore_errors {
                return r;
            }
        }
        Ok(())
    }

    /// Make `addr` present for `access` unless it already is (GUP's faultin_page).
    pub(crate) fn fault_in(
        &self,
        layout: &impl LayoutLock,
        addr: u64,
        access: Access,
    ) -> Result<(), Fault> {
        {
            let g = rcu::read_lock();
            if let Some((pte, _)) = self.pt.lockless(&g).lookup(addr)
                && crate::mm::fault::pte_allows(pte, access)
            {
                return Ok(());
            }
        }
        self.handle_fault(layout, addr, access)
    }
}
