//! mprotect (`do_mprotect_pkey`, `mprotect_fixup`, `change_protection`).
//!
//! Applied VMA by VMA: each affected VMA is split at the range edges and merged with
//! compatible neighbours; on a hole the call stops with `ENOMEM` and the VMAs before
//! the hole keep their new protection (Linux's partial application). Leaf entries are
//! rewritten under their PTLs: write permission is removed at once; it is added back
//! only to frames this mapping owns exclusively (others take a write fault later);
//! PROT_NONE makes entries not-present but keeps their frames.

use super::AddressSpace;
use crate::addr::is_page_aligned;
use crate::{
    abi::*,
    addr::page_up,
    error::Errno,
    error::SysResult,
    frame::PageFlags,
    mm::fault::base_flags,
    pgtable::{Gather, PteFlags},
    vma::flags::*,
};

/// What `mprotect_fixup` leaves for the rest of the call.
#[derive(Default)]
struct Fixups {
    /// Locked ranges whose copy-on-write is broken once the edit is published.
    populate: Vec<(u64, u64)>,
    /// Pages newly charged by earlier pieces of this call.
    charged: u64,
}

impl AddressSpace {
    /// `mprotect(2)`.
    pub fn mprotect(&self, start: u64, len: u64, prot: u64) -> SysResult<u64> {
        let grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP);
        let prot = prot & !grows;
        if grows == PROT_GROWSDOWN | PROT_GROWSUP {
            return Err(Errno::EINVAL);
        }
        if !is_page_aligned(start) {
            return Err(Errno::EINVAL);
        }
        if len == 0 {
            return Ok(0);
        }
        let len = page_up(len).ok_or(Errno::ENOMEM)?;
        let end = start
            .checked_add(len)
            .filter(|&e| e > start)
            .ok_or(Errno::ENOMEM)?;
        if prot & !(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM) != 0 {
            return Err(Errno::EINVAL);
        }
        let _state = self.write_lock();
        let gather = Gather::new(&self.pm);
        let mut edit = self.tree.edit();
        let vmas = edit.intersecting(start, end);
        let Some(first) = vmas.first() else {
            return Err(Errno::ENOMEM);
        };
        let mut start = start;
        if grows & PROT_GROWSDOWN != 0 {
            if first.start >= end {
                return Err(Errno::ENOMEM);
            }
            start = first.start;
            if !first.flags.intersects(VM_GROWSDOWN) {
                return Err(Errno::EINVAL);
            }
        } else if first.start > start {
            return Err(Errno::ENOMEM);
        }
        if grows & PROT_GROWSUP != 0 {
            // x86 has no VM_GROWSUP VMAs.
            return Err(Errno::EINVAL);
        }
        let mut fixups = Fixups::default();
        let result = Self::apply_to_range(&mut edit, start, end, |edit, v, lo, hi| {
            let newflags = prot_to_vm(prot) | (v.flags - VM_ACCESS_FLAGS);
            // Every new access bit needs its VM_MAY* bit (four bits up).
            let may = VmFlags::from_bits_retain(newflags.bits() >> 4);
            if (newflags - may).intersects(VM_ACCESS_FLAGS) {
                return Err(Errno::EACCES);
            }
            self.mprotect_fixup(edit, v, lo, hi, newflags, &mut fixups)
        })
        .map(|_| 0);
        edit.commit();
        for (lo, hi) in fixups.populate {
            // Errors are ignored as in Linux (the write faults only break COW early).
            let _ = self.populate(lo, hi, true);
        }
        drop(_state);
        gather.finish();
        result
    }

    fn mprotect_fixup(
        &self,
        edit: &mut crate::vma::TreeEdit<'_>,
        vma: &std::sync::Arc<crate::vma::Vma>,
        start: u64,
        end: u64,
        mut newflags: VmFlags,
        fixups: &mut Fixups,
    ) -> SysResult<()> {
        let old = vma.flags;
        if newflags == old {
            return Ok(());
        }
        if newflags.intersects(VM_WRITE) {
            if !old.intersects(VM_ACCOUNT | VM_WRITE | VM_HUGETLB | VM_SHARED | VM_NORESERVE) {
                // Private memory that becomes writable is charged now; the pieces
                // this call already charged count too.
                let pages = (end - start) >> crate::addr::PAGE_SHIFT;
                self.vm_enough_memory(pages, fixups.charged)?;
                fixups.charged += pages;
                newflags |= VM_ACCOUNT;
            }
        } else if old.intersects(VM_ACCOUNT) && vma.is_anon() && vma.anon().is_none() {
            // Anonymous memory never written: the charge is returned (Linux drops
            // VM_ACCOUNT here; a file mapping keeps it).
            newflags &= !VM_ACCOUNT;
        }
        let new = self.modify_flags(edit, vma, start, end, newflags)?;
        self.change_protection(&new, start, end);
        // A locked private read-only VMA made writable has its COW broken at once
        // (`populate_vma_page_range` in `mprotect_fixup`), once the edit is published.
        if old & (VM_WRITE | VM_SHARED | VM_LOCKED) == VM_LOCKED && newflags.intersects(VM_WRITE) {
            fixups.populate.push((start, end));
        }
        Ok(())
    }

    /// Rewrite the leaves of `[start, end)` for `vma`'s (new) flags.
    pub(crate) fn change_protection(&self, vma: &crate::vma::Vma, start: u64, end: u64) {
        let base = base_flags(vma);
        let writable = vma.flags.intersects(VM_WRITE);
        let shared = vma.flags.intersects(VM_SHARED);
        self.pt.change(start, end, |_, pte| {
            if !pte.has_frame() {
                return pte; // guard markers are not protection-dependent
            }
            let keep = pte.flags()
                & (PteFlags::A | PteFlags::D | PteFlags::SPECIAL | PteFlags::SOFT_DIRTY);
            let mut f = base | keep;
            if writable && f.contains(PteFlags::P) && !pte.has(PteFlags::SPECIAL) {
                let m = self.pm.meta(pte.pfn());
                if shared || m.has(PageFlags::ANON_EXCLUSIVE) {
                    f |= PteFlags::W;
                }
            }
            pte.with_flags(f)
        });
    }
}
