//! Populate: fault pages in ahead of use (MAP_POPULATE, mlock, MADV_POPULATE_*).

use super::AddressSpace;
use crate::{
    fault::{Access, Fault},
    sync::rcu,
    vma::flags::*,
};

impl AddressSpace {
    /// Fault in `[start, end)` VMA by VMA, as `__mm_populate`: write faults for private
    /// writable memory, read faults otherwise; PROT_NONE and lock-on-fault VMAs are
    /// skipped. Errors are ignored (populate is best effort).
    /// The caller holds `mmap_lock` (either side).
    pub(crate) fn populate_range(&self, start: u64, end: u64) {
        let g = rcu::read_lock();
        let vmas: Vec<_> = self
            .tree
            .intersecting(start, end, &g)
            .into_iter()
            .cloned()
            .collect();
        drop(g);
        for v in vmas {
            if v.flags & VM_ACCESS_FLAGS == 0 || v.flags & VM_LOCKONFAULT != 0 {
                continue;
            }
            let write = v.flags & (VM_WRITE | VM_SHARED) == VM_WRITE;
            let access = if write { Access::Write } else { Access::Read };
            let mut a = start.max(v.start);
            while a < end.min(v.end) {
                if self.fault_in(a, access).is_err() {
                    break;
                }
                a += 4096;
            }
        }
    }

    /// Make `addr` present for `access` unless it already is (GUP's faultin_page).
    pub(crate) fn fault_in(&self, addr: u64, access: Access) -> Result<(), Fault> {
        {
            let g = rcu::read_lock();
            if let Some((pte, _)) = self.pt.lookup(addr, &g)
                && crate::fault::pte_allows(pte, access)
            {
                return Ok(());
            }
        }
        self.handle_fault(addr, access)
    }
}
