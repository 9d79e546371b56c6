//! Stack expansion: a fault below a VM_GROWSDOWN VMA grows it down to the faulting page
//! (`expand_stack`), unless that would leave less than the stack guard gap above an
//! accessible mapping below it, or exceed RLIMIT_STACK (8 MiB).

use std::sync::Arc;

use super::{AddressSpace, mmap::STACK_GUARD_GAP};
use crate::addr::PageAddr;
use crate::vma::flags::*;

/// Default RLIMIT_STACK.
const STACK_LIMIT: u64 = 8 << 20;

impl AddressSpace {
    /// Grow the grows-down VMA above `addr` to cover it. Takes `mmap_lock` for write;
    /// returns whether the VMA grew (the caller retries its access).
    pub(crate) fn expand_stack(&self, addr: u64) -> bool {
        let _state = self.write_lock();
        let addr = PageAddr::down(addr);
        let mut edit = self.tree.edit();
        if edit.find(addr.get()).is_some() {
            return true; // someone else grew it meanwhile
        }
        let Some(vma) = edit.next(addr.get()) else {
            return false;
        };
        if !vma.flags.intersects(VM_GROWSDOWN) || addr < self.config.mmap_min_addr {
            return false;
        }
        if let Some(prev) = edit.prev(addr.get()) {
            let accessible = prev.flags.intersects(VM_ACCESS_FLAGS);
            if !prev.flags.intersects(VM_GROWSDOWN)
                && accessible
                && addr - prev.end < STACK_GUARD_GAP
            {
                return false;
            }
        }
        if vma.end - addr > STACK_LIMIT {
            return false;
        }
        // An accounted stack charges its growth (`acct_stack_growth`).
        if vma.flags.intersects(VM_ACCOUNT)
            && self
                .vm_enough_memory((vma.start - addr) >> crate::addr::PAGE_SHIFT, 0)
                .is_err()
        {
            return false;
        }
        let grown = Arc::new(vma.derive(addr, vma.end, vma.flags));
        self.vma_start_write(&vma);
        edit.remove(&vma);
        edit.insert(grown);
        edit.commit();
        true
    }
}
